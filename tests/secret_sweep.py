"""Looks for test secrets in every record of every topic and in every log file of a session."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

from confluent_kafka import Consumer, KafkaError, TopicPartition

from tests.secret_values import ALL, find_leaks


def leaks_in_topics(
    bootstrap: str, secrets: tuple[str, ...] = ALL, timeout: float = 120.0
) -> tuple[int, list[str]]:
    """(records read, where a secret was found) over all topics, internal ones included."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"secret-sweep-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
            # Compaction and control records leave gaps below the high watermark: stop at EOF.
            "enable.partition.eof": True,
        }
    )
    found: list[str] = []
    read = 0
    deadline = time.monotonic() + timeout
    try:
        remaining: set[tuple[str, int]] = set()
        assignment = []
        for topic, meta in consumer.list_topics(timeout=10).topics.items():
            for p in meta.partitions:
                low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
                if high > low:
                    remaining.add((topic, p))
                    assignment.append(TopicPartition(topic, p, low))
        consumer.assign(assignment)  # all at once: one fetch session instead of one per partition
        while remaining:
            if time.monotonic() > deadline:
                raise AssertionError(f"secret sweep left {len(remaining)} partitions unread")
            for message in consumer.consume(5000, timeout=1.0):
                error = message.error()
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF:
                        remaining.discard((message.topic(), message.partition()))
                    continue
                read += 1
                headers = message.headers() or []
                blob = b"".join(
                    [message.key() or b"", message.value() or b""]
                    + [k.encode() + (v or b"") for k, v in headers]
                )
                for secret in find_leaks(blob, secrets):
                    where = f"{message.topic()}[{message.partition()}]@{message.offset()}"
                    found.append(f"{where}: {secret[:3]}…")
    finally:
        consumer.close()
    return read, found


def leaks_in_files(root: Path, secrets: tuple[str, ...] = ALL) -> list[str]:
    """Log and output files under `root` that contain a test secret."""
    found = []
    for path in root.rglob("*"):
        if path.is_file() and path.suffix in (".log", ".out", ".err", ".txt", ".json"):
            leaks = find_leaks(path.read_bytes(), secrets)
            if leaks:
                found.append(f"{path}: {[s[:3] + '…' for s in leaks]}")
    return found
