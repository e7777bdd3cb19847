"""The asyncio bridge over a producer: acks and failures reach the awaiting task, in the
library's thread-free shape; the real producer is tested in tests/integration/kafka."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

import pytest
from confluent_kafka import KafkaError

from streams.exceptions import KafkaClientError
from streams.kafka.writer import AsyncProducer, Delivered


class Reported:
    """What a delivery callback gets as the message."""

    def __init__(self, topic: str, partition: int, offset: int) -> None:
        self._where = (topic, partition, offset)

    def topic(self) -> str:
        return self._where[0]

    def partition(self) -> int:
        return self._where[1]

    def offset(self) -> int:
        return self._where[2]


class QueueingProducer:
    """Holds callbacks until `poll` or `flush` serves them, as librdkafka does; keys ending in
    `!` fail, a `full` producer refuses to queue."""

    def __init__(self) -> None:
        self.queued: list[tuple[Callable[..., None], str, bytes | None]] = []
        self.offsets: dict[str, int] = {}
        self.full = False
        self.held = False  # poll serves nothing: only a flush does
        self.lock = threading.Lock()

    def produce(self, topic: str, value: Any, key: Any, *, headers: Any, on_delivery: Any) -> None:
        if self.full:
            raise BufferError("Local: Queue full")
        with self.lock:
            self.queued.append((on_delivery, topic, key))

    def poll(self, timeout: float) -> int:
        if self.held:
            threading.Event().wait(min(timeout, 0.01))
            return 0
        return self._serve(timeout)

    def _serve(self, timeout: float) -> int:
        with self.lock:
            served, self.queued = self.queued, []
        for callback, topic, key in served:
            if key is not None and key.endswith(b"!"):
                callback(KafkaError(KafkaError.MSG_SIZE_TOO_LARGE, "Broker: too large"), None)
                continue
            offset = self.offsets.get(topic, 0)
            self.offsets[topic] = offset + 1
            callback(None, Reported(topic, 0, offset))
        if not served:
            threading.Event().wait(min(timeout, 0.01))
        return len(served)

    def flush(self, timeout: float) -> int:
        self._serve(0)
        return 0


def started(fake: QueueingProducer) -> AsyncProducer:
    producer = AsyncProducer(lambda: fake)
    producer.start()
    return producer


def test_acks_resolve_with_the_position_and_failures_as_our_error() -> None:
    fake = QueueingProducer()
    producer = started(fake)
    topic = producer.topic("outcomes")

    async def run() -> list[Any]:
        acks = [await topic.send(key=key, value=b"v") for key in (b"a", b"b!", b"c")]
        return list(await asyncio.gather(*acks, return_exceptions=True))

    try:
        first, failed, third = asyncio.run(run())
    finally:
        producer.stop(1)
    assert first == Delivered("outcomes", 0, 0) and third == Delivered("outcomes", 0, 1)
    assert isinstance(failed, KafkaClientError)
    assert "MSG_SIZE_TOO_LARGE" in str(failed)
    assert topic.get_topic_name() == "outcomes"


def test_a_sender_that_stopped_waiting_is_skipped_and_the_others_still_resolve() -> None:
    fake = QueueingProducer()
    producer = started(fake)

    async def run() -> Delivered:
        gone = producer.send("t", b"a", b"v")
        gone.cancel()
        return await producer.send("t", b"b", b"v")

    try:
        assert asyncio.run(run()) == Delivered("t", 0, 1)
    finally:
        producer.stop(1)


def test_a_full_queue_or_a_stopped_producer_refuses_with_our_error() -> None:
    fake = QueueingProducer()
    producer = AsyncProducer(lambda: fake)

    async def send() -> None:
        await producer.send("t", b"a", b"v")

    with pytest.raises(KafkaClientError, match="not running"):
        asyncio.run(send())
    producer.start()
    fake.full = True
    with pytest.raises(KafkaClientError, match="queue is full"):
        asyncio.run(send())
    producer.stop(1)
    fake.full = False
    with pytest.raises(KafkaClientError, match="not running"):
        asyncio.run(send())


def test_stop_hands_over_what_the_final_flush_acknowledged() -> None:
    fake = QueueingProducer()
    fake.held = True
    producer = started(fake)

    async def run() -> Delivered:
        ack = producer.send("t", b"a", b"v")
        await asyncio.to_thread(producer.stop, 1)
        return await asyncio.wait_for(ack, 5)

    assert asyncio.run(run()) == Delivered("t", 0, 0)
