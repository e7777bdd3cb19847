"""The sink's executor: runs one command against its tenant's receiver, with retries."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from adapters.base import ReceiverClient, ReceiverStaff
from adapters.errors import AdapterError, RetryableError
from streams.core.decisions import (
    SkipReason,
    StaffLookup,
    settle_delay,
    staff_lookup,
    unlinked_reason,
)
from streams.core.matching import match_staff, normalize_email
from streams.core.model import Pending, Record, Status, is_stale
from streams.core.retry import RetryPolicy
from streams.exceptions import (
    ConnectorError,
    PublishError,
    RecordDecodeError,
    RetriesExhaustedError,
)
from streams.tenancy.tenant import Tenant
from streams.worker.context import WorkerContext
from streams.worker.lead_sources import LeadSourceCommands
from streams.worker.publishing import Source
from streams.worker.users import UserCommands

log = logging.getLogger(__name__)

T = TypeVar("T")


class StaffCache:
    """Receiver staff lists per client, kept a short, configurable time."""

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._entries: dict[str, tuple[float, list[ReceiverStaff]]] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def get(
        self, client_id: str, load: Callable[[], Awaitable[list[ReceiverStaff]]]
    ) -> list[ReceiverStaff]:
        lock = self._locks.setdefault(client_id, asyncio.Lock())
        async with lock:
            entry = self._entries.get(client_id)
            if entry and time.monotonic() - entry[0] < self.ttl:
                return entry[1]
            staff = await load()
            self._entries[client_id] = (time.monotonic(), staff)
            return staff


class Executor:
    """Decodes a command, runs it with retries, and records its outcome or dead letter."""

    def __init__(
        self,
        context: WorkerContext,
        *,
        retry: RetryPolicy,
        staff_cache_ttl: float,
        settle_window: float,
    ) -> None:
        self.ctx = context
        self.retry = retry
        self.staff_cache = StaffCache(staff_cache_ttl)
        self.settle_window = settle_window
        self.users = UserCommands(context, self._timed, self._settle)
        self.lead_sources = LeadSourceCommands(context, self._timed, self._settle)

    async def run(self, source: Source) -> None:
        """Decode and execute one command record; an undecodable one is dead-lettered."""
        try:
            command = self.ctx.codecs["Command"].decode(source.value)
        except RecordDecodeError as exc:
            await self.ctx.publish.dead_letter(source, "decode", exc, attempts=1)
            return
        await self.execute(command, source)

    async def execute(self, command: Record, source: Source) -> None:
        """Run one command with retries; permanent or exhausted failures are dead-lettered."""
        started = time.monotonic()
        attempt = 0
        while True:
            attempt += 1
            try:
                tenant = self.ctx.tenants.require(command["client_id"])
                client = self.ctx.receivers.get(tenant)
                await self._execute_once(command, tenant, client, attempt)
                return
            except RetryableError as exc:
                elapsed = time.monotonic() - started
                delay = self.retry.next_delay(attempt, elapsed, exc.retry_after)
                if delay is None:
                    final = RetriesExhaustedError(
                        f"gave up after {attempt} attempts in {elapsed:.1f}s: "
                        f"{type(exc).__name__}: {exc}"
                    )
                    await self._fail(command, source, final, attempt)
                    return
                self.ctx.metrics.retries.labels(type(exc).__name__).inc()
                await asyncio.sleep(delay)
            except PublishError:
                raise  # nothing more can be written: the worker stops
            except (AdapterError, ConnectorError) as exc:
                await self._fail(command, source, exc, attempt)
                return
            except Exception as exc:
                # A bug must not wedge the lane; if even the DLQ write fails, the command stays
                # unacked and comes back after a restart.
                log.exception("command %s failed unexpectedly", command["command_id"])
                await self._fail(command, source, exc, attempt)
                return

    async def _fail(self, command: Record, source: Source, exc: Exception, attempts: int) -> None:
        await self.ctx.publish.outcome(
            command, Status.FAILED, message=f"{type(exc).__name__}: {exc}", attempts=attempts
        )
        await self.ctx.publish.dead_letter(
            source, "sink", exc, attempts=attempts, client=command["client_id"]
        )

    async def _execute_once(
        self, command: Record, tenant: Tenant, client: ReceiverClient, attempt: int
    ) -> None:
        kind = command["kind"]
        if kind == "LINK_STAFF":
            await self._link_staff(command, client, attempt)
        elif kind == "SYNC_LEAD_SOURCE":
            await self.lead_sources.sync(command, client, attempt)
        else:
            await self.users.upsert(command, tenant, client, attempt)

    async def _settle(self, pending: Pending) -> None:
        """Wait until an unsettled call can no longer land, so a lookup sees what it did."""
        delay = settle_delay(pending, time.time(), self.settle_window)
        if delay > 0:
            log.info(
                "waiting %.1fs for an unsettled %s to land before looking", delay, pending.call
            )
            await asyncio.sleep(delay)

    async def _timed(self, call: str, work: Awaitable[T]) -> T:
        started = time.monotonic()
        result = "error"
        try:
            value = await work
            result = "ok"
            return value
        finally:
            self.ctx.metrics.calls.labels(call, result).observe(time.monotonic() - started)

    async def _link_staff(self, command: Record, client: ReceiverClient, attempt: int) -> None:
        link = self.ctx.links.staff(command["client_id"], command["intouch_id"])
        if is_stale(command["version"], link):
            await self.ctx.publish.outcome(command, Status.SKIPPED, message=SkipReason.STALE)
            return
        email = normalize_email(command["staff"].get("email"))
        lookup = staff_lookup(email, client.capabilities)
        match: ReceiverStaff | None = None
        if lookup is StaffLookup.BY_EMAIL:
            assert email is not None
            found = await self._timed(lookup.value, client.find_staff_by_email(email))
            match = match_staff(email, [found] if found else [])
        elif lookup is StaffLookup.LIST:

            async def load() -> list[ReceiverStaff]:
                return await self._timed(lookup.value, client.list_staff(None))

            match = match_staff(email, await self.staff_cache.get(command["client_id"], load))
        if match is None:
            await self.ctx.publish.outcome(
                command, Status.UNLINKED, call=lookup.value, message=unlinked_reason(email),
                attempts=attempt,
            )  # fmt: skip
            return
        await self.ctx.publish.outcome(
            command, Status.LINKED, receiver_id=match.id, call=lookup.value, attempts=attempt
        )
