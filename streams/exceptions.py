"""Errors of the stream side of the connector.

ConnectorError
├── ConfigurationError         a setting or input is wrong; fix it and run again
│   ├── SchemaNotRegisteredError
│   └── TopicMismatchError
├── SerializationError
│   ├── DecodeError            bytes that are not a valid record (dead-letter them)
│   │   └── UnknownSchemaError
│   └── EncodeError
└── LocalKafkaError            the local broker could not be installed or started
    └── JavaNotFoundError
"""

from __future__ import annotations


class ConnectorError(Exception):
    """Root of every error the connector raises on purpose."""


class ConfigurationError(ConnectorError):
    """A setting, file or command-line input is wrong."""


class SchemaNotRegisteredError(ConfigurationError):
    """A schema file changed without registering its new version."""


class TopicMismatchError(ConfigurationError):
    """An existing topic differs from the design (partition count)."""


class SerializationError(ConnectorError):
    """A record could not be encoded or decoded."""


class DecodeError(SerializationError):
    """Bytes are not a valid record of the expected schema."""


class UnknownSchemaError(DecodeError):
    """The schema ID in the wire header is not known to the registry."""


class EncodeError(SerializationError):
    """A value does not fit its schema."""


class LocalKafkaError(ConnectorError):
    """The local Apache Kafka broker could not be installed or started."""


class JavaNotFoundError(LocalKafkaError):
    """No Java 17+ runtime is available to run the local broker."""


class UnknownTenantError(ConnectorError):
    """The event's client is not turned up."""


class RetriesExhaustedError(ConnectorError):
    """A retryable error persisted past the attempt or time limit."""
