"""What the worker writes: commands, outcomes and dead letters, each acknowledged by the broker."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Callable, Coroutine, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, TypeVar

from aiokafka.partitioner import murmur2

from streams.avro.codec import Codecs
from streams.core.ids import new_id
from streams.core.model import Record, Status, entity_of
from streams.core.retry import backoff_delay
from streams.exceptions import PublishError, RecordDecodeError
from streams.worker.links import LinkStore
from streams.worker.metrics import UNKNOWN_CLIENT, Metrics
from streams.worker.references import USER_KINDS, state_of

log = logging.getLogger(__name__)

T = TypeVar("T")

#: When a command was first parked (epoch seconds): its park budget counts from there.
PARKED_AT_HEADER = "connector-parked-at"
PARKED_REASON_HEADER = "connector-parked-reason"
#: The most of an original value a dead letter keeps: the record must fit Kafka's 1 MB default.
MAX_KEPT_VALUE_BYTES = 256 * 1024

#: The command record the current task runs (the sink's lanes set it): the row of a user
#: command's outcome carries that command as the user's state (`references.state_of`).
RUNNING: ContextVar[Source | None] = ContextVar("running_command", default=None)

#: A record's headers as the worker sends them.
Headers = list[tuple[str, bytes | None]] | None


def parked_at(source: Source) -> float | None:
    """When the command in `source` was first parked, from its header."""
    for name, value in source.headers:
        if name == PARKED_AT_HEADER and value:
            try:
                return float(value.decode())
            except ValueError:
                return None
    return None


def _expire(pending: asyncio.Future[Any]) -> None:
    """Fail an ack that did not come by the deadline (`Publisher._send_bytes`)."""
    if not pending.done():
        pending.set_exception(TimeoutError("no acknowledgement from the broker in time"))


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class Source:
    """Where a record came from, for dead letters."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes | None]]


def source_of(message: Any) -> Source:
    """The position, key, value and headers of a Faust message."""
    raw = message.headers or []
    items = raw.items() if isinstance(raw, Mapping) else raw
    headers = [(str(k), None if v is None else bytes(v)) for k, v in items]
    return Source(
        message.topic, message.partition, message.offset, message.key, message.value, headers
    )


