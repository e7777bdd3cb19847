"""What the reference receiver must hold after the connector processed a scenario, and the diff."""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any, Literal

from adapters.base import Capability
from adapters.profile import FieldMap, ReceiverProfile, load_profile
from adapters.reference.server import ReceiverMode
from adapters.registry import PROFILE_DIR
from adapters.rest import dig
from streams.scenario import ReceiverStaffRow, Record, Scenario

PersonKind = Literal["prospect", "member"]

# Our names of what a person carries (the guide's 16 fields plus email), as in adapters.base.Person.
PERSON_FIELDS = (
    "first_name", "last_name", "status", "user_type", "birthdate", "gender", "address1",
    "address2", "city", "zipcode", "state", "country", "mobile_phone", "home_phone",
    "work_phone", "company", "email",
)  # fmt: skip
# The state we read is always the reference receiver's, whatever mode it runs in, so where a
# field sits in it comes from the full profile; a mode's own profile only decides what is allowed.
STATE_PROFILE = "reference"


def normalized_email(email: str | None) -> str | None:
    """How the guide matches staff: trimmed and case-insensitive."""
    if email is None or not email.strip():
        return None
    return email.strip().casefold()


@dataclass(frozen=True, slots=True)
class ReceiverField:
    """Where one of our person fields sits in a receiver record, and how its values read there."""

    path: str
    values: Mapping[str, str] = field(default_factory=dict)

    def wire(self, value: Any) -> Any:
        """Our value as the receiver stores it."""
        return self.values.get(value, value) if isinstance(value, str) else value


def receiver_fields(profile: ReceiverProfile) -> dict[str, ReceiverField]:
    """Our field name -> its place in the receiver's person record, from the prospect call."""
    call = profile.calls.save_prospect or profile.calls.create_prospect
    if call is None:
        raise ValueError(f"profile {profile.name!r} has no call that writes prospects")
    out: dict[str, ReceiverField] = {}
    for ours, mapping in call.body.items():
        if isinstance(mapping, FieldMap):
            out[ours] = ReceiverField(mapping.to, dict(mapping.values))
        else:
            out[ours] = ReceiverField(mapping)
    return out


@cache
def _profile(name: str) -> ReceiverProfile:
    return load_profile(PROFILE_DIR / f"{name}.yaml")


@dataclass(frozen=True, slots=True)
class ReceiverRules:
    """What the guide's optional behaviour comes to for one receiver (one mode)."""

    name: str
    staff_owner: bool
    lead_source_list: bool
    lead_source_create: bool
    lead_source_update: bool

    @classmethod
    def from_capabilities(cls, name: str, caps: Iterable[Capability]) -> ReceiverRules:
        """Rules of a receiver with these capabilities."""
        have = frozenset(caps)
        # An owner can only be sent for a staff the connector could look up and link.
        staff_lookup = bool(have & {Capability.STAFF_LIST, Capability.STAFF_BY_EMAIL})
        return cls(
            name=name,
            staff_owner=staff_lookup and Capability.STAFF_OWNER in have,
            lead_source_list=Capability.LEAD_SOURCE_LIST in have,
            lead_source_create=Capability.LEAD_SOURCE_CREATE in have,
            lead_source_update=Capability.LEAD_SOURCE_UPDATE in have,
        )

    @classmethod
    def for_mode(cls, mode: ReceiverMode | str) -> ReceiverRules:
        """Rules of the reference receiver in `mode` (or of a named profile), from its profile."""
        values = {m.value for m in ReceiverMode}
        profile_name = ReceiverMode(mode).profile_name if mode in values else str(mode)
        profile = _profile(profile_name)
        return cls.from_capabilities(profile.name, profile.capabilities)


def person_values(user: Record) -> dict[str, Any]:
    """A UserChanged as the connector sends it (adapters.base.Person), by our field names."""
    values = {name: user.get(name) for name in PERSON_FIELDS}
    values["status"] = str(user["status"]).lower()
    values["user_type"] = str(user["user_type"]).lower()
    birthdate = user.get("birthdate")
    values["birthdate"] = None if birthdate is None else birthdate.isoformat()
    return values


