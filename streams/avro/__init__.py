"""Avro: the Confluent wire-format codec, the schema registries and the compatibility check."""
