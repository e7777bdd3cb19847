"""The reference receiver: an aiohttp server on loopback playing a club-management platform."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import enum
import hmac
import json
import threading
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal, Self

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from adapters.config import ReceiverConfig
from adapters.http import AuthConfig
from adapters.reference.faults import NO_FAULTS, FaultPlan, FaultSpec
from adapters.reference.store import ReceiverStore, Rejection

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

DEFAULT_BASE_PATH = "/api/v1"
DEFAULT_CLIENTS: dict[str, list[str]] = {"C100": ["CL1", "CL2"], "C200": ["CL9"]}
_ADMIN = "_admin"


class ReceiverMode(enum.StrEnum):
    """Which calls the receiver offers; each mode matches one profile in adapters/profiles."""

    FULL = "full"
    SAVE_ONLY = "save-only"
    LEAD_SOURCES_LIST_ONLY = "lead-sources-list-only"
    LEAD_SOURCES_CREATE_ONLY = "lead-sources-create-only"
    NO_STAFF = "no-staff"
    STAFF_BY_EMAIL_ONLY = "staff-by-email-only"
    NO_LEAD_SOURCE_UPDATE = "no-lead-source-update"

    @property
    def profile_name(self) -> str:
        """The adapter profile written for this mode."""
        return "reference" if self is ReceiverMode.FULL else f"reference-{self.value}"


ROUTES = (
    "save_prospect",
    "create_prospect",
    "update_prospect",
    "save_member",
    "create_member",
    "update_member",
    "convert_prospect",
    "list_staff",
    "staff_by_email",
    "list_lead_sources",
    "create_lead_source",
    "update_lead_source",
    "find_person",
)

MODE_ABSENT_ROUTES: dict[ReceiverMode, frozenset[str]] = {
    ReceiverMode.FULL: frozenset(),
    ReceiverMode.SAVE_ONLY: frozenset(
        {"create_prospect", "update_prospect", "create_member", "update_member"}
    ),
    ReceiverMode.LEAD_SOURCES_LIST_ONLY: frozenset({"create_lead_source", "update_lead_source"}),
    ReceiverMode.LEAD_SOURCES_CREATE_ONLY: frozenset({"list_lead_sources", "update_lead_source"}),
    ReceiverMode.NO_STAFF: frozenset({"list_staff", "staff_by_email"}),
    ReceiverMode.STAFF_BY_EMAIL_ONLY: frozenset({"list_staff"}),
    ReceiverMode.NO_LEAD_SOURCE_UPDATE: frozenset({"update_lead_source"}),
}


class ReferenceAuth(BaseModel):
    """What the receiver demands of callers; `none` lets everyone in."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["none", "basic", "bearer", "api_key"] = "none"
    username: str = "connector"
    secret: SecretStr = SecretStr("")
    header: str = "X-Api-Key"

    def as_client_auth(self) -> AuthConfig:
        """The matching credentials for an adapter."""
        if self.kind == "none":
            return AuthConfig()
        return AuthConfig(
            kind=self.kind, username=self.username, secret=self.secret, header=self.header
        )


