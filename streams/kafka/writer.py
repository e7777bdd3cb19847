"""One confluent-kafka producer for a whole worker, whose sends asyncio code awaits until acked."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

from streams.exceptions import KafkaClientError
from streams.kafka import clients
from streams.settings import KafkaSettings

log = logging.getLogger(__name__)

#: Longest the delivery thread blocks in one `poll` (also how soon it notices a stop).
POLL_INTERVAL = 0.1

#: A record's headers as confluent-kafka takes them.
Headers = Sequence[tuple[str, bytes | None]] | None


class Delivered(NamedTuple):
    """Where the broker put an acknowledged record."""

    topic: str
    partition: int
    offset: int


class AsyncProducer:
    """librdkafka builds the batches and keeps each partition's records in order (idempotent,
    acks from all replicas, murmur2 like Faust and the Java client); one thread serves its
    delivery reports and hands them to the event loop a poll's worth at a time.

    Built idle: `start()` connects, `stop()` flushes what is queued and ends the thread.
    """

    def __init__(self, make: Callable[[], Any]) -> None:
        self._make = make
        self._producer: Any = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._flush_timeout = 0.0
        # Filled by delivery callbacks (in whichever thread serves them), drained by `_serve`.
        self._reports: collections.deque[tuple[asyncio.Future[Delivered], Any]] = (
            collections.deque()
        )

    @classmethod
    def of(
        cls, bootstrap: str, kafka: KafkaSettings, config: clients.Config | None = None
    ) -> AsyncProducer:
        """A producer built by `clients.producer` (so with the cluster's SASL/TLS settings)."""
        return cls(lambda: clients.producer(bootstrap, kafka, config))

    def topic(self, name: str) -> TopicWriter:
        return TopicWriter(self, name)

    def start(self) -> None:
        if self._thread is not None:
            return
        self._producer = self._make()
        self._thread = threading.Thread(target=self._serve, name="producer-acks", daemon=True)
        self._thread.start()

    def stop(self, timeout: float) -> None:
        """Wait up to `timeout` seconds for queued records to be acknowledged, then end."""
        thread = self._thread
        if thread is None:
            return
        self._flush_timeout = timeout
        self._stopping.set()
        thread.join(timeout + POLL_INTERVAL * 2)

    async def aclose(self, flush_within: float) -> None:
        """`stop` from the event loop, in a thread of its own."""
        await asyncio.to_thread(self.stop, flush_within)

    def send(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        headers: Headers = None,
        partition: int | None = None,
    ) -> asyncio.Future[Delivered]:
        """Queue one record (on `partition`, or the key's); the future resolves when the
        broker acknowledged it, or fails with `KafkaClientError` (never a confluent-kafka
        exception)."""
        if self._producer is None or self._stopping.is_set():
            raise KafkaClientError(f"the producer for {topic} is not running")
        future: asyncio.Future[Delivered] = asyncio.get_running_loop().create_future()
        extra = {} if partition is None else {"partition": partition}
        try:
            self._producer.produce(
                topic,
                value,
                key,
                headers=list(headers) if headers else None,
                on_delivery=functools.partial(self._delivered, future),
                **extra,
            )
        except BufferError as exc:
            raise KafkaClientError(f"the producer's queue is full: {exc}") from exc
        except Exception as exc:  # KafkaException, or a bad argument
            raise KafkaClientError(f"cannot queue a record for {topic}: {exc}") from exc
        return future

    def _delivered(self, future: asyncio.Future[Delivered], err: Any, msg: Any) -> None:
        if err is not None:
            outcome: Any = KafkaClientError(f"{err.str()} ({err.name()})")
        else:
            outcome = Delivered(msg.topic(), msg.partition(), msg.offset())
        self._reports.append((future, outcome))

    def _serve(self) -> None:
        producer = self._producer
        while not self._stopping.is_set():
            producer.poll(POLL_INTERVAL)
            self._hand_over()
        left = producer.flush(self._flush_timeout)
        self._hand_over()
        if left:
            log.warning("%d records not acknowledged when the producer stopped", left)

    def _hand_over(self) -> None:
        """Resolve the reports gathered so far, one wake-up of each event loop for all."""
        if not self._reports:
            return
        batches: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Delivered], Any]]] = {}
        while self._reports:
            future, outcome = self._reports.popleft()
            batches.setdefault(future.get_loop(), []).append((future, outcome))
        for loop, batch in batches.items():
            # A closed loop raises RuntimeError: nobody is waiting there any more.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(_resolve, batch)


def _resolve(batch: list[tuple[asyncio.Future[Delivered], Any]]) -> None:
    for future, outcome in batch:
        if future.done():  # cancelled: its sender stopped waiting
            continue
        if isinstance(outcome, BaseException):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)


class TopicWriter:
    """One topic of an `AsyncProducer`, shaped like the Faust topic the Publisher used:
    `await send(...)` queues, awaiting its result waits for the broker's ack."""

    def __init__(self, producer: AsyncProducer, name: str) -> None:
        self._producer = producer
        self._name = name

    def get_topic_name(self) -> str:
        return self._name

    async def send(
        self,
        *,
        key: bytes | None,
        value: bytes | None,
        headers: Headers = None,
        partition: int | None = None,
    ) -> asyncio.Future[Delivered]:
        return self._producer.send(self._name, key, value, headers, partition)
