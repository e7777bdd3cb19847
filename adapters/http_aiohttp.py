"""The receiver edge's engine that calls aiohttp directly, without httpx's layers on top."""

from __future__ import annotations

import json
import os
import ssl
from collections.abc import Mapping
from typing import Any

import aiohttp
import certifi
from multidict import CIMultiDictProxy
from pydantic import SecretStr
from yarl import URL


def json_bytes(body: Any) -> bytes:
    """A JSON body byte for byte as httpx encodes `json=`, so both engines send the same."""
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()


def ssl_for(verify: ssl.SSLContext | str | bool) -> ssl.SSLContext | bool:
    """httpx's `verify` as aiohttp's `ssl`, trusting what httpx trusts (certifi's bundle by
    default, not the system's; a CA bundle file or folder when given)."""
    if verify is True:
        return ssl.create_default_context(cafile=certifi.where())
    if isinstance(verify, str):
        if os.path.isdir(verify):
            return ssl.create_default_context(capath=verify)
        return ssl.create_default_context(cafile=verify)
    return verify


def lower_headers(headers: CIMultiDictProxy[str]) -> dict[str, str]:
    """Lower-cased names, repeated headers joined with ', ' as httpx does."""
    joined: dict[str, str] = {}
    for name, value in headers.items():
        key = name.lower()
        joined[key] = f"{joined[key]}, {value}" if key in joined else value
    return joined


class AiohttpEngine:
    """One lazily opened `aiohttp.ClientSession` for one receiver; errors are left untranslated."""

    def __init__(
        self,
        base_url: str,
        *,
        headers: Mapping[str, str],
        auth_header: tuple[str, SecretStr] | None,
        timeout: aiohttp.ClientTimeout,
        max_connections: int,
        keepalive_expiry: float | None,
        verify: ssl.SSLContext | str | bool,
    ) -> None:
        self._base_url = base_url.rstrip("/")
        self._headers = dict(headers)
        self._auth_header = auth_header
        self._timeout = timeout
        self._max_connections = max_connections
        self._keepalive_expiry = keepalive_expiry
        self._ssl = ssl_for(verify)
        # Made on first use: aiohttp binds a session to the running event loop.
        self._session: aiohttp.ClientSession | None = None

    def __repr__(self) -> str:
        return f"<AiohttpEngine {self._base_url}>"

    def _open(self) -> aiohttp.ClientSession:
        if self._keepalive_expiry is None:
            connector = aiohttp.TCPConnector(
                limit=self._max_connections, limit_per_host=0, ssl=self._ssl, force_close=True
            )
        else:
            connector = aiohttp.TCPConnector(
                limit=self._max_connections,
                limit_per_host=0,
                ssl=self._ssl,
                keepalive_timeout=self._keepalive_expiry,
            )
        self._session = aiohttp.ClientSession(
            connector=connector,
            headers=self._headers,
            timeout=self._timeout,
            trust_env=False,
            # Cookies would make one tenant's calls depend on the previous ones.
            cookie_jar=aiohttp.DummyCookieJar(),
            raise_for_status=False,
        )
        return self._session

    def url(self, path: str) -> URL:
        """An absolute URL as given (a pagination link), else the path under the base URL."""
        if path.startswith(("http://", "https://")):
            return URL(path, encoded=True)
        # The adapters percent-encode path segments themselves (a club ID may hold '/').
        return URL(self._base_url + path, encoded=True)

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
        session = self._session or self._open()
        extra: dict[str, str] = dict(headers) if headers else {}
        data: bytes | None = None
        if json_body is not None:
            data = json_bytes(json_body)
            extra["Content-Type"] = "application/json"
        if self._auth_header is not None:
            name, secret = self._auth_header
            extra[name] = secret.get_secret_value()
        async with session.request(
            method,
            self.url(path),
            params=dict(params) if params else None,
            data=data,
            headers=extra or None,
            allow_redirects=False,
        ) as response:
            content, truncated = await _read_bounded(response, max_bytes)
            if truncated:
                # The rest of the body is never read: the connection cannot be reused.
                response.close()
            return response.status, lower_headers(response.headers), content, truncated

    async def aclose(self) -> None:
        """Close the pool, if it was ever opened."""
        if self._session is not None:
            await self._session.close()
            self._session = None


async def _read_bounded(response: aiohttp.ClientResponse, limit: int) -> tuple[bytes, bool]:
    declared = response.content_length
    if declared is not None and declared > limit:
        return b"", True
    buffer = bytearray()
    while chunk := await response.content.readany():
        buffer += chunk
        if len(buffer) > limit:
            return bytes(buffer[:limit]), True
    return bytes(buffer), False
