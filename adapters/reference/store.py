"""In-memory data of the reference receiver and the validation it applies to payloads."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

PersonKind = Literal["prospect", "member"]

_STATUSES = ("active", "inactive")
_TYPES = ("prospect", "member")
_TEXT_FIELDS = ("gender", "company", "email", "externalId")
_ADDRESS_FIELDS = ("line1", "line2", "city", "postalCode", "region", "country")
_PHONE_FIELDS = ("mobile", "home", "work")


class Rejection(Exception):
    """The receiver refuses a request with this HTTP status and message."""

    def __init__(self, status: int, message: str, **details: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.details = details


@dataclass
class ClubData:
    """People of one club, by receiver ID."""

    prospects: dict[str, dict[str, Any]] = field(default_factory=dict)
    members: dict[str, dict[str, Any]] = field(default_factory=dict)

    def of(self, kind: PersonKind) -> dict[str, dict[str, Any]]:
        """The prospects or the members."""
        return self.prospects if kind == "prospect" else self.members


@dataclass
class ClientData:
    """Everything one client holds: clubs, staff and lead sources."""

    clubs: dict[str, ClubData] = field(default_factory=dict)
    staff: dict[str, dict[str, Any]] = field(default_factory=dict)
    lead_sources: dict[str, dict[str, Any]] = field(default_factory=dict)


def _text(body: Mapping[str, Any], key: str, *, where: str = "") -> str | None:
    value = body.get(key)
    if value is not None and not isinstance(value, str):
        raise Rejection(422, f"{where}{key} must be a string")
    return value


def _section(body: Mapping[str, Any], key: str, allowed: Iterable[str]) -> dict[str, Any]:
    value = body.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise Rejection(422, f"{key} must be an object")
    unknown = set(value) - set(allowed)
    if unknown:
        raise Rejection(422, f"{key} has unknown field(s) {sorted(unknown)}")
    for name in value:
        _text(value, name, where=f"{key}.")
    return dict(value)


class ReceiverStore:
    """The receiver's whole state; every method either applies a change or raises Rejection."""

    def __init__(self, clients: Mapping[str, Iterable[str]], *, staff_owner_allowed: bool) -> None:
        self._seed = {client: list(clubs) for client, clubs in clients.items()}
        self.staff_owner_allowed = staff_owner_allowed
        self.reset()

    def reset(self) -> None:
        """Back to the seeded clients and clubs, with no people, staff or lead sources."""
        self.clients: dict[str, ClientData] = {
            client: ClientData(clubs={club: ClubData() for club in clubs})
            for client, clubs in self._seed.items()
        }
        self._ids = itertools.count(1001)

    def _new_id(self, prefix: str) -> str:
        return f"{prefix}{next(self._ids)}"

    def client(self, client_id: str) -> ClientData:
        """The client, or a 404."""
        try:
            return self.clients[client_id]
        except KeyError:
            raise Rejection(404, f"unknown client {client_id!r}") from None

    def club(self, client_id: str, club_id: str) -> ClubData:
        """The club of the client, or a 404."""
        try:
            return self.client(client_id).clubs[club_id]
        except KeyError:
            raise Rejection(404, f"unknown club {club_id!r} for client {client_id!r}") from None

    def add_club(self, client_id: str, club_id: str) -> None:
        """Create the club (and its client) if missing."""
        self.clients.setdefault(client_id, ClientData()).clubs.setdefault(club_id, ClubData())

    # People ----------------------------------------------------------------------------------

    def _validated_person(
        self, client_id: str, kind: PersonKind | None, body: Any
    ) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise Rejection(400, "body must be a JSON object")
        record: dict[str, Any] = {}
        for key in ("firstName", "lastName"):
            value = body.get(key)
            if not isinstance(value, str) or not value.strip():
                raise Rejection(422, f"{key} is required")
            record[key] = value
        status = body.get("status", "active")
        if status not in _STATUSES:
            raise Rejection(422, f"status must be one of {list(_STATUSES)}, not {status!r}")
        record["status"] = status
        user_type = body.get("type")
        if user_type is not None and user_type not in _TYPES:
            raise Rejection(422, f"type must be one of {list(_TYPES)}, not {user_type!r}")
        if kind is not None and user_type is not None and user_type != kind:
            raise Rejection(422, f"type {user_type!r} sent to the {kind} endpoint")
        record["birthDate"] = self._birth_date(body.get("birthDate"))
        for key in _TEXT_FIELDS:
            record[key] = _text(body, key)
        if record["email"] is not None and "@" not in record["email"]:
            raise Rejection(422, f"email {record['email']!r} is not an email address")
        record["address"] = _section(body, "address", _ADDRESS_FIELDS)
        record["phones"] = _section(body, "phones", _PHONE_FIELDS)
        client = self.client(client_id)
        owner = body.get("staffOwnerId")
        if owner is not None:
            if not self.staff_owner_allowed:
                raise Rejection(422, "this receiver does not take a staff owner")
            if str(owner) not in client.staff:
                raise Rejection(422, f"unknown staff owner id {owner!r}")
        record["staffOwnerId"] = None if owner is None else str(owner)
        source = body.get("leadSourceId")
        if source is not None and str(source) not in client.lead_sources:
            raise Rejection(422, f"unknown lead source id {source!r}")
        record["leadSourceId"] = None if source is None else str(source)
        return record

    @staticmethod
    def _birth_date(value: Any) -> str | None:
        if value is None:
            return None
        if not isinstance(value, str) or len(value) != 10:
            raise Rejection(422, f"birthDate must be a YYYY-MM-DD date, not {value!r}")
        try:
            parsed = dt.date.fromisoformat(value)
        except ValueError:
            parsed = None
        if parsed is None:
            raise Rejection(422, f"birthDate must be a YYYY-MM-DD date, not {value!r}")
        if parsed > dt.date.today():
            raise Rejection(422, f"birthDate {value!r} is in the future")
        return value

    def create_person(
        self, client_id: str, club_id: str, kind: PersonKind, body: Any
    ) -> dict[str, Any]:
        """Add a prospect or member; return the stored record."""
        club = self.club(client_id, club_id)
        record = self._validated_person(client_id, kind, body)
        record.update(id=self._new_id("P" if kind == "prospect" else "M"), type=kind, version=1)
        record["clubId"] = club_id
        club.of(kind)[record["id"]] = record
        return record

    def update_person(
        self, client_id: str, club_id: str, kind: PersonKind, person_id: str, body: Any
    ) -> dict[str, Any]:
        """Replace a prospect's or member's fields; return the stored record."""
        club = self.club(client_id, club_id)
        current = club.of(kind).get(person_id)
        if current is None:
            raise Rejection(404, f"no {kind} {person_id!r} in club {club_id!r}")
        record = self._validated_person(client_id, kind, body)
        record.update(id=person_id, type=kind, version=current["version"] + 1, clubId=club_id)
        if "convertedFrom" in current:
            record["convertedFrom"] = current["convertedFrom"]  # the platform's, not ours
        club.of(kind)[person_id] = record
        return record

    def save_person(
        self, client_id: str, club_id: str, kind: PersonKind, body: Any
    ) -> tuple[dict[str, Any], bool]:
        """Upsert by `id`, else by `externalId`; return the record and whether it is new."""
        club = self.club(client_id, club_id)
        person_id = body.get("id") if isinstance(body, dict) else None
        if person_id is None and isinstance(body, dict) and body.get("externalId"):
            person_id = next(
                (
                    pid
                    for pid, rec in club.of(kind).items()
                    if rec.get("externalId") == body["externalId"]
                ),
                None,
            )
        if person_id is None:
            return self.create_person(client_id, club_id, kind, body), True
        return self.update_person(client_id, club_id, kind, str(person_id), body), False

    def convert(self, client_id: str, club_id: str, prospect_id: str, body: Any) -> dict[str, Any]:
        """Move a prospect to the members under a new member ID; return the member."""
        club = self.club(client_id, club_id)
        if prospect_id not in club.prospects:
            raise Rejection(404, f"no prospect {prospect_id!r} in club {club_id!r}")
        record = self._validated_person(client_id, None, body)
        del club.prospects[prospect_id]
        record.update(
            id=self._new_id("M"),
            type="member",
            version=1,
            clubId=club_id,
            convertedFrom=prospect_id,
        )
        club.members[record["id"]] = record
        return record

    def find_people(
        self, client_id: str, email: str | None, external_id: str | None
    ) -> list[dict[str, Any]]:
        """People of the client matching the external ID first, then the email."""
        if email is None and external_id is None:
            raise Rejection(400, "give email or externalId")
        by_external: list[dict[str, Any]] = []
        by_email: list[dict[str, Any]] = []
        for club in self.client(client_id).clubs.values():
            for record in [*club.prospects.values(), *club.members.values()]:
                if external_id is not None and record.get("externalId") == external_id:
                    by_external.append(record)
                elif (
                    email is not None
                    and (record.get("email") or "").casefold() == email.strip().casefold()
                ):
                    by_email.append(record)
        return by_external + by_email

    # Staff -----------------------------------------------------------------------------------

    def seed_staff(
        self,
        client_id: str,
        email: str | None,
        name: str | None,
        staff_id: str | None = None,
        club_ids: Iterable[str] = (),
    ) -> dict[str, Any]:
        """Add a staff record (receivers own their staff; the Connector never creates any)."""
        client = self.client(client_id)
        new_id = staff_id or self._new_id("S")
        record: dict[str, Any] = {
            "staffId": new_id,
            "emailAddress": email,
            "displayName": name,
            "clubIds": list(club_ids),
        }
        client.staff[new_id] = record
        return record

    def list_staff(self, client_id: str, club_id: str | None) -> list[dict[str, Any]]:
        """Staff of the client; with a club, those working there or at every club."""
        client = self.client(client_id)
        if club_id is not None and club_id not in client.clubs:
            raise Rejection(404, f"unknown club {club_id!r} for client {client_id!r}")
        return [
            s
            for s in client.staff.values()
            if club_id is None or not s["clubIds"] or club_id in s["clubIds"]
        ]

    def staff_by_email(self, client_id: str, email: str) -> list[dict[str, Any]]:
        """Staff whose email matches, case-insensitively."""
        wanted = email.strip().casefold()
        return [
            s
            for s in self.client(client_id).staff.values()
            if (s["emailAddress"] or "").strip().casefold() == wanted
        ]

    # Lead sources ----------------------------------------------------------------------------

    def _lead_source_name(self, client: ClientData, body: Any, exclude: str | None) -> str:
        name = body.get("name") if isinstance(body, dict) else None
        if not isinstance(name, str) or not name.strip():
            raise Rejection(422, "name is required")
        for source in client.lead_sources.values():
            if source["id"] != exclude and source["name"].casefold() == name.casefold():
                raise Rejection(
                    409,
                    f"lead source {name!r} already exists as {source['id']}",
                    existingId=source["id"],
                )
        return name

    def create_lead_source(self, client_id: str, body: Any) -> dict[str, Any]:
        """Add a lead source; names are unique regardless of case."""
        client = self.client(client_id)
        record = {"id": self._new_id("L"), "name": self._lead_source_name(client, body, None)}
        client.lead_sources[record["id"]] = record
        return record

    def update_lead_source(self, client_id: str, source_id: str, body: Any) -> dict[str, Any]:
        """Rename a lead source."""
        client = self.client(client_id)
        if source_id not in client.lead_sources:
            raise Rejection(404, f"no lead source {source_id!r}")
        record = {"id": source_id, "name": self._lead_source_name(client, body, source_id)}
        client.lead_sources[source_id] = record
        return record

    # Inspection ------------------------------------------------------------------------------

    def as_json(self) -> dict[str, Any]:
        """Everything held, for `GET /_admin/state`."""
        return {
            client_id: {
                "clubs": {
                    club_id: {"prospects": club.prospects, "members": club.members}
                    for club_id, club in client.clubs.items()
                },
                "staff": client.staff,
                "lead_sources": client.lead_sources,
            }
            for client_id, client in self.clients.items()
        }
