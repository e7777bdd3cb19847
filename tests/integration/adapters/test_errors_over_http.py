"""Each adapter error class, provoked over real HTTP by the reference receiver."""

from __future__ import annotations

import datetime as dt
import socket
import time

import httpx
import pytest
from pydantic import SecretStr

from adapters.base import Capability
from adapters.config import ReceiverConfig
from adapters.errors import (
    MisconfiguredError,
    NotSupported,
    PermanentError,
    ResponseTooLarge,
    RetryableError,
)
from adapters.http import Limits, Timeouts, TransportKind
from adapters.reference import FaultSpec, ReceiverMode, ReferenceAuth
from adapters.registry import create_adapter
from tests.integration.adapters.receivers import CLIENT, CLUB, eventually, person, run, serving

TRANSPORTS = pytest.mark.parametrize("transport", list(TransportKind), ids=lambda t: t.value)


@TRANSPORTS
def test_injected_503_is_retryable(transport: TransportKind) -> None:
    async def scenario() -> None:
        faults = {"create_prospect": FaultSpec(error_rate=1.0)}
        async with serving(route_faults=faults, client_config={"transport": transport}) as (
            receiver,
            client,
        ):
            with pytest.raises(RetryableError, match="HTTP 503") as caught:
                await client.create_prospect(CLUB, person())
            assert caught.value.retry_after is None
            # Other routes are untouched by a per-route fault.
            await client.list_lead_sources()
            assert receiver.calls.as_json()["by_status"]["create_prospect"] == {"503": 1}

    run(scenario())


@TRANSPORTS
def test_429_carries_retry_after(transport: TransportKind) -> None:
    async def scenario() -> None:
        throttled = FaultSpec(throttle_rate=1.0, retry_after_s=7)
        async with serving(faults=throttled, client_config={"transport": transport}) as (_, c):
            with pytest.raises(RetryableError, match="HTTP 429") as caught:
                await c.list_lead_sources()
            assert caught.value.retry_after == 7.0

    run(scenario())


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"last_name": ""}, "lastName is required"),
        ({"first_name": " "}, "firstName is required"),
        ({"status": "frozen"}, "status must be one of"),
        ({"birthdate": dt.date(2999, 1, 1)}, "in the future"),
        ({"staff_owner_receiver_id": "no-such-staff"}, "unknown staff owner id"),
        ({"lead_source_receiver_id": "no-such-source"}, "unknown lead source id"),
        ({"email": "not-an-address"}, "is not an email address"),
        ({"user_type": "member"}, "sent to the prospect endpoint"),
    ],
)
def test_validation_4xx_is_permanent_with_the_receivers_message(
    change: dict[str, object], message: str
) -> None:
    async def scenario() -> None:
        async with serving() as (receiver, client):
            with pytest.raises(PermanentError) as caught:
                await client.create_prospect(CLUB, person(**change))
            assert caught.value.status == 422
            assert caught.value.receiver_message is not None
            assert message in caught.value.receiver_message
            assert message in str(caught.value)
            assert receiver.state()["clients"][CLIENT]["clubs"]["CL1"]["prospects"] == {}

    run(scenario())


def test_unknown_club_client_and_record_are_permanent() -> None:
    async def scenario() -> None:
        async with serving() as (_, client):
            with pytest.raises(PermanentError, match="unknown club 'CL404'") as caught:
                await client.create_prospect(CLUB.__class__("99", "CL404"), person())
            assert caught.value.status == 404
            with pytest.raises(PermanentError, match="no prospect 'P404'"):
                await client.update_prospect(CLUB, "P404", person())
            await client.create_lead_source("Radio")
            with pytest.raises(PermanentError, match="already exists") as duplicate:
                await client.create_lead_source("RADIO")
            assert duplicate.value.status == 409
        async with serving(client_config={"receiver_client_id": "C404"}) as (_, stranger):
            with pytest.raises(PermanentError, match="unknown client 'C404'"):
                await stranger.list_lead_sources()

    run(scenario())


@pytest.mark.parametrize("kind", ["basic", "bearer", "api_key"])
def test_bad_or_missing_credentials_are_misconfigured(kind: str) -> None:
    async def scenario() -> None:
        auth = ReferenceAuth.model_validate({"kind": kind, "secret": "right-secret"})
        async with serving(auth=auth) as (receiver, good):
            await good.list_lead_sources()
            wrong = receiver.receiver_config(CLIENT).auth.model_copy(
                update={"secret": SecretStr("wrong-secret")}
            )
            async with create_adapter(
                "reference", receiver.receiver_config(CLIENT, auth=wrong)
            ) as bad:
                with pytest.raises(MisconfiguredError, match="HTTP 401") as caught:
                    await bad.list_lead_sources()
                assert caught.value.status == 401
            no_auth = receiver.receiver_config(CLIENT, auth={"kind": "none"})
            async with create_adapter("reference", no_auth) as anonymous:
                with pytest.raises(MisconfiguredError, match="HTTP 401"):
                    await anonymous.create_prospect(CLUB, person())

    run(scenario())


