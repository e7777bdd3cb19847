"""The sink's executor: runs one command against its tenant's receiver, with retries."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from adapters.base import ClubRef, Person, ReceiverClient, ReceiverStaff
from adapters.errors import AdapterError, RetryableError
from streams.core.decisions import (
    LeadSourceAction,
    SkipReason,
    StaffLookup,
    UserCall,
    create_after_no_match,
    creates,
    decide_user_call,
    lead_source_step,
    must_reconcile,
    no_match_message,
    person_from_command,
    skip_user_command,
    staff_lookup,
    target_type,
    unlinked_reason,
)
from streams.core.matching import match_lead_source, match_staff, normalize_email
from streams.core.model import Record, Status, is_stale
from streams.core.retry import RetryPolicy
from streams.exceptions import (
    ConnectorError,
    PlanningError,
    RecordDecodeError,
    RetriesExhaustedError,
)
from streams.tenancy.tenant import Tenant
from streams.worker.context import WorkerContext
from streams.worker.publishing import Source

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


async def perform_user_call(
    client: ReceiverClient, call: UserCall, club: ClubRef, person: Person, rid: str | None
) -> str:
    """Make the receiver call `decide_user_call` chose; return the record's receiver ID."""
    if call is UserCall.SAVE_PROSPECT:
        return await client.save_prospect(club, person, rid)
    if call is UserCall.SAVE_MEMBER:
        return await client.save_member(club, person, rid)
    if call is UserCall.CREATE_PROSPECT:
        return await client.create_prospect(club, person)
    if call is UserCall.CREATE_MEMBER:
        return await client.create_member(club, person)
    assert rid is not None, call
    if call is UserCall.UPDATE_PROSPECT:
        await client.update_prospect(club, rid, person)
    elif call is UserCall.UPDATE_MEMBER:
        await client.update_member(club, rid, person)
    else:
        return await client.convert_prospect(club, rid, person)
    return rid


class Executor:
    """Decodes a command, runs it with retries, and records its outcome or dead letter."""

    def __init__(
        self,
        context: WorkerContext,
        *,
        retry: RetryPolicy,
        staff_cache_ttl: float,
    ) -> None:
        self.ctx = context
        self.retry = retry
        self.staff_cache = StaffCache(staff_cache_ttl)

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
            await self._sync_lead_source(command, client, attempt)
        else:
            await self._upsert_user(command, tenant, client, attempt)

    async def _timed(self, call: str, work: Awaitable[T]) -> T:
        started = time.monotonic()
        result = "error"
        try:
            value = await work
            result = "ok"
            return value
        finally:
            self.ctx.metrics.calls.labels(call, result).observe(time.monotonic() - started)

    async def _upsert_user(
        self, command: Record, tenant: Tenant, client: ReceiverClient, attempt: int
    ) -> None:
        client_id, intouch_id = command["client_id"], command["intouch_id"]
        link = self.ctx.links.user(client_id, intouch_id)
        skip = skip_user_command(command, link)
        if skip is not None:
            await self.ctx.publish.outcome(command, Status.SKIPPED, message=skip)
            return
        club = tenant.club_ref(command["club_id"])
        if club is None:
            raise PlanningError(
                f"club {command['club_id']!r} of client {client_id!r} is not turned up"
            )
        person = person_from_command(command)
        target = target_type(command["user"])
        receiver_id = link.receiver_id if link else None
        linked_type = link.user_type if link else None
        if must_reconcile(link, client.capabilities):
            receiver_id = await self._timed(
                "find_person", client.find_person(person.email, intouch_id)
            )
            linked_type = target if receiver_id else None
        call, rid = decide_user_call(target, receiver_id, linked_type, client.capabilities)
        if creates(call, rid):
            await self.ctx.publish.outcome(
                command, Status.PENDING_CREATE, user_type=target, call=call.value
            )
        new_id = await self._timed(call.value, perform_user_call(client, call, club, person, rid))
        await self.ctx.publish.outcome(
            command, Status.LINKED, receiver_id=new_id, user_type=target, call=call.value,
            attempts=attempt,
        )  # fmt: skip

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

    async def _sync_lead_source(
        self, command: Record, client: ReceiverClient, attempt: int
    ) -> None:
        name = command["lead_source"]["name"]
        link = self.ctx.links.lead_source(command["client_id"], command["intouch_id"])
        step = lead_source_step(command, link, client.capabilities)
        action = step.action
        if step.skip is not None:
            await self.ctx.publish.outcome(command, Status.SKIPPED, message=step.skip)
            return
        if action is LeadSourceAction.UPDATE:
            assert link is not None and link.receiver_id is not None
            await self._timed(action.value, client.update_lead_source(link.receiver_id, name))
            await self.ctx.publish.outcome(
                command, Status.SUCCEEDED, receiver_id=link.receiver_id, call=action.value,
                attempts=attempt,
            )  # fmt: skip
            return
        if action is LeadSourceAction.LIST:
            sources = await self._timed(action.value, client.list_lead_sources())
            found = match_lead_source(name, sources)
            if found is not None:
                await self.ctx.publish.outcome(
                    command, Status.LINKED, receiver_id=found.id, call=action.value,
                    attempts=attempt,
                )  # fmt: skip
                return
            if not create_after_no_match(client.capabilities):
                await self.ctx.publish.outcome(
                    command, Status.FAILED, call=action.value, attempts=attempt,
                    message=no_match_message(name),
                )  # fmt: skip
                return
        call = LeadSourceAction.CREATE.value
        new_id = await self._timed(call, client.create_lead_source(name))
        await self.ctx.publish.outcome(
            command, Status.LINKED, receiver_id=new_id, call=call, attempts=attempt
        )
