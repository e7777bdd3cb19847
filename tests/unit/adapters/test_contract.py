"""The contract's own logic: NotSupported defaults, the connector's create/update/save choice
made through a client, REST rendering helpers."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest

from adapters.base import Capability, ClubRef, Person, ReceiverClient
from adapters.errors import NotSupported, PermanentError
from adapters.profile import CallSpec, FieldMap
from adapters.rendering import dig, render_body, render_path, render_query
from streams.exceptions import PlanningError
from tests.integration.adapters.receivers import upsert

CLUB = ClubRef("1", "CL1")
PETE = Person("Pete", "Prospect")


class Recording(ReceiverClient):
    """A receiver in memory that records the prospect calls it receives."""

    name = "recording"

    def __init__(self, capabilities: set[Capability]) -> None:
        self._caps = frozenset(capabilities)
        self.calls: list[str] = []

    @property
    def capabilities(self) -> frozenset[Capability]:
        return self._caps

    async def create_prospect(
        self, club: ClubRef, person: Person, *, idempotency_key: str | None = None
    ) -> str:
        self.calls.append("create")
        return "new"

    async def update_prospect(self, club: ClubRef, receiver_id: str, person: Person) -> None:
        self.calls.append(f"update {receiver_id}")

    async def save_prospect(
        self,
        club: ClubRef,
        person: Person,
        receiver_id: str | None,
        *,
        idempotency_key: str | None = None,
    ) -> str:
        self.calls.append(f"save {receiver_id}")
        return receiver_id or "saved"

    async def aclose(self) -> None:
        self.calls.append("closed")


def test_create_or_update_is_preferred_and_save_stands_in_for_a_missing_one() -> None:
    async def scenario() -> None:
        both = Recording({Capability.PROSPECT_CREATE, Capability.PROSPECT_UPDATE})
        assert await upsert(both, "PROSPECT", CLUB, PETE, None) == "new"
        assert await upsert(both, "PROSPECT", CLUB, PETE, "R1") == "R1"
        assert both.calls == ["create", "update R1"]
        # Create beats save; save stands in for the missing update.
        no_update = Recording({Capability.PROSPECT_SAVE, Capability.PROSPECT_CREATE})
        assert await upsert(no_update, "PROSPECT", CLUB, PETE, None) == "new"
        assert await upsert(no_update, "PROSPECT", CLUB, PETE, "R1") == "R1"
        assert no_update.calls == ["create", "save R1"]
        save_only = Recording({Capability.PROSPECT_SAVE})
        assert await upsert(save_only, "PROSPECT", CLUB, PETE, None) == "saved"
        assert save_only.calls == ["save None"]

    asyncio.run(scenario())


def test_calls_not_implemented_raise_not_supported_and_context_closes() -> None:
    async def scenario() -> list[str]:
        async with Recording(set()) as client:
            with pytest.raises(NotSupported, match="does not support member_create"):
                await client.create_member(CLUB, PETE)
            # The connector refuses before calling a receiver without member calls.
            with pytest.raises(PlanningError, match="cannot create members"):
                await upsert(client, "MEMBER", CLUB, PETE, None)
            with pytest.raises(NotSupported) as caught:
                await client.list_lead_sources()
            assert caught.value.capability is Capability.LEAD_SOURCE_LIST
        return client.calls

    assert asyncio.run(scenario()) == ["closed"]


def test_render_body_nests_translates_and_omits() -> None:
    spec = CallSpec(
        method="POST",
        path="/p",
        body={
            "first_name": "name.first",
            "status": FieldMap(to="state", values={"active": "A", "inactive": "I"}),
            "birthdate": "dob",
            "company": "work.company",
        },
        static={"source": "intouch"},
        omit_none=True,
    )
    values = {"first_name": "Ann", "status": "inactive", "birthdate": dt.date(1999, 1, 2)}
    assert render_body(spec, values) == {
        "source": "intouch",
        "name": {"first": "Ann"},
        "state": "I",
        "dob": "1999-01-02",
    }


def test_render_path_and_query() -> None:
    assert (
        render_path("/c/{client_id}/x/{receiver_id}", {"client_id": "a b", "receiver_id": 7}, "w")
        == "/c/a%20b/x/7"
    )
    with pytest.raises(PermanentError, match=r"no value for \{club_id\}"):
        render_path("/c/{club_id}", {"club_id": None}, "w")
    query = {"clubId": "{club_id}", "email": "{email}", "fixed": "yes"}
    assert render_query(query, {"club_id": None, "email": "a@b.c"}) == {
        "email": "a@b.c",
        "fixed": "yes",
    }


def test_dig_walks_objects_and_lists() -> None:
    data = {"a": {"b": [{"id": 1}, {"id": 2}]}}
    assert dig(data, "a.b.1.id") == 2
    assert dig(data, "") is data
    assert dig(data, "a.missing.id") is None
    assert dig(data, "a.b.9") is None
