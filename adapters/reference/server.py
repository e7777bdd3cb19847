"""The reference receiver: an aiohttp server on loopback playing a club-management platform.

Its lifecycle, and the gate every API call passes: injected faults, auth, the call log.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
from collections import Counter
from collections.abc import Callable
from types import TracebackType
from typing import Any, Self

from aiohttp import web

from adapters.config import ReceiverConfig
from adapters.reference.admin import AdminHandlers, CallLog, is_admin_route
from adapters.reference.api import ApiHandlers, Handler, error_response
from adapters.reference.config import MODE_ABSENT_ROUTES, ROUTES, ReceiverMode, ReferenceConfig
from adapters.reference.contacts import ContactsApiHandlers
from adapters.reference.faults import FaultPlan
from adapters.reference.store import ReceiverStore, Rejection

#: Header a caller sets to make a creating POST safe to repeat (as payment APIs do).
IDEMPOTENCY_HEADER = "Idempotency-Key"


class ReferenceReceiver:
    """A running reference receiver; `async with ReferenceReceiver() as rr: rr.url`."""

    def __init__(self, config: ReferenceConfig | None = None) -> None:
        self.config = config or ReferenceConfig()
        self.mode = self.config.mode
        self.store = ReceiverStore(
            self.config.clients, staff_owner_allowed=self.mode is not ReceiverMode.NO_STAFF
        )
        self.faults = FaultPlan(self.config.faults, self.config.route_faults, seed=self.config.seed)
        self.calls = CallLog.empty()
        #: API requests not done yet: a late apply counts until it has landed; a request
        #: applied and then held (apply-then-time-out) no longer does.
        self.in_flight = 0
        #: The same, per caller (User-Agent): which worker has a call under way.
        self.in_flight_by_agent: Counter[str] = Counter()
        #: Changes to one record sent while another change to it was still being answered to
        #: a connected caller ("METHOD subject"): one caller never does that, so each is a
        #: command run by two callers at once.
        self.overlaps: list[str] = []
        self._changing: dict[str, list[web.Request]] = {}
        # (route, path, Idempotency-Key) -> the first answer's status and body.
        self._idempotent: dict[tuple[str, str, str], tuple[int, bytes]] = {}
        self._closing = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._port: int | None = None

    # Lifecycle -------------------------------------------------------------------------------

    async def start(self) -> None:
        """Bind and serve; with port 0 the OS picks a free port."""
        self._closing = asyncio.Event()
        runner = web.AppRunner(self._build_app(), access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, self.config.host, self.config.port)
        await site.start()
        self._runner = runner
        self._port = int(runner.addresses[0][1])

    async def stop(self) -> None:
        """Release hanging requests, then shut down."""
        self._closing.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    @property
    def host_port(self) -> str:
        """'127.0.0.1:PORT' once started."""
        if self._port is None:
            raise RuntimeError("the reference receiver is not started")
        return f"{self.config.host}:{self._port}"

    @property
    def url(self) -> str:
        """Root URL, where `/_admin/...` lives."""
        return f"http://{self.host_port}"

    @property
    def api_url(self) -> str:
        """Base URL of the receiver API (root plus base path)."""
        return self.url + self.config.base_path

    def receiver_config(self, client_id: str | None = None, **overrides: Any) -> ReceiverConfig:
        """A `ReceiverConfig` pointing an adapter at this receiver with the right credentials."""
        fields: dict[str, Any] = {
            "scheme": "http",
            "host": self.host_port,
            "base_path": self.config.base_path,
            "receiver_client_id": client_id or next(iter(self.config.clients)),
            "auth": self.config.auth.as_client_auth(),
        }
        fields.update(overrides)
        return ReceiverConfig(**fields)

    # Python-side admin (same effects as the admin endpoints) ---------------------------------

    def reset(self) -> None:
        """Forget people, staff, lead sources, calls and faults."""
        self.store.reset()
        self.calls = CallLog.empty()
        self._idempotent.clear()
        self.overlaps.clear()
        self.faults.clear()

    def state(self) -> dict[str, Any]:
        """What `GET /_admin/state` answers."""
        return {
            "mode": self.mode.value,
            "routes": [r for r in ROUTES if r not in MODE_ABSENT_ROUTES[self.mode]],
            "clients": self.store.as_json(),
        }

    # HTTP ------------------------------------------------------------------------------------

    def _build_app(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware])
        if self.mode is ReceiverMode.CONTACTS:
            ContactsApiHandlers(self.store).add_routes(app, self.config.base_path)
        else:
            api = ApiHandlers(self.store)
            api.add_routes(app, self.config.base_path, MODE_ABSENT_ROUTES[self.mode])
        AdminHandlers(self).add_routes(app)
        return app

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        route = request.match_info.route.name
        if is_admin_route(route):
            return await handler(request)
        name = route or "unmatched"
        response = await self._api_call(request, handler)
        self.calls.record(name, response.status)
        return response

    async def _api_call(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        subject = await self._subject(request)
        if subject is None:
            return await self._counted_call(request, handler)
        others = [
            r
            for r in self._changing.get(subject, [])
            if r.transport is not None and not r.transport.is_closing()
        ]
        if others:
            self.overlaps.append(f"{request.method} {subject}")
        self._changing[subject] = [*others, request]
        try:
            return await self._counted_call(request, handler)
        finally:
            left = [r for r in self._changing.get(subject, []) if r is not request]
            if left:
                self._changing[subject] = left
            else:
                self._changing.pop(subject, None)

    @staticmethod
    async def _subject(request: web.Request) -> str | None:
        """The record a changing call is about: the external ID it carries; else, for a create
        (a POST to a collection), the record its body describes; else its path."""
        if request.method not in ("POST", "PUT", "PATCH", "DELETE"):
            return None
        with contextlib.suppress(ValueError, UnicodeDecodeError):
            body = await request.json() if request.can_read_body else None
            if isinstance(body, dict):
                for key in ("externalId", "ref"):  # "ref": the contacts API's name for it
                    if body.get(key):
                        return f"externalId={body[key]}"
                if request.method == "POST":
                    # Creates of two different people in one club are no overlap; two
                    # creates of the same one are.
                    digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode())
                    return f"{request.path} body={digest.hexdigest()[:12]}"
        return request.path

    async def _counted_call(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        agent = request.headers.get("User-Agent", "")
        self.in_flight += 1
        self.in_flight_by_agent[agent] += 1
        done = False

        def settled() -> None:
            nonlocal done
            if not done:
                done = True
                self.in_flight -= 1
                self.in_flight_by_agent[agent] -= 1

        try:
            return await self._faulty_call(request, handler, settled)
        finally:
            settled()

    async def _faulty_call(
        self, request: web.Request, handler: Handler, settled: Callable[[], None]
    ) -> web.StreamResponse:
        route = request.match_info.route.name or "unmatched"
        decision = self.faults.decide(route)
        if decision.action == "outage":
            return error_response(503, "down for maintenance", headers={"Retry-After": "1"})
        if not self._authorized(request):
            return error_response(
                401, "unauthorized", headers={"WWW-Authenticate": self._challenge()}
            )
        if decision.delay_s:
            await self._pause(decision.delay_s)
        if decision.action == "hang":
            await self._pause(decision.hang_s)
            return error_response(504, "gave up")
        if decision.action == "throttle":
            retry_after = f"{decision.retry_after_s:g}"
            return error_response(429, "slow down", headers={"Retry-After": retry_after})
        if decision.action == "error":
            return error_response(decision.status, "injected failure")
        if route == "unmatched":
            try:
                return await handler(request)
            except web.HTTPException as missing:
                # A call this mode lacks: aiohttp's own 404/405, answered as JSON like the rest.
                return error_response(missing.status, missing.reason)
        if decision.action == "late_apply":
            # The caller gives up first; the change still lands afterwards (the body is read
            # now, while the connection is open, as a real server would have it buffered).
            await request.read()
            await self._pause(decision.hang_s)
            return await self._apply(request, route, handler)
        response = await self._apply(request, route, handler)
        if decision.action == "apply_then_hang":
            # Done, but the answer never reaches a caller with a shorter timeout.
            settled()
            await self._pause(decision.hang_s)
        if decision.action == "apply_then_trickle":
            settled()
            return await self._trickle(request, response, decision.hang_s)
        return response

    #: Seconds between two bytes of a trickled answer: well within any read timeout.
    TRICKLE_EVERY_S = 0.2

    async def _trickle(
        self, request: web.Request, response: web.StreamResponse, seconds: float
    ) -> web.StreamResponse:
        """Send `response`'s status and headers at once, then a space every TRICKLE_EVERY_S
        for `seconds` (JSON allows leading whitespace), then its body: done, and answering,
        but slower than any caller should wait."""
        body = response.body if isinstance(response, web.Response) else None
        streamed = web.StreamResponse(status=response.status, reason=response.reason)
        streamed.content_type = response.content_type or "application/json"
        await streamed.prepare(request)
        deadline = asyncio.get_running_loop().time() + seconds
        try:
            while asyncio.get_running_loop().time() < deadline and not self._closing.is_set():
                await streamed.write(b" ")
                await self._pause(self.TRICKLE_EVERY_S)
            if isinstance(body, bytes):
                await streamed.write(body)
            await streamed.write_eof()
        except ConnectionError:  # the caller gave up (aiohttp's reset error is one)
            pass
        return streamed

    async def _apply(
        self, request: web.Request, route: str, handler: Handler
    ) -> web.StreamResponse:
        """Run the handler once per idempotency key: a repeat gets the first answer back."""
        key = request.headers.get(IDEMPOTENCY_HEADER) if request.method == "POST" else None
        if key is not None:
            remembered = self._idempotent.get((route, request.path, key))
            if remembered is not None:
                status, body = remembered
                return web.Response(status=status, body=body, content_type="application/json")
        try:
            response = await handler(request)
        except Rejection as rejection:
            return error_response(rejection.status, rejection.message, details=rejection.details)
        if key is not None and isinstance(response, web.Response) and response.status < 300:
            body = response.body if isinstance(response.body, bytes) else b""
            self._idempotent[(route, request.path, key)] = (response.status, body)
        return response

    async def _pause(self, seconds: float) -> None:
        # Waiting on the closing event lets shutdown release hanging requests at once.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._closing.wait(), seconds)

    def _challenge(self) -> str:
        return {"basic": 'Basic realm="reference"', "bearer": "Bearer"}.get(
            self.config.auth.kind, "ApiKey"
        )

    def _authorized(self, request: web.Request) -> bool:
        auth = self.config.auth
        secret = auth.secret.get_secret_value()
        if auth.kind == "none":
            return True
        if auth.kind == "api_key":
            return hmac.compare_digest(request.headers.get(auth.header, ""), secret)
        given = request.headers.get("Authorization", "")
        if auth.kind == "bearer":
            expected = f"Bearer {secret}"
        else:
            token = base64.b64encode(f"{auth.username}:{secret}".encode()).decode("ascii")
            expected = f"Basic {token}"
        return hmac.compare_digest(given.encode(), expected.encode())
