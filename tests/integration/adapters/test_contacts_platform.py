"""The second bundled profile against the reference receiver's `contacts` mode, over real HTTP."""

from __future__ import annotations

import datetime as dt

import httpx

from adapters.reference import ReceiverMode
from tests.integration.adapters.receivers import CLIENT, CLUB, person, run, serving


def test_typed_values_reach_a_platform_that_refuses_strings() -> None:
    async def scenario() -> None:
        async with serving(ReceiverMode.CONTACTS) as (receiver, client):
            ann = person(status="inactive", gender="F", birthdate=dt.date(1990, 5, 17))
            pid = await client.save_prospect(CLUB, ann, None)
            stored = receiver.state()["clients"][CLIENT]["clubs"]["CL1"]["prospects"][pid]
            assert (stored["status"], stored["gender"]) == ("inactive", "F")
            assert stored["birthDate"] == "1990-05-17"
            # What a string-only profile sent: the platform refuses it.
            url = f"{receiver.url}/api/v1/clients/{CLIENT}/clubs/CL1/contacts"
            async with httpx.AsyncClient() as raw:
                answer = await raw.post(url, json={"first": "A", "last": "B", "isActive": "false"})
            assert answer.status_code == 422 and "isActive" in answer.text

    run(scenario())


def test_a_convert_with_a_change_ends_with_the_change_on_the_member() -> None:
    async def scenario() -> None:
        async with serving(ReceiverMode.CONTACTS) as (receiver, client):
            pid = await client.save_prospect(CLUB, person(intouch_id="U-1", city="Oslo"), None)
            moved = person(intouch_id="U-1", user_type="member", city="Bergen")
            mid = await client.convert_prospect(CLUB, pid, moved)
            club = receiver.state()["clients"][CLIENT]["clubs"]["CL1"]
            assert pid not in club["prospects"]
            member = club["members"][mid]
            assert (member["address"]["city"], member["convertedFrom"]) == ("Bergen", pid)

    run(scenario())


def test_paged_lead_sources_are_read_to_the_last_page() -> None:
    async def scenario() -> None:
        async with serving(ReceiverMode.CONTACTS) as (receiver, client):
            for n in range(120):
                receiver.store.create_lead_source(CLIENT, {"name": f"Source {n}"})
            listed = await client.list_lead_sources()
            assert [s.name for s in listed] == [f"Source {n}" for n in range(120)]
            assert receiver.calls.as_json()["by_route"]["list_lead_sources"] == 3

    run(scenario())
