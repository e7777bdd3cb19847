"""Publishing turn-ups on the compacted tenants topic, keyed by client ID, acknowledged."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from streams.avro.codec import default_codecs
from streams.exceptions import KafkaClientError
from streams.kafka import clients
from streams.settings import KafkaSettings
from streams.tenancy.tenant import Tenant, tenant_to_record

log = logging.getLogger(__name__)

DEFAULT_PUBLISH_TIMEOUT = 30.0


@dataclass(frozen=True)
class Published:
    """Where the broker acknowledged a tenants-topic record."""

    topic: str
    partition: int
    offset: int


def _produce(
    bootstrap: str,
    kafka: KafkaSettings,
    topic: str,
    key: bytes,
    value: bytes | None,
    timeout: float,
) -> Published:
    from confluent_kafka import KafkaError, Message

    producer = clients.producer(
        bootstrap,
        kafka,
        {
            # Turn-up must never invent a topic with the broker's default settings (not compacted).
            "allow.auto.create.topics": False,
            "message.timeout.ms": max(1, int(timeout * 1000)),
        },
    )
    try:
        clients.partition_count(producer, topic, bootstrap, timeout)
        reports: list[tuple[KafkaError | None, Message]] = []
        producer.produce(
            topic, key=key, value=value, on_delivery=lambda e, m: reports.append((e, m))
        )
        producer.flush(timeout)
        if not reports:
            raise KafkaClientError(f"{topic}: no acknowledgement within {timeout:g}s")
        error, message = reports[0]
        if error is not None:
            raise KafkaClientError(f"{topic}: the broker refused the record: {error.str()}")
        partition, offset = message.partition(), message.offset()
        assert partition is not None and offset is not None  # set on every delivered message
        return Published(topic, partition, offset)
    finally:
        producer.close()


def publish_tenant(
    bootstrap: str,
    kafka: KafkaSettings,
    topic: str,
    tenant: Tenant,
    *,
    timeout: float = DEFAULT_PUBLISH_TIMEOUT,
) -> Published:
    """Produce the tenant's `TenantConfigured` keyed by client ID; return once acknowledged."""
    value = default_codecs()["TenantConfigured"].encode(tenant_to_record(tenant))
    return _produce(bootstrap, kafka, topic, tenant.client_id.encode(), value, timeout)


def remove_tenant(
    bootstrap: str,
    kafka: KafkaSettings,
    topic: str,
    client_id: str,
    *,
    timeout: float = DEFAULT_PUBLISH_TIMEOUT,
) -> Published:
    """Produce a tombstone for the client, so compaction forgets it; return once acknowledged."""
    return _produce(bootstrap, kafka, topic, client_id.encode(), None, timeout)
