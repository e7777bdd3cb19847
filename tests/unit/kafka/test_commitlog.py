"""Offset commits decoded from __consumer_offsets records, and the partition a group's are in."""

from __future__ import annotations

import struct

import pytest

from streams.exceptions import SerializationError
from streams.kafka.commitlog import (
    OffsetCommit,
    decode_commit,
    java_string_hash,
    offsets_partition,
)


def string(text: str) -> bytes:
    data = text.encode()
    return struct.pack(">h", len(data)) + data


def key(group: str, topic: str, partition: int, version: int = 1) -> bytes:
    return struct.pack(">h", version) + string(group) + string(topic) + struct.pack(">i", partition)


def test_java_string_hashes() -> None:
    assert java_string_hash("") == 0
    assert java_string_hash("hello") == 99162322
    assert java_string_hash("polygenelubricants") == -(1 << 31)  # Integer.MIN_VALUE
    assert java_string_hash("é✓") == 0xE9 * 31 + 0x2713


def test_a_group_lands_on_the_partition_the_broker_picks() -> None:
    assert offsets_partition("hello", 50) == 99162322 % 50
    assert offsets_partition("polygenelubricants", 50) == 0  # abs(MIN_VALUE) is 0 in Kafka
    negative = "intouch-connector"
    assert java_string_hash(negative) < 0
    assert offsets_partition(negative, 10) == abs(java_string_hash(negative)) % 10


@pytest.mark.parametrize(
    "value",
    [
        struct.pack(">hq", 0, 41) + string("m") + struct.pack(">q", 1_700_000_000_123),
        struct.pack(">hq", 1, 41) + string("m") + struct.pack(">qq", 1_700_000_000_123, -1),
        struct.pack(">hqi", 3, 41, 7) + string("") + struct.pack(">q", 1_700_000_000_123),
        struct.pack(">hqi", 4, 41, 7) + b"\x02m" + struct.pack(">q", 1_700_000_000_123) + b"\x00",
    ],
    ids=["v0", "v1", "v3", "v4-flexible"],
)
def test_commit_values_of_every_version_are_read(value: bytes) -> None:
    assert decode_commit(key("g", "t.users", 3), value) == OffsetCommit(
        "g", "t.users", 3, 41, 1_700_000_000.123
    )


def test_records_that_are_not_commits_are_passed_over() -> None:
    value = struct.pack(">hq", 1, 41) + string("") + struct.pack(">qq", 1, -1)
    assert decode_commit(key("g", "t", 0), None) is None  # offsets deleted
    assert decode_commit(None, value) is None
    assert decode_commit(struct.pack(">h", 2) + string("g"), b"\x00\x03...") is None  # metadata
    assert decode_commit(key("g", "t", 0), struct.pack(">h", 9) + b"\x00" * 20) is None


def test_a_truncated_record_is_a_serialization_error() -> None:
    with pytest.raises(SerializationError):
        decode_commit(key("g", "t", 0), struct.pack(">hq", 1, 41))
