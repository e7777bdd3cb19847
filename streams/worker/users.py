"""User commands in the sink: create, update or convert, exactly once under unknown outcomes."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol, TypeVar

from adapters.base import Capability as Cap
from adapters.base import ClubRef, Person, ReceiverClient
from adapters.errors import AdapterError, AlreadyExists, PermanentError, RetryableError
from streams.core.decisions import (
    UserCall,
    decide_user_call,
    failed_call_status,
    idempotency_key,
    identity_problem,
    marks_pending,
    may_repeat_blind,
    must_reconcile,
    person_from_command,
    reconcile_person,
    skip_user_command,
    target_type,
)
from streams.core.model import Pending, Record, Status, UserLink
from streams.exceptions import IdentityConflictError, OutcomeUnknownError, PlanningError
from streams.tenancy.tenant import Tenant
from streams.worker.context import WorkerContext

T = TypeVar("T")


class Timed(Protocol):
    """A receiver call, timed for the metrics, after the tenant's rate limit lets it go
    (`paced=False`: its wait was taken already, before the call's pending marker)."""

    def __call__(self, call: str, work: Awaitable[T], *, paced: bool = True) -> Awaitable[T]: ...


Settle = Callable[[Pending], Awaitable[None]]
#: The tenant's rate limit: returns when the next call may go.
Pace = Callable[[], Awaitable[None]]


@dataclass(frozen=True)
class Made:
    """The receiver call a user command makes, as decided, and what it needs to record."""

    call: UserCall
    rid: str | None
    target: str
    club: ClubRef
    person: Person
    key: str | None
    #: Whether it may create a record (a marker before it).
    pending: bool
    #: Whether an earlier creating call of the user was in doubt before it.
    unsettled: bool
    #: Whether that doubt is left (no lookup settled it; the call is a blind repeat).
    blind: bool
    attempt: int


async def perform_user_call(
    client: ReceiverClient,
    call: UserCall,
    club: ClubRef,
    person: Person,
    rid: str | None,
    idempotency_key: str | None = None,
) -> str:
    """Make the receiver call `decide_user_call` chose; return the record's receiver ID."""
    key = idempotency_key
    if call is UserCall.SAVE_PROSPECT:
        return await client.save_prospect(club, person, rid, idempotency_key=key)
    if call is UserCall.SAVE_MEMBER:
        return await client.save_member(club, person, rid, idempotency_key=key)
    if call is UserCall.CREATE_PROSPECT:
        return await client.create_prospect(club, person, idempotency_key=key)
    if call is UserCall.CREATE_MEMBER:
        return await client.create_member(club, person, idempotency_key=key)
    assert rid is not None, call
    if call is UserCall.UPDATE_PROSPECT:
        await client.update_prospect(club, rid, person)
    elif call is UserCall.UPDATE_MEMBER:
        await client.update_member(club, rid, person)
    else:
        return await client.convert_prospect(club, rid, person, idempotency_key=key)
    return rid


class UserCommands:
    """Upserts and conversions: a durable marker before every creating call, and after an
    unknown outcome a lookup that accepts only a record provably ours before anything is
    created again."""

    def __init__(self, context: WorkerContext, timed: Timed, settle: Settle, pace: Pace) -> None:
        self.ctx = context
        self._timed = timed
        self._settle = settle
        self._pace = pace

    async def upsert(
        self, command: Record, tenant: Tenant, client: ReceiverClient, attempt: int
    ) -> None:
        client_id, intouch_id = command["client_id"], command["intouch_id"]
        link = self.ctx.links.user(client_id, intouch_id)
        if must_reconcile(link) and await self.ctx.publish.recover(command):
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
        unsettled = must_reconcile(link)
        looked = False
        if unsettled:
            assert link is not None and link.pending is not None
            await self._settle(link.pending)
            looked = self._can_look_up(client, person)
            if looked:
                found = await self._find_ours(command, client, person, target, link)
                if found is not None:
                    receiver_id, linked_type = found, target
        call, rid = decide_user_call(target, receiver_id, linked_type, client.capabilities)
        pending = marks_pending(call, rid)
        blind = unsettled and pending and not looked
        if blind and not may_repeat_blind(call, client.takes_idempotency_keys):
            raise OutcomeUnknownError(
                f"an earlier creating call for InTouch user {intouch_id} may have made a "
                "record, and the receiver has no lookup to check: not calling it again; "
                "check the receiver"
            )
        doubt = link.pending if link is not None else None
        key = idempotency_key(command, call.value, doubt) if client.takes_idempotency_keys else None
        made = Made(call, rid, target, club, person, key, pending, unsettled, blind, attempt)
        if pending:
            # The rate limit's wait first: between the marker and the call it would eat into
            # the grace the marker's lookup allows for the call to land; and a lane cancelled
            # while it waits leaves nothing to finish.
            await self._pace()
            # From its marker to its outcome, a creating call is not abandoned when the lane
            # is cancelled (revocation, shutdown): cut off, it would still land, unrecorded.
            await self.ctx.publish.finish(self._make(command, client, link, made))
        else:
            await self._make(command, client, link, made)

    async def _make(
        self, command: Record, client: ReceiverClient, link: UserLink | None, made: Made
    ) -> None:
        """The call, with its marker before it when it may create a record, and its outcome."""
        call, target, person = made.call, made.target, made.person
        if made.pending:  # paced already (`upsert`)
            await self.ctx.publish.outcome(
                command, Status.PENDING_CREATE, user_type=target, call=call.value
            )
        try:
            new_id = await self._timed(
                call.value,
                perform_user_call(client, call, made.club, person, made.rid, made.key),
                paced=not made.pending,
            )
        except AlreadyExists as exc:
            new_id = await self._existing(command, client, person, target, link, exc)
        except AdapterError as exc:
            gone = (
                call is UserCall.CONVERT
                and isinstance(exc, PermanentError)
                and exc.status == 404
                and made.unsettled
            )
            # A convert's 404 after one in doubt says nothing of this call: the marker stays.
            status = None if gone or not made.pending else failed_call_status(exc, blind=made.blind)
            if status is not None:
                await self.ctx.publish.outcome(
                    command, status, user_type=target, call=call.value,
                    message=f"{type(exc).__name__}: {exc}", attempts=made.attempt,
                )  # fmt: skip
            if gone:
                # The prospect is gone: most likely our earlier convert did it.
                raise RetryableError(
                    f"{exc}; an earlier convert may have done it: looking for the member again"
                ) from exc
            raise
        owner = self.ctx.links.owner_of(command["client_id"], new_id)
        problem = identity_problem(new_id, command["intouch_id"], owner)
        if problem is not None:
            raise IdentityConflictError(problem)
        await self.ctx.publish.outcome(
            command, Status.LINKED, receiver_id=new_id, user_type=target, call=call.value,
            attempts=made.attempt,
        )  # fmt: skip

    @staticmethod
    def _can_look_up(client: ReceiverClient, person: Person) -> bool:
        # Without our ID on its records, the receiver can only be asked by email.
        return Cap.PERSON_LOOKUP in client.capabilities and (
            client.stores_external_id or person.email is not None
        )

    async def _find_ours(
        self,
        command: Record,
        client: ReceiverClient,
        person: Person,
        target: str,
        link: UserLink | None,
    ) -> str | None:
        """The record that is provably this user's `target` record, or None; a lookup that
        cannot tell is an `IdentityConflictError` (a visible failure, never a link)."""
        client_id, intouch_id = command["client_id"], command["intouch_id"]
        candidates = await self._timed("find_person", client.find_people(person.email, intouch_id))
        result = reconcile_person(
            candidates,
            intouch_id,
            target,
            stores_external_id=client.stores_external_id,
            owner_of=functools.partial(self.ctx.links.owner_of, client_id),
            known=link.receiver_id if link else None,
        )
        if result.problem is not None:
            raise IdentityConflictError(result.problem)
        return result.receiver_id

    async def _existing(
        self,
        command: Record,
        client: ReceiverClient,
        person: Person,
        target: str,
        link: UserLink | None,
        exc: AlreadyExists,
    ) -> str:
        """The receiver says the record exists: link it only when it is provably ours."""
        if self._can_look_up(client, person):
            found = await self._find_ours(command, client, person, target, link)
            if found is None:
                raise IdentityConflictError(
                    f"{exc}; no record provably InTouch user {command['intouch_id']}'s found"
                )
            return found
        if exc.receiver_id is None:
            raise exc
        return exc.receiver_id  # the profile says this answer names the record; identity checked