@dataclass(frozen=True, slots=True)
class ExpectedOwner:
    """The receiver staff a person must be owned by."""

    receiver_id: str
    email: str


@dataclass(frozen=True, slots=True)
class ExpectedPerson:
    """One InTouch user as the receiver must hold it: once, in its club, with its latest fields."""

    intouch_id: str
    club_id: str
    kind: PersonKind
    values: dict[str, Any]
    staff_owner: ExpectedOwner | None
    lead_source: str | None  # the receiver's name of the linked lead source

    @property
    def email(self) -> str | None:
        return normalized_email(self.values.get("email"))


@dataclass(frozen=True, slots=True)
class ExpectedLeadSource:
    """A lead source the receiver must have after the run."""

    name: str
    receiver_id: str | None  # known for the receiver's own; created ones get the receiver's
    intouch_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class ExpectedState:
    """The receiver's state the connector must produce for one scenario."""

    client_id: str
    receiver_client_id: str
    club_map: dict[str, str]
    rules: ReceiverRules
    people: dict[str, ExpectedPerson]
    lead_sources: list[ExpectedLeadSource]
    staff: list[ReceiverStaffRow]
    staff_links: dict[str, str]  # InTouch staff ID -> receiver staff ID
    lead_source_links: dict[str, str]  # InTouch lead source ID -> receiver name
    unlinked_lead_sources: list[str]  # InTouch IDs whose synchronization must fail

    def counts(self) -> dict[str, int]:
        """Totals a demo can print next to the receiver's own."""
        members = sum(1 for p in self.people.values() if p.kind == "member")
        return {
            "prospects": len(self.people) - members,
            "members": members,
            "lead_sources": len(self.lead_sources),
            "staff": len(self.staff),
            "linked_staff": len(self.staff_links),
        }


def link_staff(scenario: Scenario, rules: ReceiverRules) -> dict[str, ExpectedOwner]:
    """InTouch staff ID -> receiver staff, where the guide's email match succeeds."""
    if not rules.staff_owner:
        return {}
    receiver_by_email = {
        normalized_email(email): ExpectedOwner(receiver_id, email)
        for receiver_id, email, _name in scenario.receiver_staff
    }
    links: dict[str, ExpectedOwner] = {}
    for intouch_id, staff in scenario.latest("STAFF").items():
        email = normalized_email(staff.get("email"))
        if email is not None and email in receiver_by_email:
            links[intouch_id] = receiver_by_email[email]
    return links


@dataclass
class _HeldLeadSource:
    name: str
    receiver_id: str | None
    intouch_ids: list[str] = field(default_factory=list)


def sync_lead_sources(
    scenario: Scenario, rules: ReceiverRules
) -> tuple[list[ExpectedLeadSource], dict[str, str], list[str]]:
    """Replay the guide's lead source synchronization: (held afterwards, links, failed IDs).

    list+create: case-insensitive match, else create. list only: match or fail. create only:
    create, which the reference receiver refuses (409) when the name exists in any case. An
    unlinked source is tried again on its next event; a linked one is renamed only where the
    receiver has an update call.
    """
    held = [_HeldLeadSource(name, rid) for rid, name in scenario.receiver_lead_sources]
    links: dict[str, _HeldLeadSource] = {}

    def by_name(name: str) -> _HeldLeadSource | None:
        return next((h for h in held if h.name.casefold() == name.casefold()), None)

    for event in scenario.phase("all"):
        if event.entity != "LEAD_SOURCE":
            continue
        intouch_id, name = event.intouch_id, str(event.value["name"])
        linked = links.get(intouch_id)
        if linked is not None:
            if rules.lead_source_update and by_name(name) in (None, linked):
                linked.name = name
            continue
        match = by_name(name)
        if rules.lead_source_list and match is not None:
            links[intouch_id] = match
        elif rules.lead_source_create and match is None:
            created = _HeldLeadSource(name, None)
            held.append(created)
            links[intouch_id] = created
    for intouch_id, source in links.items():
        source.intouch_ids.append(intouch_id)
    failed = sorted(set(scenario.latest("LEAD_SOURCE")) - set(links))
    expected = [ExpectedLeadSource(h.name, h.receiver_id, tuple(h.intouch_ids)) for h in held]
    return expected, {iid: h.name for iid, h in links.items()}, failed


