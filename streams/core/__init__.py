"""The pure core: planning and sink decisions, keyed lanes and ordered acks; no I/O."""
