"""Consumer lag per group, topic and partition, from committed offsets and end offsets."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

from streams.exceptions import KafkaClientError
from streams.kafka import clients
from streams.settings import KafkaSettings


@dataclass(frozen=True)
class PartitionLag:
    topic: str
    partition: int
    committed: int | None
    end: int

    @property
    def lag(self) -> int:
        return self.end - (self.committed or 0)


class LagReader:
    """Reads end offsets and groups' committed offsets, reusing its clients.

    Committed offsets are fetched by a consumer that carries the group's id but never
    subscribes, so it never joins or disturbs the group. (librdkafka's admin
    ListConsumerGroupOffsets crashed the process here when the group coordinator was still
    loading: a NULL consumer-group handle in rd_kafka_handle_OffsetFetch.)
    """

    def __init__(self, bootstrap: str, kafka: KafkaSettings, timeout: float = 10.0) -> None:
        self.timeout = timeout
        self.bootstrap = bootstrap
        self.kafka = kafka
        self._consumers: dict[str, Any] = {}
        self._consumer = self._for_group("intouch-connector-watermarks")

    def _for_group(self, group: str) -> Any:
        if group not in self._consumers:
            self._consumers[group] = clients.consumer(self.bootstrap, self.kafka, group)
        return self._consumers[group]

    def close(self) -> None:
        for consumer in self._consumers.values():
            consumer.close()
        self._consumers.clear()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def end_offsets(self, topics: Iterable[str]) -> dict[tuple[str, int], int]:
        """The next offset of every partition of `topics`."""
        from confluent_kafka import TopicPartition

        ends = {}
        for topic in topics:
            with clients.kafka_errors(f"cannot read the end offsets of {topic}"):
                meta = self._consumer.list_topics(topic, timeout=self.timeout).topics[topic]
                if meta.error is not None:
                    raise KafkaClientError(f"topic {topic}: {meta.error}")
                for p in sorted(meta.partitions):
                    _, end = self._consumer.get_watermark_offsets(
                        TopicPartition(topic, p), timeout=self.timeout
                    )
                    ends[(topic, p)] = end
        return ends

    def committed(
        self, group: str, partitions: Iterable[tuple[str, int]]
    ) -> dict[tuple[str, int], int | None]:
        """`group`'s committed offset on each of `partitions`, None where it never committed."""
        from confluent_kafka import TopicPartition

        wanted = [TopicPartition(t, p) for t, p in partitions]
        if not wanted:
            return {}
        with clients.kafka_errors(f"cannot read offsets of group {group}"):
            rows = self._for_group(group).committed(wanted, timeout=self.timeout)
        return {(tp.topic, tp.partition): tp.offset if tp.offset >= 0 else None for tp in rows}

    def committed_topics(self, group: str) -> list[str]:
        """The topics on which `group` has committed offsets (Kafka's own topics left out)."""
        with clients.kafka_errors(f"cannot list the topics of Kafka at {self.bootstrap}"):
            metadata = self._consumer.list_topics(timeout=self.timeout)
        partitions = [
            (name, p)
            for name, meta in metadata.topics.items()
            if not name.startswith("__") and meta.error is None
            for p in meta.partitions
        ]
        committed = self.committed(group, partitions)
        return sorted({t for (t, _), offset in committed.items() if offset is not None})

    def group_lag(self, group: str, topics: Iterable[str]) -> list[PartitionLag]:
        """Lag of `group` on every partition of `topics` (never committed counts from 0)."""
        ends = self.end_offsets(topics)
        committed = self.committed(group, ends)
        return [PartitionLag(t, p, committed.get((t, p)), end) for (t, p), end in ends.items()]


def group_lag(
    bootstrap: str, kafka: KafkaSettings, group: str, topics: Iterable[str]
) -> list[PartitionLag]:
    with LagReader(bootstrap, kafka) as reader:
        return reader.group_lag(group, topics)


def end_offsets(bootstrap: str, kafka: KafkaSettings, topic: str) -> dict[int, int]:
    """The next offset of every partition of `topic`."""
    with LagReader(bootstrap, kafka) as reader:
        return {p: end for (_, p), end in reader.end_offsets([topic]).items()}
