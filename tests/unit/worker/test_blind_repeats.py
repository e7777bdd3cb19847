"""A user's creating call in doubt, repeated blind by a newer command on a receiver with
idempotency keys and no lookup: the repeat sends the key of the call in doubt."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from adapters.base import Capability as Cap
from adapters.base import ClubRef, Person
from streams.avro.codec import default_codecs
from streams.core.decisions import idempotency_key
from streams.core.model import Pending, Status
from streams.worker.links import LinkStore
from streams.worker.metrics import Metrics
from streams.worker.publishing import Publisher
from streams.worker.users import UserCommands
from tests.unit.worker.test_own_writes import HeldTopic
from tests.unit.worker.test_user_states import command


class KeyedReceiver:
    """Creates prospects, deduplicated by idempotency key; no lookup."""

    capabilities = frozenset({Cap.PROSPECT_CREATE, Cap.PROSPECT_UPDATE})
    stores_external_id = False
    takes_idempotency_keys = True

    def __init__(self) -> None:
        self.records: dict[str, str] = {}  # idempotency key -> receiver ID

    async def create_prospect(
        self, club: ClubRef, person: Person, *, idempotency_key: str | None = None
    ) -> str:
        assert idempotency_key is not None
        return self.records.setdefault(idempotency_key, f"P{len(self.records) + 1}")


def publisher(links: LinkStore, outcomes: HeldTopic) -> Publisher:
    """A publisher writing outcomes to `outcomes` and rows to a topic of their own."""
    return Publisher(
        default_codecs(), commands=None, outcomes=outcomes, link_changelog=HeldTopic("links"),
        dead_letters=None, parked=None, links=links, metrics=Metrics(), timeout=5.0,
    )  # fmt: skip


class Tenant:
    def club_ref(self, club_id: str) -> ClubRef:
        return ClubRef(intouch_club_id=club_id, receiver_club_id=f"C{club_id}")


def test_a_newer_command_repeating_a_create_in_doubt_is_deduplicated_against_it(
    tmp_path: Path,
) -> None:
    async def scenario() -> tuple[KeyedReceiver, Any]:
        links = LinkStore(tmp_path)
        publish = publisher(links, HeldTopic("outcomes"))
        receiver = KeyedReceiver()
        # Version 1's create went out with its key, landed, and its answer was lost (its
        # command then ended without a LINKED outcome: parked past its budget, say).
        first = idempotency_key(command(1), "create_prospect")
        receiver.records[first] = "P1"
        await publish.outcome(command(1), Status.PENDING_CREATE, call="create_prospect")
        context = SimpleNamespace(links=links, publish=publish)

        users = UserCommands(context, timed, settle, pace)  # type: ignore[arg-type]
        await users.upsert(command(2), Tenant(), receiver, attempt=1)  # type: ignore[arg-type]
        link = links.user("100", "5001")
        links.close()
        return receiver, link

    receiver, link = asyncio.run(scenario())
    assert receiver.records == {idempotency_key(command(1), "create_prospect"): "P1"}
    assert link is not None and (link.receiver_id, link.version, link.pending) == ("P1", 2, None)


async def timed(_: str, work: Any, *, paced: bool = True) -> Any:
    return await work


async def settle(_: Pending) -> None:
    return None


async def pace() -> None:
    return None


def test_a_creates_rate_limit_wait_comes_before_its_marker(tmp_path: Path) -> None:
    # Between the marker and the call, the wait would eat into the grace a lookup allows for
    # the call to land (a tenant limited to 1 call a second, 16 calls in flight, can wait
    # 16 s).
    seen: list[str] = []

    async def scenario() -> None:
        links = LinkStore(tmp_path)
        outcomes = HeldTopic("outcomes")
        publish = publisher(links, outcomes)

        async def pace_noting() -> None:
            seen.append(f"pace after {len(outcomes.sent)} outcomes")

        async def timed_noting(call: str, work: Any, *, paced: bool = True) -> Any:
            seen.append(f"{call} paced={paced} after {len(outcomes.sent)} outcomes")
            return await work

        context = SimpleNamespace(links=links, publish=publish)
        users = UserCommands(context, timed_noting, settle, pace_noting)  # type: ignore[arg-type]
        await users.upsert(command(1), Tenant(), KeyedReceiver(), attempt=1)  # type: ignore[arg-type]
        links.close()

    asyncio.run(scenario())
    # Paced once, before the PENDING_CREATE outcome; the call right after it.
    assert seen == ["pace after 0 outcomes", "create_prospect paced=False after 1 outcomes"]


def test_a_create_cancelled_while_it_waits_for_its_rate_limit_leaves_nothing_to_finish(
    tmp_path: Path,
) -> None:
    # A revocation or a stop cancels the lane: with no marker written yet there is no call
    # to finish, so neither waits for the rate limit.
    async def scenario() -> list[bytes]:
        links = LinkStore(tmp_path)
        outcomes = HeldTopic("outcomes")
        publish = publisher(links, outcomes)
        waiting = asyncio.Event()

        async def pace_for_ever() -> None:
            waiting.set()
            await asyncio.Event().wait()

        context = SimpleNamespace(links=links, publish=publish)
        users = UserCommands(context, timed, settle, pace_for_ever)  # type: ignore[arg-type]
        lane = asyncio.ensure_future(
            users.upsert(command(1), Tenant(), KeyedReceiver(), attempt=1)  # type: ignore[arg-type]
        )
        await asyncio.wait_for(waiting.wait(), 5)
        lane.cancel()
        await asyncio.gather(lane, return_exceptions=True)
        await asyncio.wait_for(publish.settled(), 1)  # nothing under way
        links.close()
        return outcomes.sent

    assert asyncio.run(scenario()) == []  # no marker
