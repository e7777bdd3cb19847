"""Each HTTP engine behind `ReceiverHttp` against a real local server: timeouts, limits, wire."""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import socket
import ssl
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiohttp import web
from multidict import CIMultiDict
from pydantic import SecretStr

from adapters.errors import MisconfiguredError, ResponseTooLarge, RetryableError
from adapters.http import AuthConfig, Limits, ReceiverHttp, Timeouts, TransportKind
from tests.integration.adapters.receivers import run

ENGINES = pytest.mark.parametrize("transport", list(TransportKind), ids=lambda t: t.value)
SECRET = "edge-test-5ecret-value"


@dataclass
class Seen:
    """What the server received, and the switch that lets hanging handlers go."""

    requests: list[dict[str, object]] = field(default_factory=list)
    release: asyncio.Event = field(default_factory=asyncio.Event)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)


async def _record(seen: Seen, request: web.Request) -> None:
    seen.requests.append(
        {
            "method": request.method,
            "raw_path": request.raw_path,
            "headers": request.headers.copy(),  # names case-insensitive, as on the wire
            "body": await request.read(),
        }
    )
    seen.arrived.set()


def _app(seen: Seen) -> web.Application:
    async def echo(request: web.Request) -> web.Response:
        await _record(seen, request)
        response = web.json_response({"id": 42})
        response.headers.add("Link", '<http://x/a?page=2>; rel="next"')
        response.headers.add("Link", '<http://x/a?page=9>; rel="last"')
        return response

    async def hang(request: web.Request) -> web.Response:
        await _record(seen, request)
        await seen.release.wait()
        return web.json_response({})

    async def half_body(request: web.Request) -> web.StreamResponse:
        await _record(seen, request)
        response = web.StreamResponse(headers={"Content-Length": "100"})
        await response.prepare(request)
        await response.write(b'{"id": ')
        await seen.release.wait()
        return response

    async def trickle(request: web.Request) -> web.StreamResponse:
        # A byte every 50 ms, each well within any read timeout, until released.
        await _record(seen, request)
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(request)
        while not seen.release.is_set():
            await response.write(b" ")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(seen.release.wait(), 0.05)
        await response.write(b"{}")
        return response

    async def big(request: web.Request) -> web.StreamResponse:
        await _record(seen, request)
        if request.query.get("declared"):
            return web.Response(body=b"x" * 100_000)
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(request)
        for _ in range(100):
            await response.write(b"x" * 1024)
        return response

    app = web.Application()
    app.router.add_route("*", "/api/echo/{rest:.*}", echo)
    app.router.add_route("*", "/api/hang", hang)
    app.router.add_route("*", "/api/half", half_body)
    app.router.add_route("*", "/api/big", big)
    app.router.add_route("*", "/api/trickle", trickle)
    return app


@asynccontextmanager
async def server(tls: ssl.SSLContext | None = None) -> AsyncIterator[tuple[str, Seen]]:
    seen = Seen()
    runner = web.AppRunner(_app(seen))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=tls)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"{'https' if tls else 'http'}://127.0.0.1:{port}/api", seen
    finally:
        seen.release.set()
        await runner.cleanup()


async def expect_retryable(call: Awaitable[object]) -> RetryableError:
    with pytest.raises(RetryableError) as caught:
        await call
    return caught.value


def scenario(body: Callable[[], Awaitable[None]]) -> None:
    run(body(), timeout=15)


@ENGINES
def test_the_same_request_goes_out_on_the_wire(transport: TransportKind) -> None:
    async def body() -> None:
        async with server() as (url, seen):
            auth = AuthConfig(kind="bearer", secret=SecretStr(SECRET))
            http = ReceiverHttp(url, auth=auth, transport=transport)
            try:
                answer = await http.request(
                    "POST",
                    "/echo/CL%201%2Fa/p",
                    params={"email": "a+b@example.com"},
                    json_body={"name": "Åsa", "n": [1, None]},
                    headers={"Idempotency-Key": "k1"},
                )
            finally:
                await http.aclose()
            assert answer.status == 200 and answer.json("echo") == {"id": 42}
            # Repeated headers are joined, as pagination reads them.
            assert answer.headers["link"].count("rel=") == 2
            sent = seen.requests[0]
            path, query = str(sent["raw_path"]).split("?")
            # The adapters' own percent-encoding stays; '+' goes encoded ('@' may or may not).
            assert path == "/api/echo/CL%201%2Fa/p"
            assert query.replace("%40", "@") == "email=a%2Bb@example.com"
            assert sent["body"] == '{"name":"Åsa","n":[1,null]}'.encode()
            headers = sent["headers"]
            assert isinstance(headers, CIMultiDict)
            assert headers["Authorization"] == f"Bearer {SECRET}"
            assert headers["Content-Type"] == "application/json"
            assert headers["Accept"] == "application/json"
            assert headers["Idempotency-Key"] == "k1"
            assert headers["User-Agent"].startswith("intouch-connector/")

    scenario(body)


@ENGINES
def test_timeout_before_the_answer_is_maybe_applied(transport: TransportKind) -> None:
    async def body() -> None:
        async with server() as (url, seen):
            http = ReceiverHttp(url, timeouts=Timeouts(read=0.3), transport=transport)
            try:
                error = await expect_retryable(http.request("POST", "/hang", json_body={}))
            finally:
                await http.aclose()
            assert "timed out" in str(error)
            assert error.maybe_applied and error.cause == "timeout"
            assert len(seen.requests) == 1

    scenario(body)


