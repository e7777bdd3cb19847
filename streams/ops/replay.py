"""Replay: send a range of an inbound topic again through the replay topic, or reset the group."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from streams.avro.codec import Codecs
from streams.core.replay import Headers, Position, ReplayMark, mark_headers
from streams.exceptions import ConfigurationError, KafkaClientError, RecordDecodeError
from streams.kafka import clients
from streams.kafka.reader import read_ranges
from streams.kafka.topics import full_name
from streams.ops.positions import PartitionRange, clamp_range, epoch_ms
from streams.settings import KafkaSettings, TopicSettings

#: An offset, a time (the first record at or after it), or None: the first record kept.
Start = int | dt.datetime | None
#: An offset or a time, exclusive, or None: the end of the partition when the replay starts.
End = int | dt.datetime | None


def inbound_topics(topics: TopicSettings) -> dict[str, str]:
    """The inbound topics' full names and the subject of their records."""
    return {
        topics.name(topics.users_topic): "UserChanged",
        topics.name(topics.staff_topic): "StaffChanged",
        topics.name(topics.lead_sources_topic): "LeadSourceChanged",
    }


def resolve_inbound(topics: TopicSettings, given: str) -> tuple[str, str]:
    """The full name and subject of an inbound topic given by its base or prefixed name."""
    inbound = inbound_topics(topics)
    name = full_name(topics, given, inbound)
    if name is not None:
        return name, inbound[name]
    raise ConfigurationError(
        f"{given} is not an inbound topic: replay one of {', '.join(sorted(inbound))}"
    )


def client_of(codecs: Codecs, subject: str, key: bytes | None, value: bytes | None) -> str | None:
    """The client of an inbound record, from its key, else from its value; None when neither
    can be decoded."""
    for codec, data in ((codecs["EntityKey"], key), (codecs[subject], value)):
        try:
            return str(codec.decode(data)["client_id"])
        except (RecordDecodeError, KeyError):
            continue
    return None


def produce(
    producer: Any, topic: str, key: Any, value: Any, headers: Headers, errors: list[str]
) -> None:
    """Queue one record; a full queue is drained first. Failed deliveries land in `errors`."""

    def delivered(error: Any, _: Any) -> None:
        if error is not None:
            errors.append(str(error))

    while True:
        try:
            producer.produce(topic, key=key, value=value, headers=headers, on_delivery=delivered)
            producer.poll(0)
            return
        except BufferError:
            producer.poll(0.5)


def flush(producer: Any, errors: list[str], timeout: float = 60.0) -> None:
    """Wait for every queued record; any that was not written is an error."""
    left = producer.flush(timeout)
    if left or errors:
        raise KafkaClientError(
            f"{left + len(errors)} replayed records were not written"
            + (f": {errors[0]}" if errors else f" within {timeout:g}s")
        )


@dataclass
class ReplaySummary:
    """What a replay read, sent and left out."""

    replay_id: str
    read: int = 0
    replayed: int = 0
    filtered: int = 0
    per_partition: dict[int, int] = field(default_factory=dict)


