"""Tenants: turn-up values and validation, the tenants topic, secrets, receiver clients."""
