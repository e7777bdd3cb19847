"""The reference receiver's own surface: admin endpoints, thread runner and `serve` command."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys

import httpx

from adapters.reference import FaultSpec, ReceiverMode, ReferenceConfig, run_in_thread
from tests.integration.adapters.receivers import CLIENT, CLUB, eventually, person, run, serving


def test_admin_endpoints_show_state_count_calls_seed_staff_and_reset() -> None:
    async def scenario() -> None:
        async with (
            serving() as (receiver, client),
            httpx.AsyncClient(base_url=receiver.url) as admin,
        ):
            seeded = await admin.post(
                "/_admin/staff",
                json={"client_id": CLIENT, "id": "S1", "email": "a@club.com", "name": "A"},
            )
            assert seeded.status_code == 201
            assert (
                await admin.post("/_admin/clubs", json={"client_id": CLIENT, "club_id": "CL7"})
            ).status_code == 201
            pid = await client.create_prospect(CLUB, person(staff_owner_receiver_id="S1"))
            await client.list_staff(None)

            state = (await admin.get("/_admin/state")).json()
            assert state["mode"] == "full"
            assert "create_prospect" in state["routes"]
            held = state["clients"][CLIENT]
            assert set(held["clubs"]) == {"CL1", "CL2", "CL7"}
            assert held["clubs"]["CL1"]["prospects"][pid]["staffOwnerId"] == "S1"
            assert held["staff"]["S1"]["emailAddress"] == "a@club.com"

            calls = (await admin.get("/_admin/calls")).json()
            assert calls == {
                "total": 2,
                "by_route": {"create_prospect": 1, "list_staff": 1},
                "by_status": {"create_prospect": {"201": 1}, "list_staff": {"200": 1}},
            }
            assert (await admin.post("/_admin/reset")).status_code == 200
            state = (await admin.get("/_admin/state")).json()
            assert state["clients"][CLIENT]["clubs"]["CL1"]["prospects"] == {}
            assert state["clients"][CLIENT]["staff"] == {}
            assert (await admin.get("/_admin/calls")).json()["total"] == 0
            bad = await admin.put("/_admin/faults", json={"default": {"error_rate": 2}})
            assert bad.status_code == 400

    run(scenario())


def test_run_in_thread_serves_sync_callers() -> None:
    with run_in_thread(ReferenceConfig(mode=ReceiverMode.SAVE_ONLY)) as threaded:
        response = httpx.get(f"{threaded.url}/_admin/state")
        assert response.json()["mode"] == "save-only"
        threaded.call(lambda: threaded.receiver.store.seed_staff(CLIENT, "x@club.com", "X"))
        listed = httpx.get(f"{threaded.receiver.api_url}/clients/{CLIENT}/staff").json()
        assert [s["emailAddress"] for s in listed["staff"]] == ["x@club.com"]


def test_serve_command_prints_its_url_and_serves() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "adapters.reference", "serve", "--port", "0", "--mode", "no-staff"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None
        api_url = proc.stdout.readline().strip()
        assert api_url.startswith("http://127.0.0.1:") and api_url.endswith("/api/v1")
        root = api_url.removesuffix("/api/v1")
        assert httpx.get(f"{root}/_admin/state").json()["mode"] == "no-staff"
        assert httpx.get(f"{api_url}/clients/{CLIENT}/staff").status_code in (404, 405)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        if proc.stdout is not None:
            proc.stdout.close()


def test_changes_to_one_record_from_two_callers_at_once_are_recorded_as_overlaps() -> None:
    async def scenario() -> None:
        async with serving(faults=FaultSpec(latency_ms=300)) as (receiver, client):
            # One caller, one change at a time: nothing recorded.
            await client.create_prospect(CLUB, person(intouch_id="A"))
            await client.create_prospect(CLUB, person(intouch_id="B"))
            assert receiver.overlaps == []
            # A caller that gave up (its connection closed) no longer counts.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(client.create_prospect(CLUB, person(intouch_id="C")), 0.1)
            await eventually(lambda: _async(receiver.in_flight == 0), 2.0)
            await client.create_prospect(CLUB, person(intouch_id="C"))
            assert receiver.overlaps == []
            # Two callers changing one record at once: recorded.
            await asyncio.gather(
                client.create_prospect(CLUB, person(intouch_id="D")),
                client.create_prospect(CLUB, person(intouch_id="D")),
            )
            assert receiver.overlaps == ["POST externalId=D"]
            # Without an external ID, creates of two people in one club at once are no
            # overlap (the soak's no-external-id tenant had them flagged); one person twice is.
            receiver.overlaps.clear()
            path = f"/clients/{CLIENT}/clubs/{CLUB}/prospects"
            bodies = [
                {"firstName": "E", "lastName": "One", "type": "prospect"},
                {"firstName": "F", "lastName": "Two", "type": "prospect"},
            ]
            async with httpx.AsyncClient(base_url=receiver.api_url) as raw:
                await asyncio.gather(*(raw.post(path, json=b) for b in bodies))
                assert receiver.overlaps == []
                await asyncio.gather(*(raw.post(path, json=bodies[0]) for _ in range(2)))
            assert len(receiver.overlaps) == 1

    run(scenario())


async def _async(value: bool) -> bool:
    return value
