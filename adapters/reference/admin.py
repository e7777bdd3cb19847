"""The receiver's `/_admin` endpoints: inspect state and calls, seed data, steer faults."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiohttp import web

from adapters.reference.api import Handler, error_response, json_body
from adapters.reference.faults import FaultSpec
from adapters.reference.store import Rejection

if TYPE_CHECKING:
    from adapters.reference.server import ReferenceReceiver

ADMIN_ROUTE_PREFIX = "_admin"


def is_admin_route(name: str | None) -> bool:
    """Whether a matched route is an admin endpoint (exempt from auth, faults and the log)."""
    return name is not None and name.startswith(ADMIN_ROUTE_PREFIX)


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


class AdminHandlers:
    """Handlers of `/_admin/...`, acting on a running receiver like its Python-side admin."""

    def __init__(self, receiver: ReferenceReceiver) -> None:
        self.receiver = receiver

    def add_routes(self, app: web.Application) -> None:
        """Route every admin endpoint, named so `is_admin_route` recognises it."""
        admin: list[tuple[str, str, Handler]] = [
            ("GET", "/_admin/state", self._state),
            ("GET", "/_admin/calls", self._calls),
            ("POST", "/_admin/reset", self._reset),
            ("POST", "/_admin/staff", self._staff),
            ("POST", "/_admin/clubs", self._clubs),
            ("GET", "/_admin/faults", self._faults),
            ("PUT", "/_admin/faults", self._set_faults),
            ("POST", "/_admin/outage", self._outage),
        ]
        for method, path, handler in admin:
            name = f"{ADMIN_ROUTE_PREFIX}{path.replace('/', '.')}"
            app.router.add_route(method, path, handler, name=name)

    async def _state(self, request: web.Request) -> web.StreamResponse:
        return web.json_response(self.receiver.state())

    async def _calls(self, request: web.Request) -> web.StreamResponse:
        return web.json_response(self.receiver.calls.as_json())

    async def _reset(self, request: web.Request) -> web.StreamResponse:
        self.receiver.reset()
        return web.json_response({"reset": True})

    async def _staff(self, request: web.Request) -> web.StreamResponse:
        try:
            body = await json_body(request)
            record = self.receiver.store.seed_staff(
                str(body["client_id"]),
                body.get("email"),
                body.get("name"),
                staff_id=body.get("id"),
                club_ids=body.get("club_ids", ()),
            )
        except (KeyError, TypeError):
            return error_response(400, "expected {client_id, email, name, id?, club_ids?}")
        except Rejection as rejection:
            return error_response(rejection.status, rejection.message)
        return web.json_response({"staff": record}, status=201)

    async def _clubs(self, request: web.Request) -> web.StreamResponse:
        try:
            body = await json_body(request)
            self.receiver.store.add_club(str(body["client_id"]), str(body["club_id"]))
        except (KeyError, TypeError, Rejection):
            return error_response(400, "expected {client_id, club_id}")
        return web.json_response({"clients": list(self.receiver.store.clients)}, status=201)

    async def _faults(self, request: web.Request) -> web.StreamResponse:
        return web.json_response(self.receiver.faults.as_json())

    async def _set_faults(self, request: web.Request) -> web.StreamResponse:
        try:
            body = await json_body(request)
            default = FaultSpec.model_validate(body.get("default", {}))
            routes = {k: FaultSpec.model_validate(v) for k, v in body.get("routes", {}).items()}
        except (ValueError, AttributeError, Rejection) as exc:
            return error_response(400, f"bad fault plan: {exc}")
        self.receiver.faults.replace(default, routes)
        if "outage_s" in body:
            self.receiver.faults.start_outage(float(body["outage_s"]))
        return web.json_response(self.receiver.faults.as_json())

    async def _outage(self, request: web.Request) -> web.StreamResponse:
        try:
            body = await json_body(request)
            seconds = float(body["seconds"])
        except (KeyError, TypeError, ValueError, Rejection):
            return error_response(400, "expected {seconds}")
        self.receiver.faults.start_outage(seconds)
        return web.json_response(self.receiver.faults.as_json())
