"""The one HTTP edge of the adapters: a pooled client (httpx or aiohttp), auth, timeouts, limits."""

from __future__ import annotations

import asyncio
import base64
import enum
import json
import logging
import os
import ssl
import time
from collections.abc import Generator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport
from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from adapters.errors import ResponseShapeError, ResponseTooLarge, RetryableError
from adapters.http_aiohttp import AiohttpEngine
from adapters.http_errors import (
    error_for_status,
    json_or_none,
    receiver_message,
    translate_errors,
)

log = logging.getLogger(__name__)

DEFAULT_CONNECT_TIMEOUT = 5.0
DEFAULT_READ_TIMEOUT = 15.0
DEFAULT_WRITE_TIMEOUT = 15.0
DEFAULT_POOL_TIMEOUT = 5.0
DEFAULT_TOTAL_TIMEOUT = 60.0
DEFAULT_MAX_CONNECTIONS = 100
DEFAULT_MAX_KEEPALIVE_CONNECTIONS = 100
DEFAULT_KEEPALIVE_EXPIRY = 30.0
DEFAULT_MAX_RESPONSE_BYTES = 1024 * 1024
DEFAULT_API_KEY_HEADER = "X-Api-Key"
USER_AGENT = "intouch-connector/0.1"


class TransportKind(enum.StrEnum):
    """Which HTTP/1.1 engine carries a receiver's requests."""

    #: httpx over its own pool (httpcore).
    HTTPX = "httpx"
    #: httpx over the httpx-aiohttp transport.
    AIOHTTP = "aiohttp"
    #: aiohttp's own client session, no httpx in the call.
    AIOHTTP_DIRECT = "aiohttp-direct"


# Chosen by `python -m bench.transport` (3000 create-prospect calls, 64 in flight, interleaved
# rounds, receiver in its own process, 2 vCPUs). First: httpx-aiohttp median 1177 req/s, httpx's
# own pool 93 req/s (12.7x): httpx's pool collapses under concurrency (encode/httpx #3215).
# Then aiohttp called directly behind the same edge against httpx-aiohttp (5 rounds, load
# average 7-8): client CPU 0.553 ms/request (0.536-0.577) vs 1.268 (1.070-1.373), 2.3x less;
# 481 req/s median vs 328 (the receiver, on the same 2 cores, bounds req/s). End to end
# (`bench.peer --quick --baseline` of the httpx-aiohttp worker, 3 runs, load average 4.5-10):
# worker CPU 3.34 / 4.22 / 5.64 ms/event vs 5.11 / 5.30 / 7.74 at 0 ms, 3.71 / 4.70 / 5.27
# vs 4.03 / 6.54 / 6.19 at 20 ms; the receiver call 6.9-10.3 % of samples vs 16.6-17.5 %.
DEFAULT_TRANSPORT = TransportKind.AIOHTTP_DIRECT


class Timeouts(BaseModel):
    """Per-request time limits in seconds, like `httpx.Timeout` but every part explicit.

    `read` bounds each wait for response bytes; `total` bounds the whole request, from asking
    for a connection to the last byte of the answer. Without it a receiver that answers a
    byte at a time, each within `read`, would hold a call (and a create's pending marker,
    which the next owner reconciles once `read` and a grace have passed) for as long as it
    likes.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    connect: float = Field(default=DEFAULT_CONNECT_TIMEOUT, gt=0)
    read: float = Field(default=DEFAULT_READ_TIMEOUT, gt=0)
    write: float = Field(default=DEFAULT_WRITE_TIMEOUT, gt=0)
    pool: float = Field(default=DEFAULT_POOL_TIMEOUT, gt=0)
    total: float = Field(default=DEFAULT_TOTAL_TIMEOUT, gt=0)

    def as_httpx(self) -> httpx.Timeout:
        """The same limits as an `httpx.Timeout`."""
        return httpx.Timeout(connect=self.connect, read=self.read, write=self.write, pool=self.pool)

    def as_aiohttp(self) -> aiohttp.ClientTimeout:
        """The closest `aiohttp.ClientTimeout`.

        aiohttp's `connect` covers the wait for a pool slot and the connection together, so it
        is pool + connect (`sock_connect` bounds the connection alone); both raise
        ConnectionTimeoutError, before anything was sent, as httpx's pool and connect timeouts.
        `sock_read` bounds every wait for response bytes, from the end of the request body, as
        httpx's read timeout. aiohttp has no write timeout: its read timer starts once the body
        is written. Our bodies are a few KB, which the socket buffer takes at once. `total` is
        not aiohttp's: `ReceiverHttp.request` bounds both engines the same way.
        """
        return aiohttp.ClientTimeout(
            total=None,
            connect=self.pool + self.connect,
            sock_connect=self.connect,
            sock_read=self.read,
        )


class Limits(BaseModel):
    """Connection pool size and the largest response body we agree to read."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_connections: int = Field(default=DEFAULT_MAX_CONNECTIONS, gt=0)
    max_keepalive_connections: int = Field(default=DEFAULT_MAX_KEEPALIVE_CONNECTIONS, ge=0)
    keepalive_expiry: float = Field(default=DEFAULT_KEEPALIVE_EXPIRY, gt=0)
    max_response_bytes: int = Field(default=DEFAULT_MAX_RESPONSE_BYTES, gt=0)

    def as_httpx(self) -> httpx.Limits:
        """The pool part as `httpx.Limits`."""
        return httpx.Limits(
            max_connections=self.max_connections,
            max_keepalive_connections=self.max_keepalive_connections,
            keepalive_expiry=self.keepalive_expiry,
        )