class Replayer:
    """Plans and runs a replay of one inbound topic, reading with a consumer of its own."""

    def __init__(
        self,
        bootstrap: str,
        kafka: KafkaSettings,
        topics: TopicSettings,
        codecs: Codecs,
        timeout: float = 30.0,
    ) -> None:
        self.bootstrap = bootstrap
        self.kafka = kafka
        self.topics = topics
        self.codecs = codecs
        self.timeout = timeout

    def ranges(
        self, topic: str, partitions: Sequence[int] | None, start: Start, end: End
    ) -> list[PartitionRange]:
        """Each partition's offsets to replay, clamped to what the topic holds."""
        from confluent_kafka import TopicPartition

        consumer = clients.consumer(
            self.bootstrap, self.kafka, f"intouch-connector-replay-plan-{uuid.uuid4().hex}"
        )
        try:
            count = clients.partition_count(consumer, topic, self.bootstrap, self.timeout)
            chosen = sorted(set(partitions)) if partitions else list(range(count))
            missing = [p for p in chosen if not 0 <= p < count]
            if missing:
                raise ConfigurationError(
                    f"{topic} has partitions 0..{count - 1}, not {', '.join(map(str, missing))}"
                )
            marks: dict[int, tuple[int, int]] = {}
            with clients.kafka_errors(f"cannot read the offsets of {topic}"):
                for p in chosen:
                    low, high = consumer.get_watermark_offsets(
                        TopicPartition(topic, p), timeout=self.timeout
                    )
                    marks[p] = (int(low), int(high))
                starts = self._offsets(consumer, topic, marks, start, at_end=False)
                ends = self._offsets(consumer, topic, marks, end, at_end=True)
        finally:
            consumer.close()
        out = []
        for p in chosen:
            low, high = marks[p]
            start_at = starts[p][0]
            found = clamp_range(p, low, high, low if start_at is None else start_at, ends[p][0])
            notes = tuple(n for n in (starts[p][1], ends[p][1]) if n) + found.notes
            out.append(PartitionRange(p, found.start, found.end, low, high, notes))
        return out

    def _offsets(
        self,
        consumer: Any,
        topic: str,
        marks: dict[int, tuple[int, int]],
        at: Start | End,
        *,
        at_end: bool,
    ) -> dict[int, tuple[int | None, str]]:
        """Offsets for an offset, a time (Kafka's time index), or None; with a note each."""
        from confluent_kafka import TopicPartition

        if at is None:
            return {p: ((None if at_end else low), "") for p, (low, _) in marks.items()}
        if isinstance(at, int):
            return {p: (at, "") for p in marks}
        ms = epoch_ms(at)
        found = consumer.offsets_for_times(
            [TopicPartition(topic, p, ms) for p in marks], timeout=self.timeout
        )
        out: dict[int, tuple[int | None, str]] = {}
        for tp in found:
            if tp.error is not None:
                raise KafkaClientError(f"cannot find offsets by time in {topic}: {tp.error}")
            if tp.offset >= 0:
                out[tp.partition] = (int(tp.offset), "")
            elif at_end:
                out[tp.partition] = (None, "")  # every record is older: up to the end
            else:
                high = marks[tp.partition][1]
                out[tp.partition] = (high, f"no record at or after {at.isoformat()}")
        return out

    def run(
        self,
        topic: str,
        subject: str,
        ranges: Sequence[PartitionRange],
        *,
        client: str | None = None,
        dry_run: bool = False,
        progress: Callable[[int], None] = lambda _: None,
    ) -> ReplaySummary:
        """Read the ranges and send each record (of `client`, when given) to the replay topic
        with its replay mark; `dry_run` counts what would be sent and sends nothing."""
        summary = ReplaySummary(f"replay-{uuid.uuid4().hex[:12]}")
        target = self.topics.name(self.topics.replay_topic)
        producer = None if dry_run else clients.producer(self.bootstrap, self.kafka)
        errors: list[str] = []
        wanted = {r.partition: (r.start, r.end) for r in ranges}
        for message in read_ranges(self.bootstrap, self.kafka, topic, wanted):
            summary.read += 1
            progress(1)
            key, value = message.key(), message.value()
            if client is not None and client_of(self.codecs, subject, key, value) != client:
                summary.filtered += 1
                continue
            summary.replayed += 1
            partition = message.partition()
            summary.per_partition[partition] = summary.per_partition.get(partition, 0) + 1
            if producer is not None:
                source = Position(topic, partition, message.offset())
                mark = ReplayMark(summary.replay_id, subject, source)
                headers = mark_headers(list(message.headers() or []), mark)
                produce(producer, target, key, value, headers, errors)
        if producer is not None:
            flush(producer, errors)
        return summary


def group_members(bootstrap: str, kafka: KafkaSettings, group: str, timeout: float) -> list[str]:
    """The live members of a consumer group (client ID and host of each)."""
    from confluent_kafka import KafkaError, KafkaException

    admin = clients.admin(bootstrap, kafka)
    try:
        described = admin.describe_consumer_groups([group], request_timeout=timeout)[group].result()
    except KafkaException as exc:
        if clients.error_code(exc) == KafkaError.GROUP_ID_NOT_FOUND:
            return []
        raise KafkaClientError(f"cannot describe group {group}: {exc}") from exc
    return [f"{m.client_id} on {m.host}" for m in described.members]


def reset_group(
    bootstrap: str,
    kafka: KafkaSettings,
    group: str,
    topic: str,
    ranges: Sequence[PartitionRange],
    timeout: float = 30.0,
) -> None:
    """Set the group's committed offsets on `topic` to each range's start, like the Kafka
    Streams reset tool; refused while the group has live members."""
    from confluent_kafka import ConsumerGroupTopicPartitions, KafkaException, TopicPartition

    members = group_members(bootstrap, kafka, group, timeout)
    if members:
        raise ConfigurationError(
            f"group {group} has {len(members)} live member(s) ({'; '.join(members[:3])}): "
            "stop every worker first, or replay without --reset-group (it needs no stop)"
        )
    admin = clients.admin(bootstrap, kafka)
    offsets = [TopicPartition(topic, r.partition, r.start) for r in ranges]
    request = ConsumerGroupTopicPartitions(group, offsets)
    try:
        (future,) = admin.alter_consumer_group_offsets([request], request_timeout=timeout).values()
        done = future.result()
    except KafkaException as exc:
        raise KafkaClientError(f"cannot move the offsets of group {group}: {exc}") from exc
    failed = [f"{tp.partition}: {tp.error}" for tp in done.topic_partitions if tp.error]
    if failed:
        raise KafkaClientError(f"group {group} kept its offsets on {topic}: {'; '.join(failed)}")
