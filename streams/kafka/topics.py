"""The topics of DESIGN.md with their partition counts and configs, created idempotently."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from streams.exceptions import KafkaClientError
from streams.kafka import clients
from streams.settings import KafkaSettings, TopicSettings


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    replication_factor: int
    config: dict[str, str] = field(default_factory=dict)
    purpose: str = ""


#: The links changelog keeps the latest row per entity. Segments roll at 8 MiB or after an
#: hour (only rolled segments are compacted), so a worker rebuilding reads about one row per
#: entity plus at most the dirty part the cleaner has not reached (min.cleanable.dirty.ratio
#: stays at Kafka's 0.5: at worst twice the compacted size).
LINKS_CONFIG = {
    "cleanup.policy": "compact",
    "min.compaction.lag.ms": "0",
    "segment.bytes": str(8 * 1024 * 1024),
    "segment.ms": str(3600 * 1000),
}


def design_topics(topics: TopicSettings) -> list[TopicSpec]:
    """Every topic the connector reads or writes (Faust's own changelogs excluded)."""
    rf = topics.replication_factor
    inbound = {"cleanup.policy": "delete", "retention.ms": str(topics.inbound_retention_ms)}
    return [
        TopicSpec(
            topics.name(topics.users_topic),
            topics.inbound_partitions,
            rf,
            inbound,
            "InTouch user changes (prospects, members, staff users)",
        ),
        TopicSpec(
            topics.name(topics.staff_topic),
            topics.inbound_partitions,
            rf,
            inbound,
            "InTouch staff changes",
        ),
        TopicSpec(
            topics.name(topics.lead_sources_topic),
            topics.inbound_partitions,
            rf,
            inbound,
            "InTouch lead source changes",
        ),
        TopicSpec(
            topics.name(topics.commands_topic),
            topics.commands_partitions,
            rf,
            inbound,
            "commands for the sink, keyed by entity",
        ),
        TopicSpec(
            topics.name(topics.parked_topic),
            topics.commands_partitions,
            rf,
            inbound,
            "commands parked while their tenant's receiver is failing, keyed by entity",
        ),
        TopicSpec(
            topics.name(topics.replay_topic),
            topics.inbound_partitions,
            rf,
            inbound,
            "inbound changes and dead-lettered records sent again by an operator (replays)",
        ),
        TopicSpec(
            topics.name(topics.outcomes_topic),
            topics.outcomes_partitions,
            rf,
            {"cleanup.policy": "delete", "retention.ms": "-1"},
            "outcomes: what happened to every command (the audit log)",
        ),
        TopicSpec(
            topics.name(topics.links_topic),
            topics.outcomes_partitions,
            rf,
            LINKS_CONFIG,
            "link rows, latest per entity, on their outcome's partition (workers rebuild from it)",
        ),
        TopicSpec(
            topics.name(topics.dlq_topic),
            topics.dlq_partitions,
            rf,
            {"cleanup.policy": "delete", "retention.ms": str(topics.dlq_retention_ms)},
            "dead letters with the original bytes and the reason",
        ),
        TopicSpec(
            topics.name(topics.tenants_topic),
            topics.tenants_partitions,
            rf,
            {"cleanup.policy": "compact", "min.compaction.lag.ms": "0"},
            "tenant turn-up, latest value per client",
        ),
    ]


@dataclass(frozen=True)
class EnsureResult:
    created: list[str]
    existing: list[str]
    mismatched: list[str]


def ensure_topics(
    bootstrap: str,
    kafka: KafkaSettings,
    specs: list[TopicSpec],
    progress: Callable[[str], None] = lambda _: None,
    timeout: float = 30.0,
) -> EnsureResult:
    """Create what is missing; list (and leave alone) topics with another partition count."""
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import NewTopic  # type: ignore[attr-defined]

    client = clients.admin(bootstrap, kafka)
    with clients.kafka_errors(f"cannot list topics on {bootstrap}"):
        existing: Any = client.list_topics(timeout=timeout).topics
    created, present, mismatched = [], [], []
    missing = []
    for spec in specs:
        if spec.name not in existing:
            missing.append(spec)
            continue
        have = len(existing[spec.name].partitions)
        if have != spec.partitions:
            mismatched.append(
                f"{spec.name} has {have} partitions, the design wants {spec.partitions}"
            )
        else:
            present.append(spec.name)
    if missing:
        futures = client.create_topics(
            [
                NewTopic(s.name, s.partitions, s.replication_factor, config=dict(s.config))
                for s in missing
            ],
            operation_timeout=timeout,
            request_timeout=timeout,
        )
        for name, future in futures.items():
            try:
                future.result()
                created.append(name)
                progress(f"created {name}")
            except KafkaException as exc:
                if clients.error_code(exc) != clients.TOPIC_ALREADY_EXISTS:
                    raise KafkaClientError(f"cannot create {name}: {exc}") from exc
                present.append(name)  # a concurrent ensure won
        _wait_until_usable(client, [s.name for s in missing], bootstrap, timeout)
    return EnsureResult(created, present, mismatched)


def _wait_until_usable(client: Any, names: list[str], bootstrap: str, timeout: float) -> None:
    """Wait until every new topic has a leader for each partition in the metadata: a
    producer started right after `ensure` would otherwise be told the topic does not exist."""
    deadline = time.monotonic() + timeout
    waiting = set(names)
    while waiting:
        with clients.kafka_errors(f"cannot list topics on {bootstrap}"):
            topics: Any = client.list_topics(timeout=timeout).topics
        waiting = {
            name
            for name in waiting
            if name not in topics
            or topics[name].error is not None
            or not topics[name].partitions
            or any(p.leader < 0 for p in topics[name].partitions.values())
        }
        if not waiting:
            return
        if time.monotonic() > deadline:
            raise KafkaClientError(
                f"created topics have no leader after {timeout:g}s: {', '.join(sorted(waiting))}"
            )
        time.sleep(0.1)


def worker_topics(topics: TopicSettings) -> list[str]:
    """The topics the worker's consumer group reads: inbound changes, replays, commands and
    parked commands (what its lag is measured on)."""
    bases = (
        topics.users_topic,
        topics.staff_topic,
        topics.lead_sources_topic,
        topics.replay_topic,
        topics.commands_topic,
        topics.parked_topic,
    )
    return [topics.name(base) for base in bases]


def delete_topics(
    bootstrap: str, kafka: KafkaSettings, names: list[str], timeout: float = 30.0
) -> list[str]:
    """Delete `names` (those that exist); return the deleted ones."""
    from confluent_kafka import KafkaException

    client = clients.admin(bootstrap, kafka)
    with clients.kafka_errors(f"cannot list topics on {bootstrap}"):
        existing = set(client.list_topics(timeout=timeout).topics)
    doomed = [name for name in names if name in existing]
    if not doomed:
        return []
    deleted = []
    for name, future in client.delete_topics(doomed, operation_timeout=timeout).items():
        try:
            future.result()
            deleted.append(name)
        except KafkaException as exc:
            raise KafkaClientError(f"cannot delete {name}: {exc}") from exc
    return deleted


def full_name(topics: TopicSettings, given: str, names: Iterable[str]) -> str | None:
    """The one of `names` (full topic names) that `given` names by its full or its base
    name (without `CONNECTOR_TOPIC_PREFIX`); None when it names none of them."""
    return next((n for n in names if given in (n, n.removeprefix(topics.topic_prefix))), None)
