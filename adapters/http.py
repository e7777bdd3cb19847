"""The one HTTP edge of the adapters: pooled httpx client, auth, timeouts and limits."""

from __future__ import annotations

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

import httpx
from httpx_aiohttp import AiohttpTransport
from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from adapters.errors import ResponseShapeError, ResponseTooLarge
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
DEFAULT_MAX_CONNECTIONS = 100
DEFAULT_MAX_KEEPALIVE_CONNECTIONS = 100
DEFAULT_KEEPALIVE_EXPIRY = 30.0
DEFAULT_MAX_RESPONSE_BYTES = 1024 * 1024
DEFAULT_API_KEY_HEADER = "X-Api-Key"
USER_AGENT = "intouch-connector/0.1"


class TransportKind(enum.StrEnum):
    """Which HTTP/1.1 engine carries httpx requests."""

    HTTPX = "httpx"
    AIOHTTP = "aiohttp"


# Chosen by `python -m bench.transport` (3000 create-prospect calls, 64 in flight, 5 interleaved
# rounds, receiver in its own process, 2 vCPUs): httpx-aiohttp median 1177 req/s, httpx's own
# pool 93 req/s (12.7x). httpx is fine one request at a time (~500 req/s) but collapses under
# concurrency, the pool contention of encode/httpx #3215.
DEFAULT_TRANSPORT = TransportKind.AIOHTTP


class Timeouts(BaseModel):
    """Per-request time limits in seconds, like `httpx.Timeout` but every part explicit."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    connect: float = Field(default=DEFAULT_CONNECT_TIMEOUT, gt=0)
    read: float = Field(default=DEFAULT_READ_TIMEOUT, gt=0)
    write: float = Field(default=DEFAULT_WRITE_TIMEOUT, gt=0)
    pool: float = Field(default=DEFAULT_POOL_TIMEOUT, gt=0)

    def as_httpx(self) -> httpx.Timeout:
        """The same limits as an `httpx.Timeout`."""
        return httpx.Timeout(connect=self.connect, read=self.read, write=self.write, pool=self.pool)


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


def auth_for(config: AuthConfig) -> httpx.Auth | None:
    """The one factory for auth variants: basic, bearer or API-key header."""
    if config.kind == "none" or config.secret is None:
        return None
    secret = config.secret.get_secret_value()
    if config.kind == "basic":
        token = base64.b64encode(f"{config.username}:{secret}".encode()).decode("ascii")
        return _SecretHeaderAuth("Authorization", SecretStr(f"Basic {token}"))
    if config.kind == "bearer":
        return _SecretHeaderAuth("Authorization", SecretStr(f"Bearer {secret}"))
    return _SecretHeaderAuth(config.header, config.secret)


def _transport_for(
    kind: TransportKind, limits: Limits, verify: ssl.SSLContext | str | bool
) -> httpx.AsyncBaseTransport:
    if kind is TransportKind.AIOHTTP:
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
        self._secrets = _secret_values(auth)
        self._client = httpx.AsyncClient(
            base_url=base_url,
            auth=auth_for(auth) if auth else None,
            timeout=timeouts.as_httpx(),
            transport=custom_transport or _transport_for(transport, limits, verify),
            # The process ID tells a receiver's logs which worker called.
            headers={
                "User-Agent": f"{USER_AGENT} (pid {os.getpid()})",
                "Accept": "application/json",
            },
            follow_redirects=False,
            trust_env=False,
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
        with translate_errors(what):
            async with self._client.stream(
                method, path, params=params, json=json_body, headers=headers
            ) as response:
                content, truncated = await self._read_bounded(response)
                elapsed_ms = (time.perf_counter() - started) * 1000
                log.debug("%s -> %s in %.1f ms", what, response.status_code, elapsed_ms)
                error = error_for_status(
                    what,
                    response.status_code,
                    response.headers,
                    self._redact(receiver_message(content)),
                    body=None if response.is_success else json_or_none(content),
                )
                if error is not None:
                    raise error
                if truncated:
                    raise ResponseTooLarge(
                        f"{what}: response exceeds {self._limits.max_response_bytes} bytes",
                        status=response.status_code,
                    )
                headers = {k.lower(): v for k, v in response.headers.items()}
                return ReceiverResponse(response.status_code, content, headers)

    async def _read_bounded(self, response: httpx.Response) -> tuple[bytes, bool]:
        limit = self._limits.max_response_bytes
        declared = response.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            return b"", True
        buffer = bytearray()
        async for chunk in response.aiter_bytes():
            buffer += chunk
            if len(buffer) > limit:
                return bytes(buffer[:limit]), True
        return bytes(buffer), False

    def _redact(self, text: str) -> str:
        # Receivers have been known to echo the credential they rejected.
        for secret in self._secrets:
            text = text.replace(secret, "**********")
        return text

    async def aclose(self) -> None:
        """Close the pool."""
        await self._client.aclose()


def _secret_values(auth: AuthConfig | None) -> tuple[str, ...]:
    if auth is None or auth.secret is None:
        return ()
    secret = auth.secret.get_secret_value()
    return (secret,) if secret else ()
