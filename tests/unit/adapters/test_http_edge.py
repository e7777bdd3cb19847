"""The HTTP edge: status and exception translation, body limits and redaction (MockTransport)."""

from __future__ import annotations

import asyncio
import datetime as dt
import email.utils
from collections.abc import AsyncIterator, Callable

import httpx
import pytest

from adapters.base import ClubRef, Person
from adapters.config import ReceiverConfig
from adapters.errors import (
    AdapterError,
    MisconfiguredError,
    PermanentError,
    ResponseShapeError,
    ResponseTooLarge,
    RetryableError,
)
from adapters.http import Limits
from adapters.http_errors import error_for_status, parse_retry_after, translate_errors
from adapters.profile import load_profile
from adapters.registry import PROFILE_DIR
from adapters.rest import RestReceiverClient

CLUB = ClubRef("1", "CL1")
PETE = Person("Pete", "Prospect")


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (200, None),
        (201, None),
        (204, None),
        (302, PermanentError),
        (400, PermanentError),
        (404, PermanentError),
        (409, PermanentError),
        (422, PermanentError),
        (401, MisconfiguredError),
        (403, MisconfiguredError),
        (408, RetryableError),
        (429, RetryableError),
        (500, RetryableError),
        (501, PermanentError),
        (502, RetryableError),
        (503, RetryableError),
        (504, RetryableError),
    ],
)
def test_status_classification(status: int, kind: type[AdapterError] | None) -> None:
    error = error_for_status("GET /x", status, {}, "why")
    assert (type(error) if error is not None else None) is kind


def test_retry_after_seconds_and_dates() -> None:
    assert parse_retry_after("12") == 12.0
    assert parse_retry_after(" 0.5 ") == 0.5
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    now = 1_700_000_000.0
    when = email.utils.formatdate(now + 30, usegmt=True)
    assert parse_retry_after(when, now=now) == pytest.approx(30, abs=1)
    error = error_for_status("GET /x", 429, {"retry-after": "3"}, "")
    assert isinstance(error, RetryableError) and error.retry_after == 3.0


@pytest.mark.parametrize(
    ("raised", "kind"),
    [
        (httpx.ConnectTimeout("t"), RetryableError),
        (httpx.ReadTimeout("t"), RetryableError),
        (httpx.PoolTimeout("t"), RetryableError),
        (httpx.ConnectError("refused"), RetryableError),
        (httpx.RemoteProtocolError("eof"), RetryableError),
        (httpx.ReadError("reset"), RetryableError),
        (httpx.UnsupportedProtocol("ftp"), MisconfiguredError),
        (httpx.DecodingError("gzip"), ResponseShapeError),
    ],
)
def test_library_exceptions_are_translated_once(raised: Exception, kind: type) -> None:
    with pytest.raises(kind) as caught, translate_errors("GET /x"):
        raise raised
    assert caught.value.__cause__ is raised


def client_for(
    handler: Callable[[httpx.Request], httpx.Response], **config: object
) -> RestReceiverClient:
    profile = load_profile(PROFILE_DIR / "reference.yaml")
    settings = ReceiverConfig(
        scheme="http",
        host="receiver.test",
        base_path="/api/v1",
        receiver_client_id="C100",
        **config,
    )
    return RestReceiverClient(profile, settings, custom_transport=httpx.MockTransport(handler))


def test_request_renders_path_query_and_nested_body() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(201, json={"prospect": {"id": 42}})

    async def scenario() -> str:
        async with client_for(handler) as client:
            person = Person("Ann", "Lee", birthdate=dt.date(2000, 2, 29), city="Oslo")
            return await client.create_prospect(ClubRef("1", "CL 1/a"), person)

    assert asyncio.run(scenario()) == "42"
    request = seen[0]
    assert request.url.raw_path == b"/api/v1/clients/C100/clubs/CL%201%2Fa/prospects"
    body = httpx.Response(200, content=request.content).json()
    assert body["birthDate"] == "2000-02-29"
    assert body["address"]["city"] == "Oslo"
    assert body["address"]["line2"] is None
    assert request.headers["accept"] == "application/json"


def test_missing_id_or_non_json_success_is_a_decode_error() -> None:
    responses = iter(
        [httpx.Response(201, json={"prospect": {}}), httpx.Response(201, text="<html>ok</html>")]
    )

    async def scenario() -> None:
        async with client_for(lambda _: next(responses)) as client:
            with pytest.raises(ResponseShapeError, match=r"no receiver ID at 'prospect\.id'"):
                await client.create_prospect(CLUB, PETE)
            with pytest.raises(ResponseShapeError, match="not JSON"):
                await client.create_prospect(CLUB, PETE)

    asyncio.run(scenario())


async def chunks(count: int, size: int) -> AsyncIterator[bytes]:
    for _ in range(count):
        yield b"x" * size


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "chunked"])
def test_oversized_body_stops_reading(declared: bool) -> None:
    pulled: list[int] = []

    async def stream() -> AsyncIterator[bytes]:
        async for chunk in chunks(1000, 1024):
            pulled.append(len(chunk))
            yield chunk

    def handler(_: httpx.Request) -> httpx.Response:
        headers = {"content-length": str(1000 * 1024)} if declared else {}
        return httpx.Response(200, headers=headers, content=stream())

    async def scenario() -> None:
        async with client_for(handler, limits=Limits(max_response_bytes=4096)) as client:
            with pytest.raises(ResponseTooLarge, match="exceeds 4096 bytes"):
                await client.list_lead_sources()

    asyncio.run(scenario())
    # The body is abandoned early, never read to the end.
    assert sum(pulled) <= (0 if declared else 5 * 1024)


def test_receiver_echoing_the_secret_is_redacted() -> None:
    token = "tok-5ecret-echo"

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.headers["authorization"] == f"Bearer {token}"
        return httpx.Response(401, json={"error": f"token {token} revoked"})

    async def scenario() -> None:
        auth = {"kind": "bearer", "secret": token}
        async with client_for(handler, auth=auth) as client:
            with pytest.raises(MisconfiguredError) as caught:
                await client.list_staff(None)
            assert token not in str(caught.value)
            assert "token ********** revoked" in str(caught.value)

    asyncio.run(scenario())


def test_lookup_not_found_status_means_none() -> None:
    profile = load_profile(PROFILE_DIR / "reference.yaml")
    assert profile.calls.find_person is not None
    lookup = profile.calls.find_person.model_copy(update={"not_found_status": [404]})
    patched = profile.model_copy(
        update={"calls": profile.calls.model_copy(update={"find_person": lookup})}
    )
    settings = ReceiverConfig(scheme="http", host="r.test", receiver_client_id="C1")
    transport = httpx.MockTransport(lambda _: httpx.Response(404, json={"error": "no such person"}))

    async def scenario() -> None:
        async with RestReceiverClient(patched, settings, custom_transport=transport) as client:
            assert await client.find_people("a@b.c", None) == []
            with pytest.raises(ValueError, match="needs an email or an external ID"):
                await client.find_people(None, None)

    asyncio.run(scenario())
