"""Adapter tests over real HTTP against the reference receiver on loopback (no Kafka)."""