DEFAULT_TIMEOUTS = Timeouts()
DEFAULT_LIMITS = Limits()

AuthKind = Literal["none", "basic", "bearer", "api_key"]


class AuthConfig(BaseModel):
    """How to authenticate to a receiver; the secret is already resolved and stays masked."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: AuthKind = "none"
    username: str | None = None
    secret: SecretStr | None = None
    header: str = DEFAULT_API_KEY_HEADER

    @model_validator(mode="after")
    def _complete(self) -> AuthConfig:
        if self.kind == "basic" and (self.username is None or self.secret is None):
            raise ValueError("basic auth needs a username and a secret")
        if self.kind in ("bearer", "api_key") and self.secret is None:
            raise ValueError(f"{self.kind} auth needs a secret")
        return self


class _SecretHeaderAuth(httpx.Auth):
    """Adds one secret header per request, so the secret never sits in the client's headers."""

    def __init__(self, header: str, value: SecretStr) -> None:
        self._header = header
        self._value = value

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers[self._header] = self._value.get_secret_value()
        yield request

    def __repr__(self) -> str:
        return f"<SecretHeaderAuth {self._header}: **********>"


def auth_header(config: AuthConfig) -> tuple[str, SecretStr] | None:
    """The one factory for auth variants: the basic, bearer or API-key header, still masked."""
    if config.kind == "none" or config.secret is None:
        return None
    secret = config.secret.get_secret_value()
    if config.kind == "basic":
        token = base64.b64encode(f"{config.username}:{secret}".encode()).decode("ascii")
        return "Authorization", SecretStr(f"Basic {token}")
    if config.kind == "bearer":
        return "Authorization", SecretStr(f"Bearer {secret}")
    return config.header, config.secret


def auth_for(config: AuthConfig) -> httpx.Auth | None:
    """The auth header as an `httpx.Auth`, for the httpx engines."""
    header = auth_header(config)
    return None if header is None else _SecretHeaderAuth(*header)


def _transport_for(
    kind: TransportKind, limits: Limits, verify: ssl.SSLContext | str | bool
) -> httpx.AsyncBaseTransport:
    if kind is not TransportKind.HTTPX:
        aiohttp_transport: httpx.AsyncBaseTransport = AiohttpTransport(
            verify=verify, limits=limits.as_httpx(), trust_env=False
        )
        return aiohttp_transport
    return httpx.AsyncHTTPTransport(verify=verify, limits=limits.as_httpx(), trust_env=False)


@dataclass(frozen=True, slots=True)
class ReceiverResponse:
    """A successful response, its body already read within the byte limit."""

    status: int
    content: bytes
    #: Lower-cased header names; pagination reads `link` from here.
    headers: Mapping[str, str] = field(default_factory=dict)

    def json(self, what: str) -> Any:
        """The body as JSON; an empty body is None, anything unparsable a ResponseShapeError."""
        if not self.content.strip():
            return None
        try:
            return json.loads(self.content)
        except ValueError as exc:
            raise ResponseShapeError(f"{what}: response is not JSON", status=self.status) from exc


