"""`connector generate` puts exactly the scenario's events on the real broker, in order per key."""

from __future__ import annotations

import time
from collections import defaultdict
from typing import Any

import pytest
from confluent_kafka import Consumer, TopicPartition

from demo.generate import produce_scenario, topic_for
from demo.scenario import SUBJECT_OF, build_scenario
from streams.avro.codec import Codecs
from streams.avro.registry import FileRegistry
from streams.settings import KafkaSettings, TopicSettings
from tests.integration.harness import connector

pytestmark = pytest.mark.integration

EVENTS = 300
SEED = 7


def test_generate_produces_the_scenario_exactly(
    kafka_bootstrap: str, unique: str, test_env: dict[str, str]
) -> None:
    ensured = connector(test_env, "topics", "ensure")
    assert ensured.returncode == 0, ensured.stderr
    done = connector(
        test_env,
        *("generate", "--client", "100", "--clubs", "7,8"),
        *("--events", str(EVENTS), "--seed", str(SEED), "--no-progress"),
    )
    assert done.returncode == 0, done.stderr

    topics = TopicSettings(topic_prefix=f"t{unique}.")
    scenario = build_scenario(SEED, EVENTS, "100", ["7", "8"])
    by_entity = {entity: topic_for(entity, topics) for entity in SUBJECT_OF}
    subject_of_topic = {topic: SUBJECT_OF[entity] for entity, topic in by_entity.items()}
    wanted: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for event in scenario.events:
        wanted[(by_entity[event.entity], event.intouch_id)].append(event.value)
    summary = dict(line.split("\t")[:2] for line in done.stdout.splitlines())
    for entity, topic in by_entity.items():
        assert int(summary[topic]) == sum(1 for e in scenario.events if e.entity == entity)
    assert int(summary["total"]) == EVENTS

    codecs = Codecs(FileRegistry())
    consumer = Consumer(
        {
            "bootstrap.servers": kafka_bootstrap,
            "group.id": f"g{unique}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    got: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    received = 0
    try:
        consumer.subscribe(list(subject_of_topic))
        deadline = time.monotonic() + 60
        while received < EVENTS and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is None:
                continue
            assert message.error() is None, message.error()
            key = codecs["EntityKey"].decode(message.key())
            topic = message.topic()
            assert key["client_id"] == "100"
            assert SUBJECT_OF[key["entity"]] == subject_of_topic[topic]
            got[(topic, key["intouch_id"])].append(
                codecs[subject_of_topic[topic]].decode(message.value())
            )
            received += 1
        # Exactly: the topics hold no more than the scenario (idempotent producer, no retries).
        on_broker = 0
        for topic in subject_of_topic:
            partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
            for partition in partitions:
                _low, high = consumer.get_watermark_offsets(
                    TopicPartition(topic, partition), timeout=10
                )
                on_broker += high
    finally:
        consumer.close()
    assert received == EVENTS
    assert on_broker == EVENTS
    assert dict(got) == dict(wanted)  # every entity's events, in version order


def test_produce_scenario_paces_one_phase(
    kafka_bootstrap: str, unique: str, test_env: dict[str, str]
) -> None:
    assert connector(test_env, "topics", "ensure").returncode == 0
    topics = TopicSettings(topic_prefix=f"t{unique}.")
    reference = build_scenario(SEED, EVENTS, "100", ["7"]).phase("reference")
    rate = 50.0
    started = time.monotonic()
    counts = produce_scenario(
        kafka_bootstrap, KafkaSettings(), topics, reference, rate=rate, progress=True
    )
    assert time.monotonic() - started >= (len(reference) - 1) / rate
    assert counts == {
        topic_for("STAFF", topics): sum(1 for e in reference if e.entity == "STAFF"),
        topic_for("LEAD_SOURCE", topics): sum(1 for e in reference if e.entity == "LEAD_SOURCE"),
    }


def test_generate_on_missing_topics_says_what_to_run_at_once(
    kafka_bootstrap: str, test_env: dict[str, str]
) -> None:
    started = time.monotonic()
    done = connector(test_env, "generate", "--events", "10", "--no-progress")  # never ensured
    assert done.returncode == 1
    assert "does not exist" in done.stderr and "connector topics ensure" in done.stderr
    assert time.monotonic() - started < 20  # not the 30 s flush timeout


def test_generate_refuses_an_empty_client_id(test_env: dict[str, str]) -> None:
    done = connector(test_env, "generate", "--client", " ", "--events", "10")
    assert done.returncode == 2
    assert "give the InTouch client ID" in done.stderr
