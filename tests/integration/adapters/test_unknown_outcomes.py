"""What the receiver side offers for exactly-once effects: faults that leave an outcome unknown,
idempotency keys, conflicts that name the existing record, and lookups that say whose it is."""

from __future__ import annotations

import socket
import time

import pytest

from adapters.config import ReceiverConfig
from adapters.errors import AlreadyExists, RetryableError
from adapters.http import Timeouts
from adapters.reference import FaultSpec, ReceiverMode
from adapters.registry import create_adapter
from tests.integration.adapters.receivers import CLIENT, CLUB, eventually, person, run, serving

SHORT = {"timeouts": Timeouts(read=0.3)}


def prospects(receiver: object) -> dict[str, dict[str, object]]:
    state = receiver.state()  # type: ignore[attr-defined]
    found: dict[str, dict[str, object]] = state["clients"][CLIENT]["clubs"]["CL1"]["prospects"]
    return found


def test_apply_then_time_out_applies_the_create_and_the_caller_sees_a_timeout() -> None:
    async def scenario() -> None:
        fault = {"create_prospect": FaultSpec(apply_then_timeout_rate=1.0, hang_s=5)}
        async with serving(route_faults=fault, client_config=SHORT) as (receiver, client):
            with pytest.raises(RetryableError, match="timed out") as caught:
                await client.create_prospect(CLUB, person(intouch_id="U-1"))
            assert caught.value.maybe_applied
            assert [p["externalId"] for p in prospects(receiver).values()] == ["U-1"]

    run(scenario())


def test_apply_then_trickle_is_cut_by_the_total_though_every_byte_is_in_time() -> None:
    async def scenario() -> None:
        fault = {"create_prospect": FaultSpec(apply_then_trickle_rate=1.0, hang_s=30)}
        bounded = {"timeouts": Timeouts(read=0.5, total=1.0)}
        async with serving(route_faults=fault, client_config=bounded) as (receiver, client):
            started = time.monotonic()
            with pytest.raises(RetryableError, match="no complete answer within 1s") as caught:
                await client.create_prospect(CLUB, person(intouch_id="U-3"))
            assert time.monotonic() - started < 5
            assert caught.value.maybe_applied
            assert [p["externalId"] for p in prospects(receiver).values()] == ["U-3"]

    run(scenario())


def test_a_late_apply_lands_after_the_callers_timeout() -> None:
    async def scenario() -> None:
        fault = {"create_prospect": FaultSpec(late_apply_rate=1.0, late_apply_s=0.8)}
        async with serving(route_faults=fault, client_config=SHORT) as (receiver, client):
            started = time.monotonic()
            with pytest.raises(RetryableError, match="timed out"):
                await client.create_prospect(CLUB, person(intouch_id="U-2"))
            assert prospects(receiver) == {}  # nothing yet when the caller gives up
            assert time.monotonic() - started < 0.8

            async def landed() -> bool:
                return len(prospects(receiver)) == 1

            await eventually(landed)

    run(scenario())


def test_throttled_and_refused_calls_provably_did_not_run() -> None:
    async def scenario() -> None:
        throttle = FaultSpec(throttle_rate=1.0, retry_after_s=0.1)
        async with serving(faults=throttle) as (_, client):
            with pytest.raises(RetryableError) as caught:
                await client.create_prospect(CLUB, person())
            assert not caught.value.maybe_applied
            assert caught.value.throttled  # the receiver is up: no breaker failure
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        config = ReceiverConfig(host=f"127.0.0.1:{port}", receiver_client_id=CLIENT)
        async with create_adapter("reference", config) as refused:
            with pytest.raises(RetryableError) as caught:
                await refused.create_prospect(CLUB, person())
            assert not caught.value.maybe_applied
            assert not caught.value.throttled

    run(scenario())


def test_an_idempotency_key_makes_a_repeated_create_harmless() -> None:
    async def scenario() -> None:
        async with serving(ReceiverMode.IDEMPOTENT) as (receiver, client):
            assert client.takes_idempotency_keys
            first = await client.create_prospect(CLUB, person(), idempotency_key="k1")
            again = await client.create_prospect(CLUB, person(), idempotency_key="k1")
            other = await client.create_prospect(CLUB, person(), idempotency_key="k2")
            assert first == again != other
            assert sorted(prospects(receiver)) == sorted({first, other})
        async with serving() as (_, plain):
            assert not plain.takes_idempotency_keys

    run(scenario())


def test_a_duplicate_lead_source_name_is_a_conflict_naming_the_existing_one() -> None:
    async def scenario() -> None:
        async with serving(ReceiverMode.LEAD_SOURCES_CREATE_ONLY) as (_, client):
            first = await client.create_lead_source("Newspaper")
            with pytest.raises(AlreadyExists) as caught:
                await client.create_lead_source("newspaper")
            assert caught.value.receiver_id == first
            assert caught.value.status == 409

    run(scenario())


def test_a_lookup_says_whose_record_it_is_where_the_receiver_keeps_our_id() -> None:
    async def scenario() -> None:
        async with serving() as (_, client):
            assert client.stores_external_id
            sibling = await client.create_prospect(CLUB, person(intouch_id="Y", email="f@x.com"))
            (found,) = await client.find_people("f@x.com", "X")
            assert (found.id, found.external_id) == (sibling, "Y")  # the email matched, not us
        async with serving(ReceiverMode.NO_EXTERNAL_ID) as (_, blind):
            assert not blind.stores_external_id
            await blind.create_prospect(CLUB, person(intouch_id="Y", email="f@x.com"))
            (found,) = await blind.find_people("f@x.com", "X")
            assert found.external_id is None

    run(scenario())
