"""The reader thread that keeps the link store current with the links changelog."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping

from streams.exceptions import KafkaClientError, KafkaTimeoutError
from streams.kafka import clients
from streams.settings import KafkaSettings
from streams.worker.links import STALE, LinkStore

log = logging.getLogger(__name__)


#: The followers read what is not on the way of any event (other workers' rows, commands
#: for the replanner): librdkafka fetches at most every 100 ms rather than once a record
#: (its default answers as soon as one byte is there); rdk threads' CPU -0.2 ms/event at
#: 50 events/s. A catch-up (`wait_until_current`) waits at most that much longer.
FOLLOWER_FETCH: dict[str, str | int | float | bool] = {
    "fetch.wait.max.ms": 100,
    "fetch.min.bytes": 65536,
    # A rebuild takes rows slower than the broker sends them: librdkafka's default queue of
    # prefetched records (64 MiB) stayed full for all of it, in the worker's RSS.
    "queued.max.messages.kbytes": 8192,
}


class LinkFollower:
    """Reads every partition of the links changelog into the link store, from where it stopped.

    Every worker follows all partitions: staff and lead-source links are global, and a worker
    that takes over a partition must know its users' links. The changelog is compacted to the
    latest row per entity, so a worker with an empty data dir reads one row per entity however
    long the history; the outcomes topic stays the audit log, read by nothing here.

    Why a row per outcome is enough: the outcome's writer sends the row after the outcome's
    ack and acknowledges the command only after the row's; a lane cancelled in between (its
    partition revoked, the worker stopping) finishes that write first (`Publisher.settled`).
    An outcome whose row never reached the changelog belongs to a writer that died between
    the two acks; its command was not acknowledged and the next owner runs it again, as after
    a crash between the receiver call and the outcome: a create's pending marker, with its
    row, was acknowledged before the call, so the next owner first folds in the entity's
    outcomes past that row from the outcomes topic (`Publisher.recover`), then reconciles
    what is still unsettled instead of creating twice.

    Compaction keeps the last-written row of a key, not the newest: a row written late (by a
    worker that lost the partition, or a slow one) after a newer row would be what a worker
    with an empty data dir gets. The follower keeps such keys (`behind`) until a row at least
    as new follows. The owner of the key's commands partition writes the stored row again
    (see `due_repairs`, `Pipeline._repair_rows`); that repair, at the stored position, changes
    nothing anywhere. Any other worker does it too once the key stayed behind `ORPHAN_AFTER`
    (no owner, an owner that died first, or an owner whose own late row it was: a follower
    skips its own rows) — a few rows more, once, rather than a row that compaction loses.
    """

    thread_name = "link-follower"
    #: Seconds after which a worker repairs a row behind that it does not own (see above).
    ORPHAN_AFTER = 30.0

    def __init__(
        self,
        store: LinkStore,
        bootstrap: str,
        kafka: KafkaSettings,
        topic: str,
    ) -> None:
        self.store = store
        self.topic = topic
        self.bootstrap = bootstrap
        self.kafka = kafka
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.failure: BaseException | None = None
        self._positions: dict[int, int] = {}
        self._lock = threading.Lock()
        #: Store keys whose last changelog row is older than the stored one, with where that
        #: row is (changelog partition, offset; see `Taken.STALE`) and when it was read.
        self._behind: dict[str, tuple[int, int, float]] = {}

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=self.thread_name, daemon=True)
        self._thread.start()

    def _take(self, key: bytes | None, value: bytes | None, position: tuple[int, int]) -> None:
        """One record of the followed topic, at (partition, offset)."""
        if value is None or key is None:
            return
        if self.store.applied_here(position):
            if self._behind:  # this worker's row, written after a late one: the newest
                with self._lock:
                    self._behind.pop(key.decode(), None)
            return
        name = key.decode()
        try:
            verdict = self.store.store_row(name, value)
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("skipping an unreadable link row at %s: %s", position, exc)
            return
        if verdict is STALE:
            log.info("link row %s at %s is older than the stored one", name, position)
            with self._lock:
                self._behind[name] = (*position, time.monotonic())
        elif self._behind:
            with self._lock:
                self._behind.pop(name, None)

    def behind(self) -> dict[str, int]:
        """Store keys whose last changelog row is older than the stored row, with that row's
        changelog partition: the stored row must be written there again."""
        with self._lock:
            return {key: partition for key, (partition, _, _) in self._behind.items()}

    def due_repairs(self, owns: Callable[[str], bool], now: float) -> dict[str, int]:
        """The keys of `behind` to repair now: those this worker `owns` (the commands
        partition of the store key), and any left behind longer than `ORPHAN_AFTER`."""
        with self._lock:
            behind = list(self._behind.items())
        return {
            key: partition
            for key, (partition, _, noticed) in behind
            if now - noticed > self.ORPHAN_AFTER or owns(key)
        }

    def repairing(self, key: str) -> None:
        """The stored row of `key` is being written again (call before sending it: a late row
        read from now on comes before the repair, or adds the key back)."""
        with self._lock:
            self._behind.pop(key, None)

    def _resume_at(self) -> dict[int, int]:
        """Where to start again after a restart (call with the lock held): at the first late
        row not repaired yet, so that a restart finds it again instead of forgetting it."""
        resume = dict(self._positions)
        for partition, offset, _ in self._behind.values():
            resume[partition] = min(resume.get(partition, offset), offset)
        return resume

    def _stored_offsets(self) -> dict[int, int]:
        return self.store.offsets()

    def _save_offsets(self, offsets: Mapping[int, int]) -> None:
        self.store.save_offsets(offsets)

    def alive(self) -> bool:
        """Started, still reading, and not failed."""
        return self._thread is not None and self._thread.is_alive() and self.failure is None

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=10)

    def wait_until_current(self, timeout: float) -> None:
        """Block until every record written before this call is in the store; give up after
        `timeout` seconds without progress."""

        probe = clients.consumer(self.bootstrap, self.kafka, f"link-probe-{id(self)}")
        try:
            with clients.kafka_errors(f"no end offsets of {self.topic} from {self.bootstrap}"):
                count = clients.partition_count(probe, self.topic, self.bootstrap, timeout)
                marks = clients.watermarks(probe, self.topic, count, timeout)
                targets = {p: high for p, (_, high) in marks.items()}
        finally:
            probe.close()
        deadline, seen = time.monotonic() + timeout, -1
        while time.monotonic() < deadline:
            with self._lock:
                behind = {p: t for p, t in targets.items() if self._positions.get(p, 0) < t}
                read = sum(self._positions.values())
            if not behind:
                return
            if self._thread is None or not self._thread.is_alive():
                raise KafkaClientError(f"the {self.thread_name} stopped")
            if read != seen:  # a long history takes long: only a reader that stalls fails
                deadline, seen = time.monotonic() + timeout, read
            time.sleep(0.05)
        raise KafkaTimeoutError(f"no progress on {self.topic} for {timeout:.0f}s")

    def _run(self) -> None:
        from confluent_kafka import OFFSET_BEGINNING, TopicPartition

        consumer = clients.consumer(
            self.bootstrap, self.kafka, f"link-follower-{id(self)}", FOLLOWER_FETCH
        )
        try:
            meta = consumer.list_topics(self.topic, timeout=30).topics[self.topic]
            stored = self._stored_offsets()
            with self._lock:
                self._positions = {p: stored.get(p, 0) for p in meta.partitions}
            consumer.assign(
                [
                    TopicPartition(self.topic, p, stored.get(p, OFFSET_BEGINNING))
                    for p in meta.partitions
                ]
            )
            last_save = time.monotonic()
            dirty = False
            while not self._stop.is_set():
                batch = consumer.consume(500, timeout=0.2)
                for message in batch:
                    partition, offset = message.partition(), message.offset()
                    if message.error() or partition is None or offset is None:
                        continue
                    self._take(message.key(), message.value(), (partition, offset))
                    with self._lock:
                        self._positions[partition] = offset + 1
                    dirty = True
                if dirty and (time.monotonic() - last_save > 1.0 or not batch):
                    with self._lock:
                        self._save_offsets(self._resume_at())
                    dirty = False
                    last_save = time.monotonic()
        except Exception as exc:
            log.exception("the %s failed", self.thread_name)
            self.failure = exc
        finally:
            consumer.close()
