"""A group's offset commits as they happen, with their commit times, read from __consumer_offsets.

Fetching committed offsets says where a group is, not when it last committed: a group that
keeps committing the same offset (stalled) and one that stopped committing look alike. Burrow
tells them apart by reading the broker's offsets topic, and so do we: only the one partition
that holds the group's records is read, from its end on.
"""

from __future__ import annotations

import struct
import time
from dataclasses import dataclass
from typing import Any

from streams.exceptions import KafkaClientError, SerializationError
from streams.kafka import clients
from streams.settings import KafkaSettings

OFFSETS_TOPIC = "__consumer_offsets"

#: The group id of the reader; it assigns partitions itself and never joins or commits.
READER_GROUP = "intouch-connector-lag-view"


@dataclass(frozen=True)
class OffsetCommit:
    """One commit of a group: its partition, offset and the broker's commit time (seconds)."""

    group: str
    topic: str
    partition: int
    offset: int
    timestamp: float


def java_string_hash(text: str) -> int:
    """Java's `String.hashCode()` (over UTF-16 code units), as a signed 32-bit int."""
    h = 0
    data = text.encode("utf-16-be")
    for i in range(0, len(data), 2):
        h = (31 * h + ((data[i] << 8) | data[i + 1])) & 0xFFFFFFFF
    return h - (1 << 32) if h >= 1 << 31 else h


def offsets_partition(group: str, partitions: int) -> int:
    """The partition of __consumer_offsets that holds `group`'s records, as the broker picks it
    (`Utils.abs(group.hashCode()) % partitions`)."""
    h = java_string_hash(group)
    return (0 if h == -(1 << 31) else abs(h)) % partitions


class _Buffer:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.at = 0

    def take(self, fmt: str) -> Any:
        size = struct.calcsize(fmt)
        if self.at + size > len(self.data):
            raise SerializationError("offsets record ends early")
        (value,) = struct.unpack_from(fmt, self.data, self.at)
        self.at += size
        return value

    def string(self) -> str:
        size = self.take(">h")
        return self._text(size)

    def compact_string(self) -> str:
        size = self._uvarint() - 1
        return self._text(size)

    def _text(self, size: int) -> str:
        if size < 0:
            return ""
        if self.at + size > len(self.data):
            raise SerializationError("offsets record ends early")
        text = self.data[self.at : self.at + size].decode("utf-8", errors="replace")
        self.at += size
        return text

    def _uvarint(self) -> int:
        value = shift = 0
        while True:
            byte: int = self.take(">B")
            value |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return value
            shift += 7


def decode_commit(key: bytes | None, value: bytes | None) -> OffsetCommit | None:
    """An offset commit from a record of __consumer_offsets; None for any other record (group
    metadata, tombstones, newer record kinds)."""
    if not key or not value:
        return None
    k = _Buffer(key)
    if k.take(">h") not in (0, 1):  # 0 and 1 are offset commits; 2+ is group metadata & co
        return None
    group, topic, partition = k.string(), k.string(), k.take(">i")
    v = _Buffer(value)
    version = v.take(">h")
    if version in (0, 1, 2):
        offset = v.take(">q")
        v.string()  # metadata
        committed_ms = v.take(">q")
    elif version == 3:
        offset = v.take(">q")
        v.take(">i")  # leader epoch
        v.string()
        committed_ms = v.take(">q")
    elif version == 4:  # flexible: compact metadata string, tagged fields after
        offset = v.take(">q")
        v.take(">i")
        v.compact_string()
        committed_ms = v.take(">q")
    else:
        return None
    return OffsetCommit(group, topic, partition, offset, committed_ms / 1000.0)


class CommitLog:
    """Follows one group's commits from the moment it is opened."""

    def __init__(
        self, bootstrap: str, kafka: KafkaSettings, group: str, timeout: float = 10.0
    ) -> None:
        from confluent_kafka import TopicPartition

        self.group = group
        self.timeout = timeout
        self._consumer = clients.consumer(bootstrap, kafka, READER_GROUP)
        try:
            with clients.kafka_errors(f"cannot read {OFFSETS_TOPIC}"):
                meta = self._consumer.list_topics(OFFSETS_TOPIC, timeout=timeout)
                found = meta.topics.get(OFFSETS_TOPIC)
                if found is None or found.error is not None or not found.partitions:
                    raise KafkaClientError(f"{OFFSETS_TOPIC} cannot be read")
                self._tp = TopicPartition(
                    OFFSETS_TOPIC, offsets_partition(group, len(found.partitions))
                )
                _, end = self._consumer.get_watermark_offsets(self._tp, timeout=timeout)
                self._tp.offset = end
                self._consumer.assign([self._tp])
        except BaseException:
            self._consumer.close()
            raise

    def read_new(self) -> list[OffsetCommit]:
        """The group's commits since the last call (or since opening), oldest first."""
        with clients.kafka_errors(f"cannot read {OFFSETS_TOPIC}"):
            _, end = self._consumer.get_watermark_offsets(self._tp, timeout=self.timeout)
            found: list[OffsetCommit] = []
            position = self._position()
            deadline = time.monotonic() + self.timeout
            while position < end:
                if time.monotonic() > deadline:
                    raise KafkaClientError(
                        f"{OFFSETS_TOPIC} could not be read to offset {end} "
                        f"within {self.timeout:g}s"
                    )
                for message in self._consumer.consume(500, timeout=0.5):
                    if message.error() is not None:
                        continue
                    position = message.offset() + 1
                    try:
                        commit = decode_commit(message.key(), message.value())
                    except SerializationError:
                        continue  # a record kind of a newer broker: not a commit we know
                    if commit is not None and commit.group == self.group:
                        found.append(commit)
                position = max(position, self._position())
            return found

    def _position(self) -> int:
        (tp,) = self._consumer.position([self._tp])
        return int(tp.offset) if tp.offset >= 0 else int(self._tp.offset)

    def close(self) -> None:
        self._consumer.close()
