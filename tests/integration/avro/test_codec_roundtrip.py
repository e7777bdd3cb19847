"""A UserChanged produced through the codec comes back equal over the real broker."""

from __future__ import annotations

import time

from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from streams.avro.codec import Codecs
from streams.avro.registry import FileRegistry
from tests.unit.avro.test_codec import full_user


def test_user_changed_round_trips_over_kafka(kafka_bootstrap: str, unique: str) -> None:
    topic = f"t{unique}.intouch.users.v1"
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    admin.create_topics([NewTopic(topic, 2, 1)])[topic].result()
    codecs = Codecs(FileRegistry())
    key = {"client_id": "100", "entity": "USER", "intouch_id": "5001"}
    sent = [full_user(version=v, first_name=f"Pete{v}") for v in range(1, 4)]

    producer = Producer({"bootstrap.servers": kafka_bootstrap, "enable.idempotence": True})
    for value in sent:
        producer.produce(
            topic, key=codecs["EntityKey"].encode(key), value=codecs["UserChanged"].encode(value)
        )
    assert producer.flush(30) == 0

    consumer = Consumer(
        {
            "bootstrap.servers": kafka_bootstrap,
            "group.id": f"g{unique}",
            "auto.offset.reset": "earliest",
        }
    )
    consumer.subscribe([topic])
    received = []
    deadline = time.monotonic() + 60
    try:
        while len(received) < len(sent) and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is None or message.error():
                continue
            received.append(
                (
                    codecs["EntityKey"].decode(message.key()),
                    codecs["UserChanged"].decode(message.value()),
                )
            )
    finally:
        consumer.close()
    assert [k for k, _ in received] == [key] * 3
    assert [v for _, v in received] == sent  # one key, one partition: order kept
