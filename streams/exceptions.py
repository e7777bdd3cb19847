"""Errors of the stream side of the connector, split by what the caller does next.

ConnectorError
├── ConfigurationError            a setting or input is wrong: fix it and run again
│   ├── SchemaNotRegisteredError  a schema file changed without a registered version
│   ├── TopicMismatchError        an existing topic differs from the design
│   ├── KafkaAccessError          the cluster refused our login, or its certificate is untrusted
│   └── TurnupError               a tenant's turn-up is invalid or cannot be opened
├── SerializationError            a record could not be encoded or decoded
│   ├── RecordDecodeError         bytes that are not a valid record: dead-letter them
│   │   └── UnknownSchemaError    the wire header names a schema the registry lacks
│   └── RecordEncodeError         a value does not fit its schema (a bug: fail loudly)
├── SchemaRegistryError           the schema registry could not be reached or refused
├── KafkaClientError              a Kafka call failed: broker unreachable, topic missing
│   ├── KafkaTimeoutError         the broker did not answer, or a reader did not catch up
│   └── PublishError              an outcome or dead letter could not be written: stop
├── OutcomeUnknownError           a creating call's outcome is unknown and cannot be checked
├── PlanningError                 a change or command cannot be carried out: dead-letter it
│   ├── UnknownTenantError        the event's client is not turned up
│   ├── UnknownClubError          the event's club is not in the tenant's turn-up
│   └── IdentityConflictError     a receiver record is, or may be, another entity's
├── RetriesExhaustedError         a retryable receiver error outlasted the retry limits
└── LocalKafkaError               the local broker could not be installed or started
    └── JavaNotFoundError         no Java 17+ runtime to run it

Receiver errors are the adapters' own tree (`adapters/errors.py`); the worker classifies both.
"""

from __future__ import annotations


class ConnectorError(Exception):
    """Root of every error the stream side raises on purpose."""


class ConfigurationError(ConnectorError):
    """A setting, file or command-line input is wrong."""


class SchemaNotRegisteredError(ConfigurationError):
    """A schema file changed without registering its new version."""


class TopicMismatchError(ConfigurationError):
    """An existing topic differs from the design (partition count)."""


class KafkaAccessError(ConfigurationError):
    """The cluster refused the SASL login, or TLS to it failed: fix the KAFKA_* settings."""


class TurnupError(ConfigurationError):
    """A tenant's turn-up is invalid, or its receiver client cannot be opened from it."""


class SerializationError(ConnectorError):
    """A record could not be encoded or decoded."""


class RecordDecodeError(SerializationError):
    """Bytes are not a valid record of the expected schema."""


class UnknownSchemaError(RecordDecodeError):
    """The schema ID in the wire header is not known to the registry."""


class RecordEncodeError(SerializationError):
    """A value does not fit its schema."""


class SchemaRegistryError(ConnectorError):
    """The schema registry could not be reached, or answered with an error."""


class KafkaClientError(ConnectorError):
    """A Kafka client call failed: the broker is unreachable, or a topic is missing."""


class KafkaTimeoutError(KafkaClientError, TimeoutError):
    """The broker did not answer in time, or a reader did not catch up with a topic."""


class PublishError(KafkaClientError):
    """An outcome or dead letter could not be written in time; the worker must stop (its
    unacknowledged commands come back after a restart) rather than lose or skip it."""


class OutcomeUnknownError(ConnectorError):
    """A creating call may have happened, and the receiver has no way to tell: repeating it
    could make a duplicate, so a person must look."""


class PlanningError(ConnectorError):
    """A change or command cannot be carried out as it is (dead-letter it with this reason)."""


class UnknownTenantError(PlanningError):
    """The event's client is not turned up."""


class InvalidEventError(PlanningError):
    """The change breaks the inbound contract: a required field blank, a field too long, an
    email or a birthdate that cannot be."""


class UnknownClubError(PlanningError):
    """The event's club is not in the tenant's turn-up."""


class IdentityConflictError(PlanningError):
    """Linking would tie a receiver record to a second InTouch entity, or the lookup cannot
    tell which record is ours."""


class RetriesExhaustedError(ConnectorError):
    """A retryable error persisted past the attempt or time limit."""


class LocalKafkaError(ConnectorError):
    """The local Apache Kafka broker could not be installed or started."""


class JavaNotFoundError(LocalKafkaError):
    """No Java 17+ runtime is available to run the local broker."""