class Publisher:
    """Encodes and sends to the commands, outcomes and dead-letter topics, waiting for acks."""

    def __init__(
        self,
        codecs: Codecs,
        *,
        commands: Any,
        outcomes: Any,
        link_changelog: Any,
        dead_letters: Any,
        parked: Any,
        links: LinkStore,
        metrics: Metrics,
        timeout: float,
        outcomes_after: Callable[[int, int], list[Any] | None] | None = None,
    ) -> None:
        self.codecs = codecs
        self.timeout = timeout
        self._commands = commands
        self._outcomes = outcomes
        self._link_changelog = link_changelog
        self._dead_letters = dead_letters
        self._parked = parked
        self.links = links
        self.metrics = metrics
        #: The outcomes topic's records of a partition from an offset on (see `recover`).
        self._outcomes_after = outcomes_after
        #: Outcomes being written with their rows (see `outcome`, `settled`).
        self._writing: set[asyncio.Task[Any]] = set()

    def key_of(self, record: Mapping[str, Any]) -> bytes:
        """The EntityKey of a command or outcome: one entity, one partition, in order."""
        key = {
            "client_id": record["client_id"],
            "entity": str(entity_of(record)),
            "intouch_id": record["intouch_id"],
        }
        return self.codecs["EntityKey"].encode(key)

    def partition_of(self, record: Mapping[str, Any], partitions: int) -> int:
        """The partition of `partitions` the record's entity is on (murmur2 of its key, as
        the producer and Faust place it)."""
        return int(murmur2(self.key_of(record)) & 0x7FFFFFFF) % partitions

    def _entity_key(self, key: bytes | None) -> Record | None:
        """The decoded EntityKey, or None when the key is missing or is none."""
        try:
            return self.codecs["EntityKey"].decode(key)
        except RecordDecodeError:
            return None

    async def _send(self, topic: Any, key: bytes | None, subject: str, value: Record) -> Any:
        """Encode, send and wait for the broker's ack (see `_send_bytes`)."""
        return await self._send_bytes(topic, key, subject, self.codecs[subject].encode(value))

    async def park(self, source: Source, parked_at: float, reason: str) -> None:
        """Put a command, as it was, on the parking topic (keyed as before, so in order)."""
        headers = [
            (name, value)
            for name, value in source.headers
            if name not in (PARKED_AT_HEADER, PARKED_REASON_HEADER)
        ]
        headers += [
            (PARKED_AT_HEADER, repr(parked_at).encode()),
            (PARKED_REASON_HEADER, reason[:500].encode()),
        ]
        await self._send_bytes(self._parked, source.key, "Command", source.value, headers)

    async def _send_bytes(
        self,
        topic: Any,
        key: bytes | None,
        subject: str,
        data: bytes | None,
        headers: list[tuple[str, bytes | None]] | None = None,
        partition: int | None = None,
    ) -> Any:
        """Send (to `partition`, or the key's) and wait for the broker's ack; while it fails
        (broker down, leader moving), try again with backoff, and give up with `PublishError`
        after `timeout` seconds (an ack that does not come is not waited for past that
        either)."""
        started = time.monotonic()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        attempt = 0
        while True:
            attempt += 1
            try:
                # `send` only queues the record (it does not block); the ack is waited for
                # with one timer that fails the future, lighter than an `asyncio.timeout`
                # context per record.
                pending = await topic.send(
                    key=key, value=data, headers=headers, partition=partition
                )
                timer = loop.call_at(deadline, _expire, pending)
                try:
                    return await pending
                finally:
                    timer.cancel()
            except Exception as exc:
                elapsed = time.monotonic() - started
                delay = backoff_delay(attempt, base=0.2, cap=5.0)
                if elapsed + delay > self.timeout:
                    raise PublishError(
                        f"cannot write a {subject} to {topic.get_topic_name()} for "
                        f"{elapsed:.0f}s: {type(exc).__name__}: {exc}"
                    ) from exc
                log.warning(
                    "writing a %s to %s failed (%s: %s); trying again in %.1fs",
                    subject, topic.get_topic_name(), type(exc).__name__, exc, delay,
                )  # fmt: skip
                await asyncio.sleep(delay)

    async def command(
        self, command: Record, headers: list[tuple[str, bytes | None]] | None = None
    ) -> None:
        """Send one planned command, keyed by its entity (`headers`: where it came from)."""
        await self.commands([(command, headers)])

    async def commands(self, batch: Sequence[tuple[Record, Headers]]) -> None:
        """Send planned commands in order and wait for the broker's acks once for them all.

        The producer keeps each partition's records in order. When a send fails, every
        command from the first unacknowledged one on is sent again, in order, one at a time
        (as `_send_bytes` does): an entity's newest command is then still its last, and the
        sink skips an older copy that lands after it as stale.
        """
        encoded = [
            (self.key_of(command), self.codecs["Command"].encode(command), headers)
            for command, headers in batch
        ]
        acks: list[Any] = []
        try:
            for key, data, headers in encoded:
                acks.append(await self._commands.send(key=key, value=data, headers=headers))
        except Exception as exc:
            log.warning("queueing a command failed (%s: %s)", type(exc).__name__, exc)
        results = await asyncio.gather(*acks, return_exceptions=True)
        failed = next(
            (n for n, result in enumerate(results) if isinstance(result, BaseException)),
            len(acks),
        )
        for key, data, headers in encoded[failed:]:
            await self._send_bytes(self._commands, key, "Command", data, headers)
        for command, _ in batch:
            self.metrics.commands.labels(command["kind"]).inc()

    async def outcome(
        self,
        command: Mapping[str, Any],
        status: Status,
        *,
        receiver_id: str | None = None,
        call: str | None = None,
        user_type: str | None = None,
        message: str | None = None,
        attempts: int = 1,
    ) -> None:
        """Publish an outcome, wait for the broker, apply it to the link table at once, and
        write the row it changed to the links changelog (on the outcome's partition), waiting
        for that ack too: the caller goes on (calls a receiver after a pending marker, or
        acknowledges the command) only once both are durable. See `LinkFollower`."""
        entity = entity_of(command)
        record = {
            "outcome_id": new_id(),
            "command_id": command["command_id"],
            "client_id": command["client_id"],
            "club_id": command.get("club_id"),
            "entity": str(entity),
            "intouch_id": command["intouch_id"],
            "version": command["version"],
            "status": str(status),
            "receiver_id": receiver_id,
            "call": call,
            "user_type": user_type,
            "fingerprint": command["fingerprint"],
            "message": None if message is None else str(message),
            "attempts": attempts,
            "occurred_at": utcnow(),
            "replay_id": command.get("replay_id"),
        }
        # An outcome and its row are one write. A lane cancelled between the two (its
        # partition revoked, the worker stopping) would leave an outcome whose row never
        # reaches the changelog, and the next owner would see only the pending marker before
        # it; so the write goes on without the caller, and `settled` waits for it.
        await self.finish(self._outcome_and_row(command, record))

    async def finish(self, work: Coroutine[Any, Any, T]) -> T:
        """Run `work` to its end even when the caller is cancelled, and return what it
        returns; `settled` waits for it. For what must not stop half-way: an outcome and its
        row, or a creating call from its pending marker to its outcome (a call cut off would
        still land, and a receiver with no lookup could never be asked what it did)."""
        task = asyncio.ensure_future(work)
        self._writing.add(task)
        task.add_done_callback(self._finished)
        return await asyncio.shield(task)

    def _finished(self, task: asyncio.Task[Any]) -> None:
        self._writing.discard(task)
        error = None if task.cancelled() else task.exception()  # retrieved: no asyncio warning
        if error is not None:
            # The caller, when not cancelled, got the error through the shield; a cancelled
            # caller's error is `settled`'s (a write that failed) or only worth a line.
            log.debug("finished without its caller: %s", error)

    async def settled(self) -> None:
        """Wait until every outcome being written has its row written too, and every
        creating call its outcome, those of cancelled lanes included: the next owner of
        their partitions must read the rows. Raises the `PublishError` of one that could not
        be written; a call that failed otherwise wrote its outcome (UNKNOWN, NOT_APPLIED) or
        left its marker for the next owner to reconcile."""
        results = await asyncio.gather(*self._writing, return_exceptions=True)
        failed = [r for r in results if isinstance(r, PublishError)]
        if failed:
            raise failed[0]

    async def _outcome_and_row(self, command: Mapping[str, Any], record: Record) -> None:
        entity = entity_of(command)
        metadata = await self._send(self._outcomes, self.key_of(record), "Outcome", record)
        source, state = RUNNING.get(), None
        if source and source.value and command.get("kind") in USER_KINDS and command.get("user"):
            state = state_of(source.value, command, (source.partition, source.offset))
        row = self.links.apply_own(record, (metadata.partition, metadata.offset), state)
        if row is not None:
            key, value = row
            written = await self._send_bytes(
                self._link_changelog, key.encode(), "link row", value, partition=metadata.partition
            )
            self.links.mark_own((written.partition, written.offset))
        self.metrics.outcomes.labels(command["client_id"], str(entity), record["status"]).inc()

    async def recover(self, command: Mapping[str, Any]) -> bool:
        """Fold in the outcomes of `command`'s entity written after its row's, whose rows
        never reached the changelog (their writer died between the outcome's ack and the
        row's), from the outcomes topic, the audit log rows are folded from; write the row
        that gives. True when the row changed.

        Called before a pending marker is reconciled: a create that did land and was
        recorded as LINKED must not look unknown to the next owner (with no lookup on the
        receiver, it could not be checked and would fail)."""
        entity, client_id, intouch_id = (
            str(entity_of(command)),
            command["client_id"],
            command["intouch_id"],
        )
        where = self.links.position_of(entity, client_id, intouch_id)
        if self._outcomes_after is None or where is None:
            return False
        partition, offset = where
        try:
            records = await asyncio.to_thread(self._outcomes_after, partition, offset + 1)
        except Exception as exc:  # no worse off than without it: the marker is reconciled
            log.warning(
                "cannot read the outcomes of %s %s/%s past %s: %s: %s",
                entity, client_id, intouch_id, where, type(exc).__name__, exc,
            )  # fmt: skip
            return False
        if records is None:
            log.warning(
                "not looking for outcomes of %s %s/%s past %s: too many records after it",
                entity, client_id, intouch_id, where,
            )  # fmt: skip
            return False
        key, codec, row = self.key_of(command), self.codecs["Outcome"], None
        for record in records:
            if record.key() != key:
                continue
            try:
                outcome = codec.decode(record.value())
            except RecordDecodeError:
                continue
            row = self.links.apply(outcome, (record.partition(), record.offset())) or row
        if row is None:
            return False
        log.info(
            "%s %s/%s: outcomes past its row's %s folded in from the outcomes topic",
            entity, client_id, intouch_id, where,
        )  # fmt: skip
        written = await self._send_bytes(
            self._link_changelog, row[0].encode(), "link row", row[1], partition=partition
        )
        self.links.mark_own((written.partition, written.offset))
        return True

    async def link_row(self, key: str, value: bytes, partition: int) -> None:
        """Write a stored link row again on its changelog partition, after a row older than
        it landed there (see `LinkFollower`), and wait for the ack as for any row."""
        await self._send_bytes(
            self._link_changelog, key.encode(), "link row", value, partition=partition
        )
        self.metrics.link_rows_repaired.inc()

    async def dead_letter(
        self,
        source: Source,
        stage: str,
        exc: BaseException,
        *,
        attempts: int,
        client: str | None = None,
    ) -> None:
        """Keep the original record with the reason; the pipeline goes on.

        The client and entity come from the record's key when the caller could not decode
        more (an undecodable value keeps its client): the log line names both.
        """
        error = type(exc).__name__
        key = self._entity_key(source.key)
        client = client or (key["client_id"] if key else None)
        entity = f"{key['entity']} {key['intouch_id']}" if key else "an unknown entity"
        log.warning(
            "dead letter (%s) for client %s, %s, from %s[%d]@%d: %s: %s",
            stage, client or "unknown", entity, source.topic, source.partition, source.offset,
            error, exc,
        )  # fmt: skip
        value, message = source.value, str(exc)
        if value is not None and len(value) > MAX_KEPT_VALUE_BYTES:
            # Whole, it would not fit in one Kafka record: the dead letter could never be
            # written and the worker would stop on it again and again.
            message += (
                f" (the original value, {len(value):,} bytes, is kept cut to its first "
                f"{MAX_KEPT_VALUE_BYTES:,})"
            )
            value = value[:MAX_KEPT_VALUE_BYTES]
        record = {
            "dead_letter_id": new_id(),
            "failed_at": utcnow(),
            "stage": stage,
            "source_topic": source.topic,
            "source_partition": source.partition,
            "source_offset": source.offset,
            "key": source.key,
            "value": value,
            "headers": [{"key": k, "value": v} for k, v in source.headers],
            "error_class": error,
            "error_message": message,
            "attempts": attempts,
            "client_id": client,
        }
        await self._send(self._dead_letters, source.key, "DeadLetter", record)
        self.metrics.dead_letters.labels(client or UNKNOWN_CLIENT, stage, error).inc()