def test_auth_kind_the_profile_does_not_take_is_misconfigured() -> None:
    from adapters.profile import ReceiverProfile
    from adapters.registry import ADAPTERS
    from adapters.rest import RestReceiverClient

    assert "reference" in ADAPTERS
    profile = ReceiverProfile.model_validate(
        {"name": "tokens-only", "auth": ["bearer"], "calls": {}}
    )
    config = ReceiverConfig(host="127.0.0.1:9", receiver_client_id="C1")
    with pytest.raises(MisconfiguredError, match="takes auth"):
        RestReceiverClient(profile, config)


@TRANSPORTS
def test_timeout_is_retryable(transport: TransportKind) -> None:
    async def scenario() -> None:
        hang = FaultSpec(timeout_rate=1.0, hang_s=30)
        client_config = {"transport": transport, "timeouts": Timeouts(read=0.3)}
        async with serving(faults=hang, client_config=client_config) as (_, client):
            started = time.monotonic()
            with pytest.raises(RetryableError, match="timed out"):
                await client.list_lead_sources()
            assert time.monotonic() - started < 5

    run(scenario())


@TRANSPORTS
def test_connection_refused_is_retryable(transport: TransportKind) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    # Nothing listens on `port` now that the socket is closed.
    config = ReceiverConfig(
        scheme="http", host=f"127.0.0.1:{port}", receiver_client_id="C1", transport=transport
    )

    async def scenario() -> None:
        async with create_adapter("reference", config) as client:
            with pytest.raises(RetryableError):
                await client.list_lead_sources()

    run(scenario())


def test_outage_window_and_runtime_faults_flip_through_the_admin_endpoint() -> None:
    async def scenario() -> None:
        async with (
            serving() as (receiver, client),
            httpx.AsyncClient(base_url=receiver.url) as admin,
        ):
            (await admin.post("/_admin/outage", json={"seconds": 0.5})).raise_for_status()
            with pytest.raises(RetryableError, match="HTTP 503") as caught:
                await client.create_prospect(CLUB, person())
            assert caught.value.retry_after is not None

            async def recovered() -> bool:
                try:
                    await client.list_lead_sources()
                except RetryableError:
                    return False
                return True

            await eventually(recovered)

            plan = {"routes": {"list_lead_sources": {"error_rate": 1.0, "error_status": 502}}}
            (await admin.put("/_admin/faults", json=plan)).raise_for_status()
            with pytest.raises(RetryableError, match="HTTP 502"):
                await client.list_lead_sources()
            await client.create_prospect(CLUB, person())
            (await admin.put("/_admin/faults", json={})).raise_for_status()
            await client.list_lead_sources()
            faults = (await admin.get("/_admin/faults")).json()
            assert faults["routes"] == {} and faults["outage_remaining_s"] == 0

    run(scenario())


def test_injected_latency_slows_calls_down() -> None:
    async def scenario() -> None:
        slow = {"list_staff": FaultSpec(latency_ms=150, jitter_ms=50)}
        async with serving(route_faults=slow, seed=1) as (_, client):
            started = time.monotonic()
            await client.list_lead_sources()
            fast = time.monotonic() - started
            started = time.monotonic()
            await client.list_staff(None)
            assert time.monotonic() - started >= 0.15 > fast

    run(scenario())


def test_oversized_response_is_cut_off() -> None:
    async def scenario() -> None:
        limits = Limits(max_response_bytes=2_000)
        async with serving(client_config={"limits": limits}) as (receiver, client):
            for n in range(100):
                receiver.store.create_lead_source(CLIENT, {"name": f"Source number {n}"})
            with pytest.raises(ResponseTooLarge, match="exceeds 2000 bytes"):
                await client.list_lead_sources()

    run(scenario())


def test_missing_capability_raises_not_supported() -> None:
    async def scenario() -> None:
        async with serving(ReceiverMode.NO_STAFF) as (receiver, client):
            with pytest.raises(NotSupported) as caught:
                await client.list_staff(None)
            assert caught.value.capability is Capability.STAFF_LIST
            assert "reference-no-staff" in str(caught.value)
            assert receiver.calls.as_json()["total"] == 0

    run(scenario())
