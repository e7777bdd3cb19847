"""The end-of-session secret sweep finds a secret wherever it hides (checked with a canary)."""

from __future__ import annotations

import base64
from pathlib import Path

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

from tests.secret_sweep import leaks_in_files, leaks_in_topics

CANARY = ("canary-N0t-a-real-secret",)


def test_the_sweep_finds_a_secret_in_a_value_a_header_and_a_basic_header(
    kafka_bootstrap: str, unique: str
) -> None:
    topic = f"t{unique}.leak"
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    admin.create_topics([NewTopic(topic, 2, 1)])[topic].result()
    try:
        producer = Producer({"bootstrap.servers": kafka_bootstrap})
        producer.produce(topic, key=b"a", value=b"x canary-N0t-a-real-secret y", partition=0)
        producer.produce(topic, key=b"b", value=b"clean", headers=[("h", CANARY[0].encode())])
        basic = base64.b64encode(f"connector:{CANARY[0]}".encode())
        producer.produce(topic, key=b"c", value=b"Authorization: Basic " + basic, partition=1)
        producer.produce(topic, key=b"d", value=b"clean", partition=1)
        assert producer.flush(30) == 0
        read, found = leaks_in_topics(kafka_bootstrap, CANARY)
        assert read >= 4
        assert len([f for f in found if f.startswith(topic)]) == 3
    finally:
        admin.delete_topics([topic])[topic].result()


def test_the_sweep_finds_a_secret_in_a_log_file(tmp_path: Path) -> None:
    (tmp_path / "worker.log").write_text("GET /x with canary-N0t-a-real-secret\n")
    (tmp_path / "clean.log").write_text("nothing here\n")
    found = leaks_in_files(tmp_path, CANARY)
    assert len(found) == 1 and "worker.log" in found[0]
