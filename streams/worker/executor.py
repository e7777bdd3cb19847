"""The sink's executor: runs one command against its tenant's receiver, with retries."""

from __future__ import annotations

import asyncio
import contextvars
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from adapters.base import ReceiverClient, ReceiverStaff
from adapters.errors import AdapterError, RetryableError
from streams.core.breaker import Breaker, Breakers
from streams.core.decisions import (
    SkipReason,
    StaffLookup,
    settle_delay,
    staff_lookup,
    unlinked_reason,
)
from streams.core.matching import match_staff, normalize_email
from streams.core.model import Pending, Record, Status, entity_of, is_stale
from streams.core.ratelimit import TokenBucket
from streams.core.retry import RetryPolicy
from streams.exceptions import (
    ConnectorError,
    PublishError,
    RecordDecodeError,
    RetriesExhaustedError,
)
from streams.tenancy.tenant import Tenant, rate_limit_of
from streams.worker.context import WorkerContext
from streams.worker.lead_sources import LeadSourceCommands
from streams.worker.metrics import UNKNOWN_CLIENT
from streams.worker.publishing import Source, parked_at
from streams.worker.users import UserCommands

log = logging.getLogger(__name__)

#: The tenant whose command this task is running (its calls are paced by its rate limit).
_calls_for: contextvars.ContextVar[Tenant | None] = contextvars.ContextVar(
    "calls_for", default=None
)

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
        breakers: Breakers,
        park_budget: float,
    ) -> None:
        self.ctx = context
        self.retry = retry
        self.breakers = breakers
        self.park_budget = park_budget
        self._buckets: dict[str, tuple[float, TokenBucket]] = {}
        self.staff_cache = StaffCache(staff_cache_ttl)
        self.settle_window = settle_window
        self.users = UserCommands(context, self._timed, self._settle, self._paced)
        self.lead_sources = LeadSourceCommands(context, self._timed, self._settle, self._paced)

    async def run(self, source: Source) -> None:
        """Decode and execute one command record; an undecodable one is dead-lettered.

        A tenant whose breaker is open, or an entity with commands already parked, has the
        command parked behind them instead: the partition moves on for everyone else.
        """
        command = await self._decode(source)
        if command is None:
            return
        breaker = self.breakers[command["client_id"]]
        if breaker.is_open(time.time()):
            await self._park(command, source, "the receiver keeps failing (breaker open)", 0)
        elif self.ctx.links.has_parked(
            str(entity_of(command)), command["client_id"], command["intouch_id"]
        ):
            await self._park(command, source, "behind this entity's parked commands", 0)
        else:
            await self.execute(command, source)

    async def run_parked(self, source: Source) -> None:
        """Run a parked command once its tenant's breaker lets a probe through; past the park
        budget it is dead-lettered.

        A command with a newer version of its entity parked behind it is skipped: commands
        carry the whole entity, so after an outage the receiver gets one call per entity, not
        one per change made while it was down.
        """
        command = await self._decode(source)
        if command is None:
            return
        since = parked_at(source) or time.time()
        breaker = self.breakers[command["client_id"]]
        while True:
            if self._superseded(command):
                await self.ctx.publish.outcome(
                    command, Status.SKIPPED, message=SkipReason.SUPERSEDED
                )
                return
            now = time.time()
            if now - since > self.park_budget:
                expired = RetriesExhaustedError(
                    f"parked for {now - since:.0f}s, past the park budget ({self.park_budget:.0f}s)"
                )
                await self._fail(command, source, expired, 0)
                return
            if breaker.try_probe(now):
                break
            await asyncio.sleep(min(max(breaker.wait(now), 0.05), 1.0))
        try:
            await self.execute(command, source, parked_since=since)
        finally:
            breaker.probing = False  # whatever happened, the probe is over

    def _superseded(self, command: Record) -> bool:
        """Whether a newer version of the command's entity waits parked behind it."""
        newer = self.ctx.links.newest_parked(
            str(entity_of(command)), command["client_id"], command["intouch_id"]
        )
        return newer is not None and newer > command["version"]

    async def _decode(self, source: Source) -> Record | None:
        try:
            command: Record = self.ctx.codecs["Command"].decode(source.value)
        except RecordDecodeError as exc:
            await self.ctx.publish.dead_letter(source, "decode", exc, attempts=1)
            return None
        return command

    async def execute(
        self, command: Record, source: Source, *, parked_since: float | None = None
    ) -> None:
        """Run one command with retries; permanent failures are dead-lettered, and a command
        that keeps failing with retryable errors is parked (its tenant's breaker counts it)."""
        breaker = self.breakers[command["client_id"]]
        with self.ctx.metrics.in_flight.labels(command["client_id"]).track_inprogress():
            await self._execute(command, source, breaker, parked_since)

    async def _execute(
        self, command: Record, source: Source, breaker: Breaker, parked_since: float | None
    ) -> None:
        started = time.monotonic()
        attempt = 0
        while True:
            attempt += 1
            try:
                tenant = self.ctx.tenants.require(command["client_id"])
                client = self.ctx.receivers.get(tenant)
                _calls_for.set(tenant)
                await self._execute_once(command, tenant, client, attempt)
                breaker.succeeded()
                return
            except RetryableError as exc:
                # Every failed attempt counts (a 429 is no failure): a receiver that hangs opens
                # its breaker after a few timeouts, not after a few commands have used up their
                # retries. A parked command's failed probe opens it again, and the command goes
                # back to wait.
                now = time.time()
                if not exc.throttled:
                    breaker.failed(now)
                elapsed = time.monotonic() - started
                delay = self.retry.next_delay(attempt, elapsed, exc.retry_after)
                if delay is None or breaker.is_open(now):
                    reason = f"{type(exc).__name__} after {attempt} attempts: {exc}"
                    await self._park(command, source, reason, attempt, parked_since)
                    return
                self.ctx.metrics.retries.labels(command["client_id"], exc.cause).inc()
                await asyncio.sleep(delay)
            except PublishError:
                raise  # nothing more can be written: the worker stops
            except (AdapterError, ConnectorError) as exc:
                breaker.succeeded()  # the receiver answered: it is up
                await self._fail(command, source, exc, attempt)
                return
            except Exception as exc:
                # A bug must not wedge the lane; if even the DLQ write fails, the command stays
                # unacked and comes back after a restart.
                log.exception("command %s failed unexpectedly", command["command_id"])
                await self._fail(command, source, exc, attempt)
                return

    async def _park(
        self,
        command: Record,
        source: Source,
        reason: str,
        attempts: int,
        since: float | None = None,
    ) -> None:
        """Park the command (the record first, then the PARKED outcome the links count)."""
        await self.ctx.publish.park(source, since or time.time(), reason)
        await self.ctx.publish.outcome(
            command, Status.PARKED, message=f"parked: {reason}", attempts=attempts
        )

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
        delay = settle_delay(
            pending, self.settle_window, now=time.time(), monotonic_now=time.monotonic()
        )
        if delay > 0:
            log.info(
                "waiting %.1fs for an unsettled %s to land before looking", delay, pending.call
            )
            await asyncio.sleep(delay)

    async def _paced(self) -> None:
        """Wait for the tenant's rate limit (turn-up option `rate_limit`, calls a second)."""
        tenant = _calls_for.get()
        rate = rate_limit_of(tenant) if tenant is not None else None
        if tenant is None or rate is None:
            return
        known = self._buckets.get(tenant.client_id)
        if known is None or known[0] != rate:
            known = self._buckets[tenant.client_id] = (rate, TokenBucket(rate, max(1.0, rate)))
        delay = known[1].reserve(time.monotonic())
        if delay > 0:
            await asyncio.sleep(delay)

    async def _timed(self, call: str, work: Awaitable[T], *, paced: bool = True) -> T:
        if paced:
            await self._paced()
        tenant = _calls_for.get()
        client = tenant.client_id if tenant is not None else UNKNOWN_CLIENT
        started = time.monotonic()
        result = "error"
        try:
            value = await work
            result = "ok"
            return value
        finally:
            elapsed = time.monotonic() - started
            self.ctx.metrics.calls.labels(client, call, result).observe(elapsed)

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
