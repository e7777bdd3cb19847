"""Shared set-up for adapter tests: a reference receiver, an adapter bound to it, and the
product's create/update/save choice to drive any adapter with."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any, Literal, TypeVar

from adapters.base import ClubRef, Person, ReceiverClient
from adapters.reference import ReceiverMode, ReferenceConfig, ReferenceReceiver
from adapters.registry import create_adapter
from streams.core.decisions import decide_user_call
from streams.worker.users import perform_user_call

T = TypeVar("T")

CLIENT = "C100"
CLUB = ClubRef(intouch_club_id="11", receiver_club_id="CL1")
OTHER_CLUB = ClubRef(intouch_club_id="12", receiver_club_id="CL2")


def run(coro: Coroutine[Any, Any, T], timeout: float = 20.0) -> T:
    """Run one test scenario on a fresh event loop, failing instead of hanging."""

    async def bounded() -> T:
        return await asyncio.wait_for(coro, timeout)

    return asyncio.run(bounded())


def person(**changes: Any) -> Person:
    """A valid prospect; keyword arguments override fields."""
    fields: dict[str, Any] = {
        "first_name": "Pete",
        "last_name": "Prospect",
        "email": "pete@example.com",
        "intouch_id": "U-1",
        "city": "Springfield",
    }
    fields.update(changes)
    return Person(**fields)


async def upsert(
    client: ReceiverClient,
    target: Literal["PROSPECT", "MEMBER"],
    club: ClubRef,
    person: Person,
    receiver_id: str | None,
) -> str:
    """Create or update a person the way the connector does: `decide_user_call` picks the call
    from the client's capabilities (create/update first, else save; `PlanningError` when it has
    neither) and `perform_user_call` makes it. Returns the receiver ID."""
    linked_type = target if receiver_id else None  # linked as the same type: never a conversion
    call, rid = decide_user_call(target, receiver_id, linked_type, client.capabilities)
    return await perform_user_call(client, call, club, person, rid)


@asynccontextmanager
async def serving(
    mode: ReceiverMode = ReceiverMode.FULL,
    *,
    profile: str | None = None,
    client_config: dict[str, Any] | None = None,
    **receiver_config: Any,
) -> AsyncIterator[tuple[ReferenceReceiver, ReceiverClient]]:
    """A reference receiver in `mode` and the adapter of the matching profile."""
    config = ReferenceConfig(mode=mode, **receiver_config)
    async with ReferenceReceiver(config) as receiver:
        adapter_config = receiver.receiver_config(CLIENT, **(client_config or {}))
        async with create_adapter(profile or mode.profile_name, adapter_config) as client:
            yield receiver, client


async def eventually(check: Callable[[], Awaitable[bool]], deadline_s: float = 5.0) -> None:
    """Poll `check` until it holds; fail past the deadline (no fixed sleeps)."""
    end = time.monotonic() + deadline_s
    while not await check():
        if time.monotonic() > end:
            raise AssertionError(f"condition not met within {deadline_s} s")
        await asyncio.sleep(0.02)