class ReceiverHttp:
    """A pooled async HTTP client bound to one receiver's base URL and credentials."""

    def __init__(
        self,
        base_url: str,
        *,
        auth: AuthConfig | None = None,
        timeouts: Timeouts = DEFAULT_TIMEOUTS,
        limits: Limits = DEFAULT_LIMITS,
        transport: TransportKind = DEFAULT_TRANSPORT,
        verify: ssl.SSLContext | str | bool = True,
        custom_transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = base_url
        self._limits = limits
        self._total = timeouts.total
        self._secrets = _secret_values(auth)
        # The process ID tells a receiver's logs which worker called.
        headers = {"User-Agent": f"{USER_AGENT} (pid {os.getpid()})", "Accept": "application/json"}
        self._engine: _HttpxEngine | AiohttpEngine
        if transport is TransportKind.AIOHTTP_DIRECT and custom_transport is None:
            self._engine = AiohttpEngine(
                base_url,
                headers=headers,
                auth_header=auth_header(auth) if auth else None,
                timeout=timeouts.as_aiohttp(),
                max_connections=limits.max_connections,
                # aiohttp has no cap on idle connections apart from the pool's: 0 idle
                # connections is closing each after its call, any other cap is the pool size.
                keepalive_expiry=limits.keepalive_expiry
                if limits.max_keepalive_connections
                else None,
                verify=verify,
            )
        else:
            self._engine = _HttpxEngine(
                httpx.AsyncClient(
                    base_url=base_url,
                    auth=auth_for(auth) if auth else None,
                    timeout=timeouts.as_httpx(),
                    transport=custom_transport or _transport_for(transport, limits, verify),
                    headers=headers,
                    follow_redirects=False,
                    trust_env=False,
                )
            )

    def __repr__(self) -> str:
        return f"<ReceiverHttp {self.base_url}>"

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        json_body: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> ReceiverResponse:
        """Send one request; return the bounded body of a 2xx or raise an adapter error."""
        what = f"{method} {path}"
        started = time.perf_counter()
        limit = self._limits.max_response_bytes
        try:
            async with asyncio.timeout(self._total):
                with translate_errors(what):
                    status, answer_headers, content, truncated = await self._engine.send(
                        method,
                        path,
                        params=params,
                        json_body=json_body,
                        headers=headers,
                        max_bytes=limit,
                    )
        except TimeoutError as exc:  # the total's own: the engines' are adapter errors by now
            raise RetryableError(
                f"{what}: timed out (no complete answer within {self._total:g}s)",
                cause="timeout",
            ) from exc
        if log.isEnabledFor(logging.DEBUG):
            elapsed_ms = (time.perf_counter() - started) * 1000
            log.debug("%s -> %s in %.1f ms", what, status, elapsed_ms)
        success = 200 <= status < 300
        if not success:
            error = error_for_status(
                what,
                status,
                answer_headers,
                self._redact(receiver_message(content)),
                body=json_or_none(content),
            )
            if error is not None:
                raise error
        if truncated:
            raise ResponseTooLarge(f"{what}: response exceeds {limit} bytes", status=status)
        return ReceiverResponse(status, content, answer_headers)

    def _redact(self, text: str) -> str:
        # Receivers have been known to echo the credential they rejected.
        for secret in self._secrets:
            text = text.replace(secret, "**********")
        return text

    async def aclose(self) -> None:
        """Close the pool."""
        await self._engine.aclose()


class _HttpxEngine:
    """httpx's client, over its own pool or the httpx-aiohttp transport."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self._client = client

    async def send(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None,
        json_body: Any,
        headers: Mapping[str, str] | None,
        max_bytes: int,
    ) -> tuple[int, dict[str, str], bytes, bool]:
        """Status, lower-cased headers, the body up to `max_bytes`, and whether it was cut."""
        async with self._client.stream(
            method, path, params=params, json=json_body, headers=headers
        ) as response:
            content, truncated = await _read_bounded(response, max_bytes)
            answer = {k.lower(): v for k, v in response.headers.items()}
            return response.status_code, answer, content, truncated

    async def aclose(self) -> None:
        await self._client.aclose()


async def _read_bounded(response: httpx.Response, limit: int) -> tuple[bytes, bool]:
    declared = response.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        return b"", True
    buffer = bytearray()
    async for chunk in response.aiter_bytes():
        buffer += chunk
        if len(buffer) > limit:
            return bytes(buffer[:limit]), True
    return bytes(buffer), False


def _secret_values(auth: AuthConfig | None) -> tuple[str, ...]:
    if auth is None or auth.secret is None:
        return ()
    secret = auth.secret.get_secret_value()
    return (secret,) if secret else ()
