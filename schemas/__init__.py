"""Avro contracts of the connector (.avsc files and their stable registry IDs)."""
