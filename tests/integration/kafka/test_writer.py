"""The worker's producer: keys on the partitions Faust (aiokafka) chose, acks in order, and a
stopped broker ending in PublishError within the publish timeout."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from aiokafka.partitioner import DefaultPartitioner  # type: ignore[import-untyped]
from confluent_kafka.admin import AdminClient, NewTopic

from streams.avro.codec import default_codecs
from streams.core.model import Status
from streams.exceptions import PublishError
from streams.kafka.local import LocalKafka
from streams.kafka.writer import AsyncProducer, Delivered
from streams.settings import KafkaSettings, LocalKafkaSettings
from streams.worker.links import LinkStore
from streams.worker.metrics import Metrics
from streams.worker.publishing import Publisher
from tests.unit.worker.test_user_states import command

PARTITIONS = 12


def create_topic(bootstrap: str, name: str, partitions: int = PARTITIONS) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.create_topics([NewTopic(name, partitions, 1)]).values():
        future.result(timeout=30)


def entity_keys(count: int) -> list[bytes]:
    codec = default_codecs()["EntityKey"]
    entities = ("USER", "STAFF", "LEAD_SOURCE")
    return [
        codec.encode(
            {"client_id": f"{100 + n % 7}", "entity": entities[n % 3], "intouch_id": f"{n:05d}"}
        )
        for n in range(count)
    ]


def test_entity_keys_land_on_the_partitions_aiokafka_chose(
    kafka_bootstrap: str, unique: str
) -> None:
    topic = f"writer-{unique}"
    create_topic(kafka_bootstrap, topic)
    keys = entity_keys(300)
    producer = AsyncProducer.of(kafka_bootstrap, KafkaSettings())
    producer.start()

    async def send_all() -> list[Delivered]:
        writer = producer.topic(topic)
        acks = [await writer.send(key=key, value=b"v", headers=None) for key in keys]
        return list(await asyncio.gather(*acks))

    try:
        delivered = asyncio.run(send_all())
    finally:
        producer.stop(10)
    every = list(range(PARTITIONS))
    expected = [DefaultPartitioner()(key, every, every) for key in keys]
    assert [d.partition for d in delivered] == expected
    assert len(set(expected)) == PARTITIONS  # the keys spread: a wrong hash could not pass
    # One partition's offsets follow the order of the sends.
    for partition in every:
        offsets = [d.offset for d in delivered if d.partition == partition]
        assert offsets == sorted(offsets) and len(set(offsets)) == len(offsets)


def outcome_publisher(
    producer: AsyncProducer, topic: str, tmp_path: Path, timeout: float
) -> Publisher:
    return Publisher(
        default_codecs(), commands=None, outcomes=producer.topic(topic),
        link_changelog=producer.topic(f"{topic}-links"), dead_letters=None, parked=None,
        links=LinkStore(tmp_path / "links"), metrics=Metrics(), timeout=timeout,
    )  # fmt: skip


def test_a_broker_stopped_under_the_publisher_ends_in_publish_error_within_the_timeout(
    tmp_path: Path,
) -> None:
    local = LocalKafka(LocalKafkaSettings(state_dir=tmp_path / "kafka"))
    bootstrap = local.up().bootstrap
    try:
        create_topic(bootstrap, "outcomes", partitions=2)
        create_topic(bootstrap, "outcomes-links", partitions=2)
        timeout = 6.0
        # As the worker builds it: librdkafka gives a record up after the publish timeout.
        config = {"message.timeout.ms": int(1000 * timeout)}
        producer = AsyncProducer.of(bootstrap, KafkaSettings(), config)
        producer.start()
        publisher = outcome_publisher(producer, "outcomes", tmp_path, timeout)

        async def write(version: int) -> None:
            await publisher.outcome(command(version), Status.LINKED, receiver_id="P1")

        asyncio.run(write(1))
        link = publisher.links.user("100", "5001")
        assert link is not None and link.version == 1  # applied with the broker's position
        assert local.down()
        started = time.monotonic()
        try:
            asyncio.run(write(2))
        except PublishError as exc:
            elapsed = time.monotonic() - started
            assert "cannot write a Outcome to outcomes" in str(exc)
        else:
            raise AssertionError("an outcome was acknowledged by a stopped broker")
        assert elapsed <= timeout + 2, elapsed
        link = publisher.links.user("100", "5001")
        assert link is not None and link.version == 1  # nothing unacknowledged was applied
        publisher.links.close()
        producer.stop(0)
    finally:
        local.down()
