"""Where httpx and aiohttp failures and receiver statuses become adapter errors, once."""

from __future__ import annotations

import contextlib
import email.utils
import json
import ssl
import time
from collections.abc import Iterator, Mapping
from typing import Any

import aiohttp
import httpx
from multidict import CIMultiDict, CIMultiDictProxy

from adapters.errors import (
    AdapterError,
    MisconfiguredError,
    PermanentError,
    ResponseShapeError,
    RetryableError,
)

# Longest receiver message kept in an exception; receivers sometimes echo whole payloads.
_MAX_MESSAGE_CHARS = 500


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a `Retry-After` header (delta-seconds or HTTP date), else None."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    current = time.time() if now is None else now
    return max(0.0, when.timestamp() - current)


def receiver_message(content: bytes) -> str:
    """The human part of an error body: a JSON message/error/detail field, else the text."""
    text = content.decode("utf-8", errors="replace").strip()
    with contextlib.suppress(ValueError):
        data = json.loads(text)
        if isinstance(data, dict):
            for key in ("message", "error", "detail", "errors", "title"):
                if key in data:
                    found = data[key]
                    text = found if isinstance(found, str) else json.dumps(found)
                    break
    return text[:_MAX_MESSAGE_CHARS]


def error_for_status(
    what: str, status: int, headers: Mapping[str, str], message: str, body: Any = None
) -> AdapterError | None:
    """The adapter error a response status means, or None for success."""
    if 200 <= status < 300:
        return None
    text = f"{what}: HTTP {status}" + (f": {message}" if message else "")
    if status in (401, 403, 407):
        return MisconfiguredError(text, status=status)
    if status in (408, 425, 429) or (status >= 500 and status != 501):
        return RetryableError(
            text,
            retry_after=parse_retry_after(headers.get("retry-after")),
            # A throttled or too-early request was turned away before it ran.
            maybe_applied=status not in (425, 429),
            throttled=status == 429,
            cause="server_error" if status >= 500 else "timeout" if status == 408 else "other",
        )
    return PermanentError(text, status=status, receiver_message=message, body=body)


def json_or_none(content: bytes) -> Any:
    try:
        return json.loads(content) if content.strip() else None
    except ValueError:
        return None


def _caused_by_certificate(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLCertVerificationError | aiohttp.ClientConnectorCertificateError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


@contextlib.contextmanager
def translate_errors(what: str) -> Iterator[None]:
    """The single place where httpx/aiohttp exceptions become adapter errors."""
    try:
        yield
    except AdapterError:
        raise
    except (
        httpx.TimeoutException,
        aiohttp.ConnectionTimeoutError,
        aiohttp.SocketTimeoutError,
    ) as exc:
        # No connection (or no pooled one) in time: the request was never sent. Otherwise it
        # went out, and the answer (or the rest of it) did not come in time.
        never_sent = (httpx.ConnectTimeout, httpx.PoolTimeout, aiohttp.ConnectionTimeoutError)
        raise RetryableError(
            f"{what}: timed out ({type(exc).__name__})",
            maybe_applied=not isinstance(exc, never_sent),
            cause="timeout",
        ) from exc
    except (httpx.UnsupportedProtocol, httpx.InvalidURL, aiohttp.InvalidURL) as exc:
        raise MisconfiguredError(f"{what}: bad receiver URL ({exc})") from exc
    except (httpx.ConnectError, aiohttp.ClientConnectorError) as exc:
        if _caused_by_certificate(exc):
            raise MisconfiguredError(f"{what}: TLS certificate rejected ({exc})") from exc
        raise RetryableError(
            f"{what}: cannot connect ({exc})", maybe_applied=False, cause="connection"
        ) from exc
    except httpx.DecodingError as exc:
        raise ResponseShapeError(f"{what}: undecodable response body ({exc})") from exc
    except httpx.TooManyRedirects as exc:
        raise PermanentError(f"{what}: too many redirects", maybe_applied=True) from exc
    except aiohttp.ClientResponseError as exc:
        _forget_request_details(exc)
        raise RetryableError(
            f"{what}: transport failed (unparsable response: {exc.status}, {exc.message})",
            cause="transport",
        ) from exc
    except (httpx.TransportError, aiohttp.ClientError, TimeoutError) as exc:
        raise RetryableError(
            f"{what}: transport failed ({type(exc).__name__}: {exc})",
            cause="timeout" if isinstance(exc, TimeoutError) else "transport",
        ) from exc


def _forget_request_details(exc: aiohttp.ClientResponseError) -> None:
    # Its request_info holds the request's headers, the credential among them, and its URL
    # with the query (a staff lookup carries an email), and shows them in its repr: keep
    # them out of the chain of causes that loggers print.
    info = exc.request_info
    exc.request_info = aiohttp.RequestInfo(
        info.url.with_query(None),
        info.method,
        CIMultiDictProxy(CIMultiDict()),
        info.real_url.with_query(None),
    )
    exc.args = (exc.request_info, exc.history)