class ReferenceConfig(BaseModel):
    """How to start a reference receiver."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(default=0, ge=0, le=65535, description="0 picks a free port.")
    base_path: str = DEFAULT_BASE_PATH
    mode: ReceiverMode = ReceiverMode.FULL
    auth: ReferenceAuth = Field(default_factory=ReferenceAuth)
    clients: dict[str, list[str]] = Field(default_factory=lambda: dict(DEFAULT_CLIENTS))
    faults: FaultSpec = NO_FAULTS
    route_faults: dict[str, FaultSpec] = Field(default_factory=dict)
    seed: int | None = Field(default=None, description="Random seed of fault draws.")


@dataclass
class CallLog:
    """Requests seen per route and the statuses given, for `GET /_admin/calls`."""

    counts: Counter[str]
    statuses: defaultdict[str, Counter[str]]

    @classmethod
    def empty(cls) -> CallLog:
        """A log with nothing in it."""
        return cls(Counter(), defaultdict(Counter))

    def record(self, route: str, status: int) -> None:
        """Count one answered request."""
        self.counts[route] += 1
        self.statuses[route][str(status)] += 1

    def as_json(self) -> dict[str, Any]:
        """The log as JSON."""
        return {
            "total": sum(self.counts.values()),
            "by_route": dict(self.counts),
            "by_status": {route: dict(c) for route, c in self.statuses.items()},
        }


def _error(status: int, message: str, **headers: str) -> web.Response:
    return web.json_response({"error": message}, status=status, headers=headers)


async def _json_body(request: web.Request) -> Any:
    try:
        return await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise Rejection(400, "body is not valid JSON") from None


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
        base = self.config.base_path
        club = base + "/clients/{client_id}/clubs/{club_id}"
        client = base + "/clients/{client_id}"
        table: list[tuple[str, str, str, Handler]] = [
            ("save_prospect", "POST", club + "/prospects/save", self._save_prospect),
            ("create_prospect", "POST", club + "/prospects", self._create_prospect),
            ("update_prospect", "PUT", club + "/prospects/{person_id}", self._update_prospect),
            ("save_member", "POST", club + "/members/save", self._save_member),
            ("create_member", "POST", club + "/members", self._create_member),
            ("update_member", "PUT", club + "/members/{person_id}", self._update_member),
            ("convert_prospect", "POST", club + "/prospects/{person_id}/convert", self._convert),
            ("list_staff", "GET", client + "/staff", self._list_staff),
            ("staff_by_email", "GET", client + "/staff/search", self._staff_by_email),
            ("list_lead_sources", "GET", client + "/lead-sources", self._list_lead_sources),
            ("create_lead_source", "POST", client + "/lead-sources", self._create_lead_source),
            (
                "update_lead_source",
                "PUT",
                client + "/lead-sources/{source_id}",
                self._update_lead_source,
            ),
            ("find_person", "GET", client + "/people", self._find_person),
        ]
        absent = MODE_ABSENT_ROUTES[self.mode]
        for name, method, path, handler in table:
            if name not in absent:
                app.router.add_route(method, path, handler, name=name)
        admin: list[tuple[str, str, Handler]] = [
            ("GET", "/_admin/state", self._admin_state),
            ("GET", "/_admin/calls", self._admin_calls),
            ("POST", "/_admin/reset", self._admin_reset),
            ("POST", "/_admin/staff", self._admin_staff),
            ("POST", "/_admin/clubs", self._admin_clubs),
            ("GET", "/_admin/faults", self._admin_faults),
            ("PUT", "/_admin/faults", self._admin_set_faults),
            ("POST", "/_admin/outage", self._admin_outage),
        ]
        for method, path, handler in admin:
            app.router.add_route(method, path, handler, name=f"{_ADMIN}{path.replace('/', '.')}")
        return app

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        route = request.match_info.route.name
        if route is not None and route.startswith(_ADMIN):
            return await handler(request)
        name = route or "unmatched"
        response = await self._api_call(request, handler)
        self.calls.record(name, response.status)
        return response

    async def _api_call(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        route = request.match_info.route.name or "unmatched"
        decision = self.faults.decide(route)
        if decision.action == "outage":
            return _error(503, "down for maintenance", **{"Retry-After": "1"})
        if not self._authorized(request):
            return _error(401, "unauthorized", **{"WWW-Authenticate": self._challenge()})
        if decision.delay_s:
            await self._pause(decision.delay_s)
        if decision.action == "hang":
            await self._pause(decision.hang_s)
            return _error(504, "gave up")
        if decision.action == "throttle":
            retry_after = f"{decision.retry_after_s:g}"
            return _error(429, "slow down", **{"Retry-After": retry_after})
        if decision.action == "error":
            return _error(decision.status, "injected failure")
        if route == "unmatched":
            try:
                return await handler(request)
            except web.HTTPException as missing:
                # A call this mode lacks: aiohttp's own 404/405, answered as JSON like the rest.
                return _error(missing.status, missing.reason)
        try:
            return await handler(request)
        except Rejection as rejection:
            return _error(rejection.status, rejection.message)

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

    # API handlers ----------------------------------------------------------------------------

    async def _create(self, request: web.Request, kind: Literal["prospect", "member"]) -> Any:
        m = request.match_info
        body = await _json_body(request)
        record = self.store.create_person(m["client_id"], m["club_id"], kind, body)
        return web.json_response({kind: record}, status=201)

    async def _update(self, request: web.Request, kind: Literal["prospect", "member"]) -> Any:
        m = request.match_info
        body = await _json_body(request)
        record = self.store.update_person(m["client_id"], m["club_id"], kind, m["person_id"], body)
        return web.json_response({kind: record})

    async def _save(self, request: web.Request, kind: Literal["prospect", "member"]) -> Any:
        m = request.match_info
        body = await _json_body(request)
        record, created = self.store.save_person(m["client_id"], m["club_id"], kind, body)
        return web.json_response({kind: record}, status=201 if created else 200)

    async def _create_prospect(self, request: web.Request) -> web.StreamResponse:
        return await self._create(request, "prospect")  # type: ignore[no-any-return]

    async def _update_prospect(self, request: web.Request) -> web.StreamResponse:
        return await self._update(request, "prospect")  # type: ignore[no-any-return]

    async def _save_prospect(self, request: web.Request) -> web.StreamResponse:
        return await self._save(request, "prospect")  # type: ignore[no-any-return]

    async def _create_member(self, request: web.Request) -> web.StreamResponse:
        return await self._create(request, "member")  # type: ignore[no-any-return]

    async def _update_member(self, request: web.Request) -> web.StreamResponse:
        return await self._update(request, "member")  # type: ignore[no-any-return]

    async def _save_member(self, request: web.Request) -> web.StreamResponse:
        return await self._save(request, "member")  # type: ignore[no-any-return]

    async def _convert(self, request: web.Request) -> web.StreamResponse:
        m = request.match_info
        body = await _json_body(request)
        record = self.store.convert(m["client_id"], m["club_id"], m["person_id"], body)
        return web.json_response({"member": record})

    async def _list_staff(self, request: web.Request) -> web.StreamResponse:
        club_id = request.query.get("clubId")
        staff = self.store.list_staff(request.match_info["client_id"], club_id)
        return web.json_response({"staff": staff})

    async def _staff_by_email(self, request: web.Request) -> web.StreamResponse:
        email = request.query.get("email")
        if not email:
            raise Rejection(400, "email is required")
        found = self.store.staff_by_email(request.match_info["client_id"], email)
        return web.json_response({"results": found})

    async def _list_lead_sources(self, request: web.Request) -> web.StreamResponse:
        client = self.store.client(request.match_info["client_id"])
        return web.json_response({"leadSources": list(client.lead_sources.values())})

    async def _create_lead_source(self, request: web.Request) -> web.StreamResponse:
        body = await _json_body(request)
        record = self.store.create_lead_source(request.match_info["client_id"], body)
        return web.json_response({"leadSource": record}, status=201)

    async def _update_lead_source(self, request: web.Request) -> web.StreamResponse:
        m = request.match_info
        body = await _json_body(request)
        record = self.store.update_lead_source(m["client_id"], m["source_id"], body)
        return web.json_response({"leadSource": record})

    async def _find_person(self, request: web.Request) -> web.StreamResponse:
        people = self.store.find_people(
            request.match_info["client_id"],
            request.query.get("email"),
            request.query.get("externalId"),
        )
        return web.json_response({"people": people})

    # Admin handlers --------------------------------------------------------------------------

    async def _admin_state(self, request: web.Request) -> web.StreamResponse:
        return web.json_response(self.state())

    async def _admin_calls(self, request: web.Request) -> web.StreamResponse:
        return web.json_response(self.calls.as_json())

    async def _admin_reset(self, request: web.Request) -> web.StreamResponse:
        self.reset()
        return web.json_response({"reset": True})

    async def _admin_staff(self, request: web.Request) -> web.StreamResponse:
        try:
            body = await _json_body(request)
            record = self.store.seed_staff(
                str(body["client_id"]),
                body.get("email"),
                body.get("name"),
                staff_id=body.get("id"),
                club_ids=body.get("club_ids", ()),
            )
        except (KeyError, TypeError):
            return _error(400, "expected {client_id, email, name, id?, club_ids?}")
        except Rejection as rejection:
            return _error(rejection.status, rejection.message)
        return web.json_response({"staff": record}, status=201)

    async def _admin_clubs(self, request: web.Request) -> web.StreamResponse:
        try:
            body = await _json_body(request)
            self.store.add_club(str(body["client_id"]), str(body["club_id"]))
        except (KeyError, TypeError, Rejection):
            return _error(400, "expected {client_id, club_id}")
        return web.json_response({"clients": list(self.store.clients)}, status=201)

    async def _admin_faults(self, request: web.Request) -> web.StreamResponse:
        return web.json_response(self.faults.as_json())

    async def _admin_set_faults(self, request: web.Request) -> web.StreamResponse:
        try:
            body = await _json_body(request)
            default = FaultSpec.model_validate(body.get("default", {}))
            routes = {k: FaultSpec.model_validate(v) for k, v in body.get("routes", {}).items()}
        except (ValueError, AttributeError, Rejection) as exc:
            return _error(400, f"bad fault plan: {exc}")
        self.faults.replace(default, routes)
        if "outage_s" in body:
            self.faults.start_outage(float(body["outage_s"]))
        return web.json_response(self.faults.as_json())

    async def _admin_outage(self, request: web.Request) -> web.StreamResponse:
        try:
            body = await _json_body(request)
            seconds = float(body["seconds"])
        except (KeyError, TypeError, ValueError, Rejection):
            return _error(400, "expected {seconds}")
        self.faults.start_outage(seconds)
        return web.json_response(self.faults.as_json())


class ThreadedReceiver:
    """A reference receiver serving from its own thread and event loop."""

    def __init__(self, receiver: ReferenceReceiver) -> None:
        self.receiver = receiver
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._failure: BaseException | None = None
        self._thread = threading.Thread(target=self._serve, name="reference-receiver", daemon=True)

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self.receiver.start())
        except BaseException as exc:  # surfaced to the starting thread
            self._failure = exc
            self._ready.set()
            return
        self._ready.set()
        self._loop.run_forever()
        self._loop.run_until_complete(self.receiver.stop())
        self._loop.close()

    def start(self, timeout: float = 10.0) -> None:
        """Start serving; return once the port is bound."""
        self._thread.start()
        if not self._ready.wait(timeout):
            raise TimeoutError("the reference receiver did not start")
        if self._failure is not None:
            raise self._failure

    def call(self, fn: Callable[[], Any]) -> Any:
        """Run `fn` on the receiver's loop (its state is not thread-safe) and return its result."""

        async def run() -> Any:
            return fn()

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(timeout=10)

    def stop(self) -> None:
        """Stop serving and join the thread."""
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)

    @property
    def url(self) -> str:
        """Root URL of the receiver."""
        return self.receiver.url


@contextlib.contextmanager
def run_in_thread(config: ReferenceConfig | None = None) -> Iterator[ThreadedReceiver]:
    """Serve a reference receiver from a background thread for the duration of a with-block."""
    threaded = ThreadedReceiver(ReferenceReceiver(config))
    threaded.start()
    try:
        yield threaded
    finally:
        threaded.stop()