def expected_receiver_state(
    scenario: Scenario,
    mode: ReceiverMode | str | ReceiverRules = ReceiverMode.FULL,
    *,
    receiver_client_id: str | None = None,
    club_map: Mapping[str, str] | None = None,
    members_keep_owner: bool = True,
) -> ExpectedState:
    """What the receiver holds once the connector processed every event of `scenario`.

    `club_map` maps InTouch club IDs to the receiver's (identity when omitted);
    `members_keep_owner` says whether members, like prospects, carry their staff owner.
    """
    rules = mode if isinstance(mode, ReceiverRules) else ReceiverRules.for_mode(mode)
    owners = link_staff(scenario, rules)
    lead_sources, source_links, failed = sync_lead_sources(scenario, rules)
    people: dict[str, ExpectedPerson] = {}
    for intouch_id, user in scenario.latest("USER").items():
        kind: PersonKind = "member" if user["user_type"] == "MEMBER" else "prospect"
        owner_id = user.get("staff_owner_id")
        owner = owners.get(owner_id) if owner_id is not None else None
        if kind == "member" and not members_keep_owner:
            owner = None
        source_id = user.get("lead_source_id")
        people[intouch_id] = ExpectedPerson(
            intouch_id=intouch_id,
            club_id=str(user["club_id"]),
            kind=kind,
            values=person_values(user),
            staff_owner=owner,
            lead_source=None if source_id is None else source_links.get(source_id),
        )
    clubs = dict(club_map) if club_map is not None else {c: c for c in scenario.clubs}
    return ExpectedState(
        client_id=scenario.client_id,
        receiver_client_id=receiver_client_id or scenario.client_id,
        club_map=clubs,
        rules=rules,
        people=people,
        lead_sources=lead_sources,
        staff=list(scenario.receiver_staff),
        staff_links={iid: owner.receiver_id for iid, owner in owners.items()},
        lead_source_links=source_links,
        unlinked_lead_sources=failed,
    )


# -- comparing with GET /_admin/state ----------------------------------------------------------


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
    person: ExpectedPerson, held: list[_Held], fields: Mapping[str, ReceiverField]
) -> list[_Held]:
    """The records standing for `person`: by the external ID the connector sends, else email."""
    external = fields["intouch_id"].path
    email_path = fields["email"].path
    by_id = [h for h in held if dig(h.record, external) == person.intouch_id]
    if by_id or person.email is None:
        return by_id
    return [
        h
        for h in held
        if not dig(h.record, external)
        and normalized_email(dig(h.record, email_path)) == person.email
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
        got_email = normalized_email((staff.get(str(got_owner)) or {}).get("emailAddress"))
        if got_owner is None or got_email != normalized_email(owner.email):
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
        str(sid): normalized_email(rec.get("emailAddress"))
        for sid, rec in (client.get("staff") or {}).items()
    }
    out: list[Mismatch] = []
    for receiver_id, email, name in expected.staff:
        sid = receiver_id if receiver_id in left else None
        if sid is None:
            sid = next((s for s, e in left.items() if e == normalized_email(email)), None)
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


def compare(expected: ExpectedState, state: Mapping[str, Any]) -> list[Mismatch]:
    """Every difference between `expected` and the reference receiver's `GET /_admin/state`.

    Persons are matched by `externalId` (the InTouch ID the connector sends), else by email.
    """
    clients = state.get("clients", state)
    client = clients.get(expected.receiver_client_id)
    if client is None:
        detail = f"the receiver has clients {sorted(clients)}"
        return [
            Mismatch(MismatchKind.MISSING_CLIENT, f"client {expected.receiver_client_id}", detail)
        ]
    fields = receiver_fields(_profile(STATE_PROFILE))
    held = _people_of(client)
    claimed: set[int] = set()
    out: list[Mismatch] = []
    for intouch_id in sorted(expected.people, key=_numeric_first):
        person = expected.people[intouch_id]
        subject = f"user {intouch_id}"
        found = _find(person, held, fields)
        claimed.update(id(h) for h in found)
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
