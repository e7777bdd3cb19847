"""Kafka plumbing: the one client factory, topics, readers, lag and the local broker."""
