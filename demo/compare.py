"""The differences between an expected receiver state and the reference receiver's actual one."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from adapters.fields import FieldMap
from adapters.profile import ReceiverProfile
from adapters.rendering import dig
from demo.oracle import PERSON_FIELDS, ExpectedPerson, ExpectedState, PersonKind, profile_named
from streams.core.matching import normalize_email

# The state we read is always the reference receiver's, whatever mode it runs in, so where a
# field sits in it comes from the full profile; a mode's own profile only decides what is allowed.
STATE_PROFILE = "reference"


@dataclass(frozen=True, slots=True)
class ReceiverField:
    """Where one of our person fields sits in a receiver record, and how its values read there."""

    path: str
    mapping: FieldMap | None = None

    def wire(self, value: Any) -> Any:
        """Our value as the receiver stores it (the profile's value map and type applied)."""
        return value if self.mapping is None else self.mapping.convert(value, "demo")


def receiver_fields(profile: ReceiverProfile) -> dict[str, ReceiverField]:
    """Our field name -> its place in the receiver's person record, from the prospect call."""
    call = profile.calls.save_prospect or profile.calls.create_prospect
    if call is None:
        raise ValueError(f"profile {profile.name!r} has no call that writes prospects")
    out: dict[str, ReceiverField] = {}
    for ours, mapping in call.body.items():
        if isinstance(mapping, FieldMap):
            out[ours] = ReceiverField(mapping.to, mapping)
        else:
            out[ours] = ReceiverField(mapping)
    return out


class MismatchKind(enum.StrEnum):
    """What is wrong in the receiver."""

    MISSING_CLIENT = "missing client"
    MISSING_PERSON = "missing person"
    DUPLICATE_PERSON = "duplicate person"
    UNEXPECTED_PERSON = "unexpected person"
    WRONG_CLUB = "wrong club"
    WRONG_TYPE = "wrong type"
    FIELD = "field differs"
    WRONG_OWNER = "wrong staff owner"
    WRONG_LEAD_SOURCE = "wrong lead source"
    MISSING_LEAD_SOURCE = "missing lead source"
    UNEXPECTED_LEAD_SOURCE = "unexpected lead source"
    LEAD_SOURCE_NAME = "lead source name differs"
    MISSING_STAFF = "missing staff"
    UNEXPECTED_STAFF = "unexpected staff"


@dataclass(frozen=True, slots=True)
class Mismatch:
    """One difference between the expected and the actual receiver state."""

    kind: MismatchKind
    subject: str
    detail: str
    want: Any = None
    got: Any = None

    def __str__(self) -> str:
        return f"{self.kind}: {self.subject}: {self.detail}"


@dataclass(frozen=True, slots=True)
class _Held:
    club_id: str
    kind: PersonKind
    record: Mapping[str, Any]

    @property
    def where(self) -> str:
        return f"{self.kind} {self.record.get('id')} in club {self.club_id}"


def _people_of(client: Mapping[str, Any]) -> list[_Held]:
    held: list[_Held] = []
    for club_id, club in (client.get("clubs") or {}).items():
        for record in (club.get("prospects") or {}).values():
            held.append(_Held(club_id, "prospect", record))
        for record in (club.get("members") or {}).values():
            held.append(_Held(club_id, "member", record))
    return held


def _find(
    person: ExpectedPerson,
    held: list[_Held],
    fields: Mapping[str, ReceiverField],
    links: Mapping[str, str],
) -> list[_Held]:
    """The records standing for `person`: by the external ID the connector sends, else by the
    link it made (a receiver that keeps no external ID), else by email."""
    external = fields["intouch_id"].path
    email_path = fields["email"].path
    by_id = [h for h in held if dig(h.record, external) == person.intouch_id]
    if by_id:
        return by_id
    linked = links.get(person.intouch_id)
    by_link = [h for h in held if linked is not None and h.record.get("id") == linked]
    if by_link or person.email is None:
        return by_link
    return [
        h
        for h in held
        if not dig(h.record, external)
        and normalize_email(dig(h.record, email_path)) == person.email
    ]


def _compare_person(
    person: ExpectedPerson,
    found: _Held,
    expected: ExpectedState,
    client: Mapping[str, Any],
    fields: Mapping[str, ReceiverField],
) -> list[Mismatch]:
    subject = f"user {person.intouch_id}"
    out: list[Mismatch] = []
    want_club = expected.club_map.get(person.club_id, person.club_id)
    if found.club_id != want_club:
        detail = f"in club {found.club_id}, want {want_club}"
        out.append(Mismatch(MismatchKind.WRONG_CLUB, subject, detail, want_club, found.club_id))
    if found.kind != person.kind:
        detail = f"is a {found.kind} ({found.where}), want a {person.kind}"
        out.append(Mismatch(MismatchKind.WRONG_TYPE, subject, detail, person.kind, found.kind))
    for name in PERSON_FIELDS:
        if name == "user_type" or name not in fields:
            continue  # the type is where the record sits, reported above
        place = fields[name]
        want, got = place.wire(person.values.get(name)), dig(found.record, place.path)
        if want != got:
            detail = f"field {name} ({place.path}) is {got!r}, want {want!r}"
            out.append(Mismatch(MismatchKind.FIELD, subject, detail, want, got))
    staff = client.get("staff") or {}
    got_owner = dig(found.record, fields["staff_owner_receiver_id"].path)
    owner = person.staff_owner
    if owner is None and got_owner is not None:
        detail = f"owned by staff {got_owner}, want no owner"
        out.append(Mismatch(MismatchKind.WRONG_OWNER, subject, detail, None, got_owner))
    elif owner is not None and got_owner != owner.receiver_id:
        got_email = normalize_email((staff.get(str(got_owner)) or {}).get("emailAddress"))
        if got_owner is None or got_email != normalize_email(owner.email):
            detail = f"owned by {got_owner!r}, want staff {owner.receiver_id} ({owner.email})"
            out.append(
                Mismatch(MismatchKind.WRONG_OWNER, subject, detail, owner.receiver_id, got_owner)
            )
    sources = client.get("lead_sources") or {}
    got_source = dig(found.record, fields["lead_source_receiver_id"].path)
    got_name = None if got_source is None else (sources.get(str(got_source)) or {}).get("name")
    if got_name != person.lead_source or (got_source is not None and got_name is None):
        shown = None if got_source is None else f"{got_source} ({got_name!r})"
        detail = f"lead source {shown}, want {person.lead_source!r}"
        out.append(
            Mismatch(MismatchKind.WRONG_LEAD_SOURCE, subject, detail, person.lead_source, shown)
        )
    return out


def _compare_lead_sources(expected: ExpectedState, client: Mapping[str, Any]) -> list[Mismatch]:
    actual = {
        str(rid): str(rec.get("name")) for rid, rec in (client.get("lead_sources") or {}).items()
    }
    left = dict(actual)
    out: list[Mismatch] = []
    for source in expected.lead_sources:
        subject = f"lead source {source.name!r}"
        if source.intouch_ids:
            subject += f" (InTouch {', '.join(source.intouch_ids)})"
        rid = source.receiver_id if source.receiver_id in left else None
        if rid is None:
            # Created ones get the receiver's IDs, and a seed may have given others: match names.
            rid = next((r for r, n in left.items() if n.casefold() == source.name.casefold()), None)
        if rid is None:
            out.append(Mismatch(MismatchKind.MISSING_LEAD_SOURCE, subject, "not in the receiver"))
            continue
        got = left.pop(rid)
        if got != source.name:
            detail = f"{rid} is named {got!r}, want {source.name!r}"
            out.append(Mismatch(MismatchKind.LEAD_SOURCE_NAME, subject, detail, source.name, got))
    for rid, name in left.items():
        detail = "the receiver holds it, nothing should have created it"
        out.append(
            Mismatch(MismatchKind.UNEXPECTED_LEAD_SOURCE, f"lead source {rid} ({name!r})", detail)
        )
    return out


def _compare_staff(expected: ExpectedState, client: Mapping[str, Any]) -> list[Mismatch]:
    """The connector never creates or updates staff: the receiver's must be as seeded."""
    left = {
        str(sid): normalize_email(rec.get("emailAddress"))
        for sid, rec in (client.get("staff") or {}).items()
    }
    out: list[Mismatch] = []
    for receiver_id, email, name in expected.staff:
        sid = receiver_id if receiver_id in left else None
        if sid is None:
            sid = next((s for s, e in left.items() if e == normalize_email(email)), None)
        if sid is None:
            subject = f"staff {receiver_id} ({email})"
            out.append(
                Mismatch(MismatchKind.MISSING_STAFF, subject, f"{name} is not in the receiver")
            )
            continue
        del left[sid]
    for extra_id, extra_email in left.items():
        subject = f"staff {extra_id} ({extra_email})"
        detail = "the connector must never create staff"
        out.append(Mismatch(MismatchKind.UNEXPECTED_STAFF, subject, detail))
    return out


def compare(
    expected: ExpectedState,
    state: Mapping[str, Any],
    *,
    links: Mapping[str, str] | None = None,
) -> list[Mismatch]:
    """Every difference between `expected` and the reference receiver's `GET /_admin/state`.

    Persons are matched by `externalId` (the InTouch ID the connector sends), else by the
    connector's `links` (InTouch ID -> receiver ID), else by email. On a receiver without a
    conversion call, a member may leave one prospect record behind (the guide: the member is
    a new record there); it is not compared.
    """
    clients = state.get("clients", state)
    client = clients.get(expected.receiver_client_id)
    if client is None:
        detail = f"the receiver has clients {sorted(clients)}"
        return [
            Mismatch(MismatchKind.MISSING_CLIENT, f"client {expected.receiver_client_id}", detail)
        ]
    fields = receiver_fields(profile_named(STATE_PROFILE))
    held = _people_of(client)
    claimed: set[int] = set()
    out: list[Mismatch] = []
    for intouch_id in sorted(expected.people, key=_numeric_first):
        person = expected.people[intouch_id]
        subject = f"user {intouch_id}"
        found = _find(person, held, fields, links or {})
        claimed.update(id(h) for h in found)
        if person.kind == "member" and not expected.rules.convert:
            left_behind = [h for h in found if h.kind == "prospect"]
            if len(left_behind) <= 1 and len(found) > len(left_behind):
                found = [h for h in found if h.kind == "member"]
        if not found:
            detail = f"no {person.kind} with externalId {intouch_id} or email {person.email}"
            out.append(Mismatch(MismatchKind.MISSING_PERSON, subject, detail))
            continue
        if len(found) > 1:
            detail = f"{len(found)} records: " + ", ".join(h.where for h in found)
            out.append(Mismatch(MismatchKind.DUPLICATE_PERSON, subject, detail, 1, len(found)))
        out.extend(_compare_person(person, found[0], expected, client, fields))
    for h in held:
        if id(h) not in claimed:
            external = dig(h.record, fields["intouch_id"].path)
            detail = f"externalId {external!r} is no user of the scenario"
            out.append(Mismatch(MismatchKind.UNEXPECTED_PERSON, h.where, detail))
    out.extend(_compare_lead_sources(expected, client))
    out.extend(_compare_staff(expected, client))
    return out


def _numeric_first(intouch_id: str) -> tuple[int, str]:
    return (int(intouch_id), "") if intouch_id.isdigit() else (1 << 62, intouch_id)
