"""The `contacts` mode: the same store behind an API shaped like another platform's."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any, Literal

from aiohttp import web

from adapters.reference.api import json_body
from adapters.reference.store import ReceiverStore, Rejection

# Its shape, unlike the reference API's: flat bodies, the ID in the body of one save call per
# kind, a boolean status, spelled-out genders, day-first dates, phones as a typed array,
# staff found by email only (a bare list), lead sources listed only and in pages, and a
# convert call that copies the prospect as stored, whatever the body says.
_GENDERS = {"female": "F", "male": "M", "other": "X"}
_FLAT = {
    "first": "firstName",
    "last": "lastName",
    "employer": "company",
    "mail": "email",
    "ref": "externalId",
    "ownerId": "staffOwnerId",
    "sourceId": "leadSourceId",
}
_ADDRESS = {
    "street": "line1",
    "street2": "line2",
    "town": "city",
    "postcode": "postalCode",
    "county": "region",
    "country": "country",
}
_PHONE_TYPES = ("mobile", "home", "work")
MAX_PAGE_SIZE = 50


def store_body(body: Any, kind: Literal["prospect", "member"]) -> dict[str, Any]:
    """The reference store's body for a contacts-API body; a 422 on a wrong type."""
    if not isinstance(body, dict):
        raise Rejection(400, "body must be a JSON object")
    active = body.get("isActive", True)
    if not isinstance(active, bool):
        raise Rejection(422, f"isActive must be true or false, not {active!r}")
    out: dict[str, Any] = {"status": "active" if active else "inactive", "type": kind}
    if body.get("contactId") is not None:
        out["id"] = body["contactId"]
    for theirs, ours in _FLAT.items():
        out[ours] = body.get(theirs)
    sex = body.get("sex")
    if sex is not None and sex not in _GENDERS:
        raise Rejection(422, f"sex must be one of {sorted(_GENDERS)}, not {sex!r}")
    out["gender"] = None if sex is None else _GENDERS[sex]
    out["birthDate"] = _iso_date(body.get("dob"))
    out["address"] = {ours: body.get(theirs) for theirs, ours in _ADDRESS.items()}
    out["phones"] = _phones(body.get("phones"))
    return out


def _iso_date(value: Any) -> str | None:
    if value is None:
        return None
    try:
        return dt.datetime.strptime(str(value), "%d/%m/%Y").date().isoformat()
    except ValueError:
        raise Rejection(422, f"dob must be DD/MM/YYYY, not {value!r}") from None


def _phones(value: Any) -> dict[str, Any]:
    phones: dict[str, Any] = dict.fromkeys(_PHONE_TYPES)
    if value is None:
        return phones
    if not isinstance(value, list):
        raise Rejection(422, "phones must be a list of {type, number}")
    for item in value:
        if not isinstance(item, dict) or item.get("type") not in _PHONE_TYPES:
            raise Rejection(422, f"each phone needs a type among {list(_PHONE_TYPES)}")
        phones[item["type"]] = item.get("number")
    return phones


def contact(record: Mapping[str, Any]) -> dict[str, Any]:
    """A stored person as the contacts API shows it."""
    flat = {theirs: record.get(ours) for theirs, ours in _FLAT.items()}
    flat.update({theirs: (record.get("address") or {}).get(o) for theirs, o in _ADDRESS.items()})
    genders = {v: k for k, v in _GENDERS.items()}
    phones = record.get("phones") or {}
    flat.update(
        contactId=record["id"],
        kind=record["type"],
        isActive=record["status"] == "active",
        sex=genders.get(record.get("gender") or ""),
        phones=[{"type": t, "number": phones[t]} for t in _PHONE_TYPES if phones.get(t)],
    )
    return flat


class ContactsApiHandlers:
    """Routes of the contacts-shaped API, named like the reference calls they stand for."""

    def __init__(self, store: ReceiverStore) -> None:
        self.store = store

    def add_routes(self, app: web.Application, base_path: str) -> None:
        client = base_path + "/clients/{client_id}"
        club = client + "/clubs/{club_id}"
        app.router.add_route("POST", club + "/contacts", self._save_prospect, name="save_prospect")
        app.router.add_route("POST", club + "/memberships", self._save_member, name="save_member")
        app.router.add_route(
            "POST", club + "/contacts/{person_id}/convert", self._convert, name="convert_prospect"
        )
        app.router.add_route("GET", client + "/staff-directory", self._staff, name="staff_by_email")
        app.router.add_route("GET", client + "/sources", self._sources, name="list_lead_sources")
        app.router.add_route("GET", client + "/contacts", self._find, name="find_person")

    async def _save(self, request: web.Request, kind: Literal["prospect", "member"]) -> Any:
        m = request.match_info
        body = store_body(await json_body(request), kind)
        record, created = self.store.save_person(m["client_id"], m["club_id"], kind, body)
        return web.json_response({"saved": [contact(record)]}, status=201 if created else 200)

    async def _save_prospect(self, request: web.Request) -> web.StreamResponse:
        return await self._save(request, "prospect")  # type: ignore[no-any-return]

    async def _save_member(self, request: web.Request) -> web.StreamResponse:
        return await self._save(request, "member")  # type: ignore[no-any-return]

    async def _convert(self, request: web.Request) -> web.StreamResponse:
        m = request.match_info
        if request.can_read_body:
            await json_body(request)  # a JSON body is accepted, and ignored
        prospect = self.store.club(m["client_id"], m["club_id"]).prospects.get(m["person_id"])
        if prospect is None:
            raise Rejection(404, f"no contact {m['person_id']!r} to convert")
        copy = {k: v for k, v in prospect.items() if k not in ("id", "type", "version", "clubId")}
        record = self.store.convert(m["client_id"], m["club_id"], m["person_id"], copy)
        return web.json_response({"saved": [contact(record)]})

    async def _staff(self, request: web.Request) -> web.StreamResponse:
        email = request.query.get("mail")
        if not email:
            raise Rejection(400, "mail is required")
        found = self.store.staff_by_email(request.match_info["client_id"], email)
        return web.json_response(
            [
                {"uid": s["staffId"], "mail": s["emailAddress"], "fullName": s["displayName"]}
                for s in found
            ]
        )

    async def _sources(self, request: web.Request) -> web.StreamResponse:
        try:
            page = int(request.query.get("page", "0"))
            size = int(request.query.get("per_page", "20"))
        except ValueError:
            raise Rejection(400, "page and per_page are numbers") from None
        if page < 0 or not 0 < size <= MAX_PAGE_SIZE:
            raise Rejection(400, f"page >= 0 and 0 < per_page <= {MAX_PAGE_SIZE}")
        sources = list(self.store.client(request.match_info["client_id"]).lead_sources.values())
        chunk = sources[page * size : (page + 1) * size]
        content = [{"sourceId": s["id"], "label": s["name"]} for s in chunk]
        return web.json_response({"content": content, "page": page})

    async def _find(self, request: web.Request) -> web.StreamResponse:
        people = self.store.find_people(
            request.match_info["client_id"], request.query.get("mail"), request.query.get("ref")
        )
        return web.json_response({"items": [contact(p) for p in people]})