@ENGINES
def test_timeout_in_the_middle_of_the_body_is_maybe_applied(transport: TransportKind) -> None:
    async def body() -> None:
        async with server() as (url, _):
            http = ReceiverHttp(url, timeouts=Timeouts(read=0.3), transport=transport)
            try:
                error = await expect_retryable(http.request("POST", "/half", json_body={}))
            finally:
                await http.aclose()
            assert "timed out" in str(error)
            assert error.maybe_applied and error.cause == "timeout"

    scenario(body)


@ENGINES
def test_an_answer_trickling_past_the_total_is_cut_and_maybe_applied(
    transport: TransportKind,
) -> None:
    # Each byte comes within the read timeout: only the total ends the call.
    async def body() -> None:
        async with server() as (url, seen):
            http = ReceiverHttp(url, timeouts=Timeouts(read=0.5, total=1.0), transport=transport)
            started = asyncio.get_running_loop().time()
            try:
                error = await expect_retryable(http.request("POST", "/trickle", json_body={}))
            finally:
                await http.aclose()
            took = asyncio.get_running_loop().time() - started
            assert "no complete answer within 1s" in str(error)
            assert error.maybe_applied and error.cause == "timeout"
            assert 1.0 <= took < 3.0, took
            assert len(seen.requests) == 1

    scenario(body)


@ENGINES
def test_waiting_for_a_pooled_connection_is_never_sent(transport: TransportKind) -> None:
    async def body() -> None:
        async with server() as (url, seen):
            http = ReceiverHttp(
                url,
                timeouts=Timeouts(read=10, pool=0.3),
                limits=Limits(max_connections=1),
                transport=transport,
            )
            try:
                holder = asyncio.create_task(http.request("POST", "/hang", json_body={}))
                await asyncio.wait_for(seen.arrived.wait(), 5)
                error = await expect_retryable(http.request("POST", "/echo/x", json_body={}))
                assert not error.maybe_applied and error.cause == "timeout"
                assert [r["raw_path"] for r in seen.requests] == ["/api/hang"]
                seen.release.set()
                assert (await holder).status == 200
            finally:
                await http.aclose()

    scenario(body)


@ENGINES
def test_connection_refused_is_not_sent(transport: TransportKind) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]

    async def body() -> None:
        http = ReceiverHttp(f"http://127.0.0.1:{port}", transport=transport)
        try:
            error = await expect_retryable(http.request("POST", "/x", json_body={}))
        finally:
            await http.aclose()
        assert not error.maybe_applied
        # httpx-aiohttp reports a refused connection as httpx.ConnectTimeout.
        assert error.cause == ("timeout" if transport is TransportKind.AIOHTTP else "connection")

    scenario(body)


@ENGINES
@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "chunked"])
def test_a_body_past_the_bound_is_cut_and_the_pool_stays_usable(
    transport: TransportKind, declared: bool
) -> None:
    async def body() -> None:
        async with server() as (url, _):
            limits = Limits(max_response_bytes=4096, max_connections=1)
            http = ReceiverHttp(url, limits=limits, transport=transport)
            try:
                path = "/big?declared=1" if declared else "/big"
                with pytest.raises(ResponseTooLarge, match="exceeds 4096 bytes"):
                    await http.request("GET", path)
                answer = await http.request("GET", "/echo/after")
                assert answer.status == 200
            finally:
                await http.aclose()

    scenario(body)


@ENGINES
def test_an_unparsable_answer_is_retryable_and_keeps_the_secret_and_query_out(
    transport: TransportKind,
) -> None:
    """Neither the credential nor the query (a staff lookup carries an email) is in any
    exception of the chain that a logger prints."""

    async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nnot a header line\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()
        writer.close()

    async def body() -> None:
        listener = await asyncio.start_server(garbage, "127.0.0.1", 0)
        port = listener.sockets[0].getsockname()[1]
        auth = AuthConfig(kind="api_key", secret=SecretStr(SECRET))
        http = ReceiverHttp(f"http://127.0.0.1:{port}", auth=auth, transport=transport)
        try:
            query = {"email": "jane.doe@example.com"}
            error: BaseException | None = await expect_retryable(
                http.request("GET", "/x", params=query)
            )
        finally:
            await http.aclose()
            listener.close()
            await listener.wait_closed()
        texts = []
        while error is not None:
            texts += [str(error), repr(error), json.dumps([repr(a) for a in error.args])]
            error = error.__cause__ or error.__context__
        assert len(texts) > 3  # the library's own exception is in the chain
        assert not [text for text in texts if SECRET in text]
        assert not [text for text in texts if "jane.doe" in text]

    scenario(body)


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("needs the openssl command")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return cert, key


@ENGINES
# httpx deprecates `verify=<CA file path>` (ReceiverConfig.verify hands it one); it still works.
@pytest.mark.filterwarnings("ignore:`verify=<str>` is deprecated:DeprecationWarning")
def test_tls_verifies_against_the_given_ca_or_not_at_all(
    transport: TransportKind, certificate: tuple[Path, Path]
) -> None:
    cert, key = certificate
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(cert, key)

    async def call(url: str, verify: str | bool) -> int:
        http = ReceiverHttp(url, verify=verify, transport=transport)
        try:
            return (await http.request("GET", "/echo/tls")).status
        finally:
            await http.aclose()

    async def body() -> None:
        async with server(tls) as (url, seen):
            assert await call(url, str(cert)) == 200
            assert await call(url, False) == 200
            # The default trusts certifi's public CAs, which did not sign this certificate.
            if transport is TransportKind.AIOHTTP:
                # httpx-aiohttp reports the rejection as httpx.ConnectTimeout.
                with pytest.raises(RetryableError, match="ConnectTimeout") as caught:
                    await call(url, True)
                assert not caught.value.maybe_applied
            else:
                with pytest.raises(MisconfiguredError, match="TLS certificate rejected"):
                    await call(url, True)
            assert len(seen.requests) == 2

    scenario(body)
