"""What the reference receiver must hold after the connector processed a scenario."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any, Literal

from adapters.base import Capability
from adapters.profile import ReceiverProfile, load_profile
from adapters.reference import ReceiverMode
from adapters.registry import PROFILE_DIR
from demo.scenario import ReceiverStaffRow, Scenario
from streams.core.matching import normalize_email
from streams.core.model import Record

PersonKind = Literal["prospect", "member"]

# Our names of what a person carries (the guide's 16 fields plus email), as in adapters.base.Person.
# Not streams.core.model.PERSON_FIELDS: that one leaves out user_type (the planner reads the type
# apart), but the receiver gets the type with every person, so the expectation must hold it.
PERSON_FIELDS = (
    "first_name", "last_name", "status", "user_type", "birthdate", "gender", "address1",
    "address2", "city", "zipcode", "state", "country", "mobile_phone", "home_phone",
    "work_phone", "company", "email",
)  # fmt: skip


@cache
def profile_named(name: str) -> ReceiverProfile:
    """The bundled receiver profile called `name`, loaded once."""
    return load_profile(PROFILE_DIR / f"{name}.yaml")


@dataclass(frozen=True, slots=True)
class ReceiverRules:
    """What the guide's optional behaviour comes to for one receiver (one mode)."""

    name: str
    staff_owner: bool
    lead_source_list: bool
    lead_source_create: bool
    lead_source_update: bool
    convert: bool = True
    #: A create refused because the name exists names the existing one, which is linked.
    lead_source_conflict_links: bool = False

    @classmethod
    def from_capabilities(
        cls, name: str, caps: Iterable[Capability], *, conflict_links: bool = False
    ) -> ReceiverRules:
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
            convert=Capability.CONVERT_PROSPECT in have,
            lead_source_conflict_links=conflict_links,
        )

    @classmethod
    def for_mode(cls, mode: ReceiverMode | str) -> ReceiverRules:
        """Rules of the reference receiver in `mode` (or of a named profile), from its profile."""
        values = {m.value for m in ReceiverMode}
        profile_name = ReceiverMode(mode).profile_name if mode in values else str(mode)
        profile = profile_named(profile_name)
        create = profile.calls.create_lead_source
        conflict_links = create is not None and bool(create.exists_status)
        return cls.from_capabilities(
            profile.name, profile.capabilities, conflict_links=conflict_links
        )


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
        return normalize_email(self.values.get("email"))


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
        normalize_email(email): ExpectedOwner(receiver_id, email)
        for receiver_id, email, _name in scenario.receiver_staff
    }
    links: dict[str, ExpectedOwner] = {}
    for intouch_id, staff in scenario.latest("STAFF").items():
        email = normalize_email(staff.get("email"))
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
    create, which the reference receiver refuses (409) when the name exists in any case; the
    409 names the existing source, which is linked where the profile says so. An unlinked
    source is tried again on its next event; a linked one is renamed only where the receiver
    has an update call.
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
        elif rules.lead_source_create and match is not None and rules.lead_source_conflict_links:
            links[intouch_id] = match
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
