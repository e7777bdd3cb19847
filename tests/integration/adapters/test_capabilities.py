"""Every adapter call over real HTTP, in every capability combination of the reference receiver."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from typing import Any

import pytest

from adapters.base import Capability as C
from adapters.base import ReceiverClient
from adapters.errors import NotSupported, PermanentError
from adapters.http import TransportKind
from adapters.reference import ReceiverMode, ReferenceReceiver
from tests.integration.adapters.receivers import (
    CLIENT,
    CLUB,
    OTHER_CLUB,
    person,
    run,
    serving,
    upsert,
)

ALL = frozenset(C)
EXPECTED: dict[ReceiverMode, frozenset[C]] = {
    ReceiverMode.FULL: ALL,
    ReceiverMode.SAVE_ONLY: ALL
    - {C.PROSPECT_CREATE, C.PROSPECT_UPDATE, C.MEMBER_CREATE, C.MEMBER_UPDATE},
    ReceiverMode.LEAD_SOURCES_LIST_ONLY: ALL - {C.LEAD_SOURCE_CREATE, C.LEAD_SOURCE_UPDATE},
    ReceiverMode.LEAD_SOURCES_CREATE_ONLY: ALL - {C.LEAD_SOURCE_LIST, C.LEAD_SOURCE_UPDATE},
    ReceiverMode.NO_STAFF: ALL - {C.STAFF_LIST, C.STAFF_BY_EMAIL, C.STAFF_OWNER},
    ReceiverMode.STAFF_BY_EMAIL_ONLY: ALL - {C.STAFF_LIST},
    ReceiverMode.NO_LEAD_SOURCE_UPDATE: ALL - {C.LEAD_SOURCE_UPDATE},
    ReceiverMode.NO_CONVERT: ALL - {C.CONVERT_PROSPECT},
    ReceiverMode.NO_EXTERNAL_ID: ALL,
    ReceiverMode.IDEMPOTENT: ALL - {C.PERSON_LOOKUP},
    ReceiverMode.CONTACTS: ALL
    - {C.PROSPECT_CREATE, C.PROSPECT_UPDATE, C.MEMBER_CREATE, C.MEMBER_UPDATE, C.STAFF_LIST}
    - {C.LEAD_SOURCE_CREATE, C.LEAD_SOURCE_UPDATE},
}


def people(receiver: ReferenceReceiver, kind: str, club: str = "CL1") -> dict[str, Any]:
    state = receiver.state()["clients"][CLIENT]["clubs"][club]
    result: dict[str, Any] = state[kind]
    return result


def routes_called(receiver: ReferenceReceiver) -> Counter[str]:
    """Requests the receiver has answered so far, by route."""
    return Counter(receiver.calls.as_json()["by_route"])


async def unsupported(client: ReceiverClient, receiver: ReferenceReceiver, call: Any) -> None:
    """The call raises NotSupported without reaching the receiver."""
    before = receiver.calls.as_json()["total"]
    with pytest.raises(NotSupported):
        await call
    assert receiver.calls.as_json()["total"] == before


async def exercise_prospects(client: ReceiverClient, receiver: ReferenceReceiver) -> None:
    caps = client.capabilities
    pete = person(birthdate=dt.date(1990, 4, 2))
    if C.PROSPECT_CREATE in caps:
        pid = await client.create_prospect(CLUB, pete)
        assert people(receiver, "prospects")[pid]["birthDate"] == "1990-04-02"
    else:
        await unsupported(client, receiver, client.create_prospect(CLUB, pete))
        pid = "P-none"
    if C.PROSPECT_UPDATE in caps:
        await client.update_prospect(CLUB, pid, person(city="Shelbyville"))
        stored = people(receiver, "prospects")[pid]
        assert (stored["address"]["city"], stored["version"]) == ("Shelbyville", 2)
    else:
        await unsupported(client, receiver, client.update_prospect(CLUB, pid, pete))
    sally = person(first_name="Sally", intouch_id="U-2", email="sally@example.com")
    if C.PROSPECT_SAVE in caps:
        sid = await client.save_prospect(OTHER_CLUB, sally, None)
        assert await client.save_prospect(OTHER_CLUB, person(first_name="Sal"), sid) == sid
        assert people(receiver, "prospects", "CL2")[sid]["firstName"] == "Sal"
    else:
        await unsupported(client, receiver, client.save_prospect(OTHER_CLUB, sally, None))
    # The connector's choice works in every mode: create + update where the receiver has
    # them, else save.
    before = routes_called(receiver)
    renamed = person(intouch_id="U-3", last_name="Upsert")
    uid = await upsert(client, "PROSPECT", CLUB, renamed, None)
    assert await upsert(client, "PROSPECT", CLUB, person(intouch_id="U-3"), uid) == uid
    assert people(receiver, "prospects")[uid]["lastName"] == "Prospect"
    made = routes_called(receiver) - before
    if C.PROSPECT_CREATE in caps:
        assert made == Counter({"create_prospect": 1, "update_prospect": 1})
    else:
        assert made == Counter({"save_prospect": 2})


async def exercise_members(client: ReceiverClient, receiver: ReferenceReceiver) -> None:
    caps = client.capabilities
    mary = person(first_name="Mary", user_type="member", intouch_id="U-10", status="inactive")
    if C.MEMBER_CREATE in caps:
        mid = await client.create_member(CLUB, mary)
        assert people(receiver, "members")[mid]["status"] == "inactive"
    else:
        await unsupported(client, receiver, client.create_member(CLUB, mary))
        mid = "M-none"
    if C.MEMBER_UPDATE in caps:
        await client.update_member(CLUB, mid, person(user_type="member", company="ACME"))
        assert people(receiver, "members")[mid]["company"] == "ACME"
    else:
        await unsupported(client, receiver, client.update_member(CLUB, mid, mary))
    if C.MEMBER_SAVE in caps:
        sid = await client.save_member(CLUB, person(user_type="member", intouch_id="U-11"), None)
        assert sid in people(receiver, "members")
    else:
        await unsupported(client, receiver, client.save_member(CLUB, mary, None))
    before = routes_called(receiver)
    uid = await upsert(client, "MEMBER", CLUB, person(user_type="member", intouch_id="U-12"), None)
    kept = people(receiver, "members")[uid]["externalId"]
    assert kept == "U-12" or not client.stores_external_id
    made = routes_called(receiver) - before
    assert made == Counter({"create_member" if C.MEMBER_CREATE in caps else "save_member": 1})

    # Conversion moves the prospect to the members; the member's ID is what we link to.
    pid = await upsert(client, "PROSPECT", CLUB, person(intouch_id="U-13"), None)
    if C.CONVERT_PROSPECT not in caps:
        await unsupported(client, receiver, client.convert_prospect(CLUB, pid, mary))
        return
    converted = await client.convert_prospect(CLUB, pid, person(user_type="member"))
    assert pid not in people(receiver, "prospects")
    assert people(receiver, "members")[converted]["convertedFrom"] == pid


async def exercise_staff(client: ReceiverClient, receiver: ReferenceReceiver) -> None:
    caps = client.capabilities
    receiver.store.seed_staff(CLIENT, "JStaff@Club.com", "John Staff", staff_id="9999")
    receiver.store.seed_staff(CLIENT, "other@club.com", "Other", staff_id="8888", club_ids=["CL2"])
    if C.STAFF_LIST in caps:
        everyone = await client.list_staff(None)
        assert {s.id for s in everyone} == {"9999", "8888"}
        at_club = await client.list_staff(CLUB)
        assert [(s.id, s.email, s.name) for s in at_club] == [
            ("9999", "JStaff@Club.com", "John Staff")
        ]
    else:
        await unsupported(client, receiver, client.list_staff(None))
    if C.STAFF_BY_EMAIL in caps:
        found = await client.find_staff_by_email("  jstaff@club.COM ")
        assert found is not None and found.id == "9999"
        assert await client.find_staff_by_email("nobody@club.com") is None
    else:
        await unsupported(client, receiver, client.find_staff_by_email("jstaff@club.com"))
    owned = person(intouch_id="U-20", staff_owner_receiver_id="9999")
    pid = await upsert(client, "PROSPECT", CLUB, owned, None)
    expected_owner = "9999" if C.STAFF_OWNER in caps else None
    assert people(receiver, "prospects")[pid]["staffOwnerId"] == expected_owner


async def exercise_lead_sources(client: ReceiverClient, receiver: ReferenceReceiver) -> None:
    caps = client.capabilities
    seeded = receiver.store.create_lead_source(CLIENT, {"name": "Newspaper"})["id"]
    if C.LEAD_SOURCE_LIST in caps:
        listed = await client.list_lead_sources()
        assert [(s.id, s.name) for s in listed] == [(seeded, "Newspaper")]
    else:
        await unsupported(client, receiver, client.list_lead_sources())
    if C.LEAD_SOURCE_CREATE in caps:
        radio = await client.create_lead_source("Radio")
        stored = receiver.state()["clients"][CLIENT]["lead_sources"]
        assert stored[radio]["name"] == "Radio"
        sourced = person(intouch_id="U-30", lead_source_receiver_id=radio)
        pid = await upsert(client, "PROSPECT", CLUB, sourced, None)
        assert people(receiver, "prospects")[pid]["leadSourceId"] == radio
    else:
        await unsupported(client, receiver, client.create_lead_source("Radio"))
    if C.LEAD_SOURCE_UPDATE in caps:
        await client.update_lead_source(seeded, "Local newspaper")
        stored = receiver.state()["clients"][CLIENT]["lead_sources"]
        assert stored[seeded]["name"] == "Local newspaper"
    else:
        await unsupported(client, receiver, client.update_lead_source(seeded, "Renamed"))


async def exercise_lookup(client: ReceiverClient, receiver: ReferenceReceiver) -> None:
    if C.PERSON_LOOKUP not in client.capabilities:
        await unsupported(client, receiver, client.find_people("a@b.c", None))
        return
    found = person(intouch_id="U-40", email="Find@Me.com")
    pid = await upsert(client, "PROSPECT", CLUB, found, None)
    by_email = await client.find_people("find@me.com", None)
    assert [p.id for p in by_email] == [pid]
    assert by_email[0].user_type == "prospect"
    if client.stores_external_id:
        (by_id,) = await client.find_people(None, "U-40")
        assert (by_id.id, by_id.external_id) == (pid, "U-40")
    else:
        assert by_email[0].external_id is None  # nothing of ours was sent or kept
    assert await client.find_people("ghost@example.com", "U-404") == []


@pytest.mark.parametrize("mode", list(ReceiverMode), ids=lambda m: m.value)
def test_every_call_in_every_mode(mode: ReceiverMode) -> None:
    async def scenario() -> None:
        async with serving(mode) as (receiver, client):
            assert client.capabilities == EXPECTED[mode]
            await exercise_prospects(client, receiver)
            await exercise_members(client, receiver)
            await exercise_staff(client, receiver)
            await exercise_lead_sources(client, receiver)
            await exercise_lookup(client, receiver)
            # Every call the adapter made exists on the receiver: no 404/405 anywhere.
            statuses = receiver.calls.as_json()["by_status"]
            assert all(code[0] == "2" for codes in statuses.values() for code in codes), statuses

    run(scenario())


@pytest.mark.parametrize("transport", list(TransportKind), ids=lambda t: t.value)
def test_both_transports_carry_the_full_profile(transport: TransportKind) -> None:
    async def scenario() -> None:
        async with serving(client_config={"transport": transport}) as (receiver, client):
            await exercise_prospects(client, receiver)
            await exercise_lead_sources(client, receiver)

    run(scenario())


def test_missing_routes_answer_404_or_405() -> None:
    """A profile that claims a call the receiver lacks gets the receiver's own 404/405."""

    async def scenario() -> None:
        async with serving(ReceiverMode.SAVE_ONLY, profile="reference") as (receiver, client):
            with pytest.raises(PermanentError, match=r"HTTP 40[45]"):
                await client.create_prospect(CLUB, person())
            with pytest.raises(PermanentError, match=r"HTTP 40[45]"):
                await client.update_prospect(CLUB, "P1", person())
            assert receiver.calls.as_json()["by_route"]["unmatched"] == 2

    run(scenario())
