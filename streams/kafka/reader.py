"""Reads topics from their first record to their end, every partition at once."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from streams.exceptions import KafkaClientError, KafkaTimeoutError
from streams.kafka import clients
from streams.settings import KafkaSettings


def read_to_end(
    bootstrap: str,
    kafka: KafkaSettings,
    topics: Iterable[str] | None = None,
    timeout: float = 60.0,
) -> Iterator[Any]:
    """Every record of `topics` (all topics when None) present when the read reaches them.

    A partition is done at its last offset before the high watermark, or at its EOF event:
    compaction and control records leave offsets below the watermark that are never
    delivered. Assigning every partition at once keeps to one fetch session (one per
    partition cost seconds each).
    """
    from confluent_kafka import KafkaError, KafkaException, TopicPartition

    deadline = time.monotonic() + timeout

    def watermarks(tp: Any) -> tuple[int, int]:
        try:
            return clients.watermark(consumer, tp, deadline)
        except KafkaException as exc:
            raise KafkaClientError(f"cannot read {tp.topic}[{tp.partition}]: {exc}") from exc

    consumer = clients.consumer(
        bootstrap,
        kafka,
        f"intouch-connector-reader-{uuid.uuid4().hex}",
        # An EOF needs an empty fetch answer; don't let the broker hold it back.
        {"enable.partition.eof": True, "fetch.wait.max.ms": 10},
    )
    try:
        with clients.kafka_errors(f"no topic metadata from {bootstrap}"):
            if topics is None:
                metadata = consumer.list_topics(timeout=10).topics
            else:
                metadata = {t: consumer.list_topics(t, timeout=10).topics[t] for t in topics}
        last: dict[tuple[str, int], int] = {}
        assignment = []
        for topic, meta in metadata.items():
            if meta.error is not None:
                raise KafkaClientError(f"cannot read {topic}: {meta.error}")
            for p in meta.partitions:
                low, high = watermarks(TopicPartition(topic, p))
                if high > low:
                    last[(topic, p)] = high - 1
                    assignment.append(TopicPartition(topic, p, low))
        consumer.assign(assignment)
        remaining = set(last)
        while remaining:
            if time.monotonic() > deadline:
                raise KafkaTimeoutError(
                    f"reading stopped after {timeout:.0f}s with {len(remaining)} partitions unread"
                )
            # consume() waits its whole timeout unless the batch fills: keep the wait short.
            for message in consumer.consume(1000, timeout=0.05):
                error = message.error()
                where = (message.topic() or "", message.partition() or 0)
                if error is None:
                    yield message
                    if (message.offset() or 0) >= last.get(where, 0):
                        remaining.discard(where)
                elif error.code() == KafkaError._PARTITION_EOF:
                    remaining.discard(where)
    finally:
        consumer.close()


def read_ranges(
    bootstrap: str,
    kafka: KafkaSettings,
    topic: str,
    ranges: Mapping[int, tuple[int, int]],
    idle_timeout: float = 60.0,
) -> Iterator[Any]:
    """The records of `topic` with `start <= offset < end`, per partition `{p: (start, end)}`.

    Reads with a consumer of its own that commits nothing; a long range is fine, a stall of
    `idle_timeout` seconds with nothing read is an error.
    """
    from confluent_kafka import KafkaError, TopicPartition

    wanted = {p: (start, end) for p, (start, end) in ranges.items() if end > start}
    if not wanted:
        return
    consumer = clients.consumer(
        bootstrap,
        kafka,
        f"intouch-connector-reader-{uuid.uuid4().hex}",
        # A range start removed by retention meanwhile reads on from the first record left.
        {"enable.partition.eof": True, "fetch.wait.max.ms": 10, "auto.offset.reset": "earliest"},
    )
    try:
        with clients.kafka_errors(f"cannot read {topic}"):
            consumer.assign([TopicPartition(topic, p, start) for p, (start, _) in wanted.items()])
        remaining = set(wanted)
        last_progress = time.monotonic()
        while remaining:
            if time.monotonic() - last_progress > idle_timeout:
                raise KafkaTimeoutError(
                    f"reading {topic} made no progress for {idle_timeout:.0f}s with "
                    f"{len(remaining)} partitions unfinished"
                )
            for message in consumer.consume(1000, timeout=0.05):
                error = message.error()
                partition = message.partition() or 0
                if partition not in remaining:
                    continue
                if error is not None:
                    # The end offset can lie past the last record (transaction markers).
                    if error.code() == KafkaError._PARTITION_EOF:
                        remaining.discard(partition)
                    continue
                last_progress = time.monotonic()
                offset = message.offset() or 0
                _, end = wanted[partition]
                if offset < end:
                    yield message
                if offset >= end - 1:
                    remaining.discard(partition)
    finally:
        consumer.close()


def read_one(
    bootstrap: str, kafka: KafkaSettings, topic: str, partition: int, offset: int
) -> Any | None:
    """The record at `topic[partition]@offset`, or None when it is gone or never was."""
    for message in read_ranges(bootstrap, kafka, topic, {partition: (offset, offset + 1)}, 10.0):
        return message if message.offset() == offset else None
    return None


def read_tail(
    bootstrap: str,
    kafka: KafkaSettings,
    topic: str,
    partition: int,
    start: int,
    limit: int,
    timeout: float = 30.0,
) -> list[Any] | None:
    """The records of `topic[partition]` from `start` to its end when called; None when that
    is more than `limit` records (the caller does without)."""
    from confluent_kafka import TopicPartition

    probe = clients.consumer(bootstrap, kafka, f"intouch-connector-reader-{uuid.uuid4().hex}")
    try:
        deadline = time.monotonic() + timeout
        _, high = clients.watermark(probe, TopicPartition(topic, partition), deadline)
    finally:
        probe.close()
    if high - start > limit:
        return None
    return list(read_ranges(bootstrap, kafka, topic, {partition: (start, high)}, timeout))
