"""The receiver's public API: its routes and the handlers answering them from the store."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Literal

from aiohttp import web

from adapters.reference.store import ReceiverStore, Rejection

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def error_response(
    status: int,
    message: str,
    *,
    details: Mapping[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
) -> web.Response:
    """The receiver's JSON error answer; `details` adds fields (e.g. `existingId`)."""
    body = {"error": message, **(details or {})}
    return web.json_response(body, status=status, headers=dict(headers or {}))


async def json_body(request: web.Request) -> Any:
    """The request's JSON body; a 400 rejection when it is not JSON."""
    try:
        return await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise Rejection(400, "body is not valid JSON") from None


class ApiHandlers:
    """Handlers of the receiver API; a `Rejection` they raise becomes an error answer."""

    def __init__(self, store: ReceiverStore) -> None:
        self.store = store

    def add_routes(self, app: web.Application, base_path: str, absent: frozenset[str]) -> None:
        """Route every API call to its handler, except the `absent` ones (the mode lacks them)."""
        club = base_path + "/clients/{client_id}/clubs/{club_id}"
        client = base_path + "/clients/{client_id}"
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
        for name, method, path, handler in table:
            if name not in absent:
                app.router.add_route(method, path, handler, name=name)

    # People ----------------------------------------------------------------------------------

    async def _create(self, request: web.Request, kind: Literal["prospect", "member"]) -> Any:
        m = request.match_info
        body = await json_body(request)
        record = self.store.create_person(m["client_id"], m["club_id"], kind, body)
        return web.json_response({kind: record}, status=201)

    async def _update(self, request: web.Request, kind: Literal["prospect", "member"]) -> Any:
        m = request.match_info
        body = await json_body(request)
        record = self.store.update_person(m["client_id"], m["club_id"], kind, m["person_id"], body)
        return web.json_response({kind: record})

    async def _save(self, request: web.Request, kind: Literal["prospect", "member"]) -> Any:
        m = request.match_info
        body = await json_body(request)
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
        body = await json_body(request)
        record = self.store.convert(m["client_id"], m["club_id"], m["person_id"], body)
        return web.json_response({"member": record})

    async def _find_person(self, request: web.Request) -> web.StreamResponse:
        people = self.store.find_people(
            request.match_info["client_id"],
            request.query.get("email"),
            request.query.get("externalId"),
        )
        return web.json_response({"people": people})

    # Staff -----------------------------------------------------------------------------------

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

    # Lead sources ----------------------------------------------------------------------------

    async def _list_lead_sources(self, request: web.Request) -> web.StreamResponse:
        client = self.store.client(request.match_info["client_id"])
        return web.json_response({"leadSources": list(client.lead_sources.values())})

    async def _create_lead_source(self, request: web.Request) -> web.StreamResponse:
        body = await json_body(request)
        record = self.store.create_lead_source(request.match_info["client_id"], body)
        return web.json_response({"leadSource": record}, status=201)

    async def _update_lead_source(self, request: web.Request) -> web.StreamResponse:
        m = request.match_info
        body = await json_body(request)
        record = self.store.update_lead_source(m["client_id"], m["source_id"], body)
        return web.json_response({"leadSource": record})
