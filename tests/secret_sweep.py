"""Looks for test secrets in every record of every topic and in every log file of a session."""

from __future__ import annotations

from pathlib import Path

from streams.kafka.reader import read_to_end
from streams.settings import KafkaSettings
from tests.secret_values import ALL, find_leaks

SENTINEL_TOPIC = "secret-sweep-sentinel"


def write_sentinel(bootstrap: str) -> None:
    """One harmless record, so the sweep always has something to read (and proves it reads)."""
    from confluent_kafka import Producer
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap})  # kept alive until the topic exists
    admin.create_topics([NewTopic(SENTINEL_TOPIC, 1, 1)])[SENTINEL_TOPIC].result()
    producer = Producer({"bootstrap.servers": bootstrap})
    producer.produce(SENTINEL_TOPIC, value=b"nothing secret here")
    assert producer.flush(30) == 0


def leaks_in_topics(
    bootstrap: str, secrets: tuple[str, ...] = ALL, timeout: float = 120.0
) -> tuple[int, list[str]]:
    """(records read, where a secret was found) over all topics, internal ones included."""
    found: list[str] = []
    read = 0
    for message in read_to_end(bootstrap, KafkaSettings(), None, timeout):
        read += 1
        headers = message.headers() or []
        blob = b"".join(
            [message.key() or b"", message.value() or b""]
            + [k.encode() + (v or b"") for k, v in headers]
        )
        for secret in find_leaks(blob, secrets):
            where = f"{message.topic()}[{message.partition()}]@{message.offset()}"
            found.append(f"{where}: {secret[:3]}…")
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
