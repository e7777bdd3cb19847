"""The tenant directory: every worker follows the compacted tenants topic live."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from types import TracebackType
from typing import Any, Self

from streams.avro.codec import AvroCodec, default_codecs
from streams.exceptions import (
    KafkaClientError,
    KafkaTimeoutError,
    RecordDecodeError,
    UnknownTenantError,
)
from streams.kafka import clients
from streams.settings import KafkaSettings
from streams.tenancy.tenant import Tenant, tenant_from_record

log = logging.getLogger(__name__)

DEFAULT_START_TIMEOUT = 30.0
DEFAULT_POLL_INTERVAL = 0.2


class TenantDirectory:
    """Every tenant on the tenants topic, kept current by a reader thread (no group commits)."""

    def __init__(
        self,
        bootstrap: str,
        kafka: KafkaSettings,
        topic: str,
        *,
        codec: AvroCodec | None = None,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self._kafka = kafka
        self._codec = codec or default_codecs()["TenantConfigured"]
        self._poll_interval = poll_interval
        self._clock = clock
        self._tenants: dict[str, Tenant] = {}
        self._version = 0
        # Guards tenants, version, positions and failure; waiters sleep on it.
        self._changed = threading.Condition()
        self._positions: dict[int, int] = {}
        self._failure: BaseException | None = None
        # confluent-kafka consumers are not meant for concurrent calls from two threads.
        self._consumer_lock = threading.Lock()
        self._consumer: Any = None
        self._partitions: list[int] = []
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:
        return f"<TenantDirectory {self.topic} tenants={len(self._tenants)} v{self._version}>"

    # -- state -------------------------------------------------------------------------------

    @property
    def version(self) -> int:
        """Incremented on every change, so callers know when to rebuild receiver clients."""
        with self._changed:
            return self._version

    def get(self, client_id: str) -> Tenant | None:
        """The client's tenant, or None when it is not turned up."""
        with self._changed:
            return self._tenants.get(client_id)

    def require(self, client_id: str) -> Tenant:
        """The client's tenant; `UnknownTenantError` when it is not turned up."""
        tenant = self.get(client_id)
        if tenant is None:
            raise UnknownTenantError(f"client {client_id!r} is not turned up")
        return tenant

    def all(self) -> list[Tenant]:
        """Every tenant, by client ID."""
        with self._changed:
            return [self._tenants[client] for client in sorted(self._tenants)]

    def apply(self, key: bytes | None, value: bytes | None) -> bool:
        """Apply one record of the topic (None value: tombstone); return whether anything changed.

        Raises `RecordDecodeError` for a record that is not a tenant keyed by its client ID.
        """
        if key is None:
            raise RecordDecodeError("tenant record without a key (the key is the client ID)")
        try:
            client_id = key.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise RecordDecodeError(f"tenant record key is not UTF-8: {exc}") from exc
        if value is None:
            with self._changed:
                if self._tenants.pop(client_id, None) is None:
                    return False
                self._bump()
                return True
        tenant = tenant_from_record(self._codec.decode(value))
        if tenant.client_id != client_id:
            raise RecordDecodeError(
                f"record for client {tenant.client_id!r} under key {client_id!r}"
            )
        with self._changed:
            if self._tenants.get(client_id) == tenant:
                return False
            self._tenants[client_id] = tenant
            self._bump()
            return True

    def _bump(self) -> None:
        self._version += 1
        self._changed.notify_all()

    # -- following the topic -----------------------------------------------------------------

    def start(self, timeout: float = DEFAULT_START_TIMEOUT) -> None:
        """Assign every partition of the topic from the beginning and start reading."""
        from confluent_kafka import OFFSET_BEGINNING, TopicPartition

        if self._thread is not None:
            raise KafkaClientError("tenant directory already started")
        consumer = clients.consumer(
            self.bootstrap,
            self._kafka,
            # Never joins a group (assign, no commits): every worker reads the whole topic.
            f"tenant-directory-{uuid.uuid4().hex}",
            {
                "enable.auto.offset.store": False,
                "enable.partition.eof": True,
                "allow.auto.create.topics": False,
            },
        )
        try:
            count = clients.partition_count(consumer, self.topic, self.bootstrap, timeout)
        except BaseException:
            consumer.close()
            raise
        self._partitions = list(range(count))
        with self._changed:
            # Positions of an earlier run would let wait_until_current return before re-reading.
            self._positions.clear()
            self._failure = None
        consumer.assign([TopicPartition(self.topic, p, OFFSET_BEGINNING) for p in self._partitions])
        self._consumer = consumer
        self._stopping.clear()
        self._thread = threading.Thread(
            target=self._run, name=f"tenant-directory:{self.topic}", daemon=True
        )
        self._thread.start()

    def alive(self) -> bool:
        """Started, still reading, and not failed."""
        thread = self._thread
        return thread is not None and thread.is_alive() and self._failure is None

    def stop(self, timeout: float = 10.0) -> None:
        """Stop reading and close the consumer."""
        thread = self._thread
        if thread is None:
            return
        self._stopping.set()
        thread.join(timeout)
        if thread.is_alive():
            raise KafkaClientError(f"tenant directory reader did not stop within {timeout:g}s")
        self._thread = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _run(self) -> None:
        from confluent_kafka import KafkaError

        consumer = self._consumer
        try:
            while not self._stopping.is_set():
                with self._consumer_lock:
                    message = consumer.poll(self._poll_interval)
                if message is None:
                    continue
                error = message.error()
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF:
                        self._advance(message.partition(), message.offset())
                    elif error.fatal():
                        raise KafkaClientError(f"{self.topic}: {error.str()}")
                    else:
                        log.warning("tenant directory: %s: %s", self.topic, error.str())
                    continue
                try:
                    self.apply(message.key(), message.value())
                except RecordDecodeError as exc:
                    # Only `connector turnup` writes this topic; a stray record must not stop us.
                    log.warning(
                        "skipping undecodable tenant record at %s[%d]@%d: %s",
                        message.topic(),
                        message.partition(),
                        message.offset(),
                        exc,
                    )
                self._advance(message.partition(), message.offset() + 1)
        except BaseException as exc:
            log.exception("tenant directory reader of %s stopped", self.topic)
            with self._changed:
                self._failure = exc
                self._changed.notify_all()
        finally:
            with self._consumer_lock:
                consumer.close()
                self._consumer = None

    def _advance(self, partition: int, position: int) -> None:
        with self._changed:
            if position > self._positions.get(partition, 0):
                self._positions[partition] = position
                self._changed.notify_all()

    def wait_until_current(self, timeout: float) -> None:
        """Block until everything on the topic when called has been read; raise on timeout."""
        from confluent_kafka import KafkaException, TopicPartition

        deadline = self._clock() + timeout
        with self._consumer_lock:
            consumer = self._consumer
            if consumer is None:
                raise KafkaClientError(
                    f"tenant directory of {self.topic} is not running: call start() first"
                    + (f" (it failed: {self._failure})" if self._failure else "")
                )
            try:
                until = time.monotonic() + max(0.1, deadline - self._clock())
                highs = {
                    p: clients.watermark(consumer, TopicPartition(self.topic, p), until)[1]
                    for p in self._partitions
                }
            except KafkaException as exc:
                raise KafkaTimeoutError(
                    f"{self.topic}: no high watermarks from {self.bootstrap} within "
                    f"{timeout:g}s: {exc}"
                ) from exc
        with self._changed:
            while True:
                if self._failure is not None:
                    raise KafkaClientError(
                        f"tenant directory of {self.topic} failed: {self._failure}"
                    )
                behind = {
                    p: high - self._positions.get(p, 0)
                    for p, high in highs.items()
                    if self._positions.get(p, 0) < high
                }
                if not behind:
                    return
                remaining = deadline - self._clock()
                if remaining <= 0:
                    raise KafkaTimeoutError(
                        f"tenant directory of {self.topic} still {sum(behind.values())} "
                        f"record(s) behind after {timeout:g}s (partitions {sorted(behind)}); "
                        f"is Kafka at {self.bootstrap} reachable?"
                    )
                self._changed.wait(remaining)
