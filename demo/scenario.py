"""A seeded, realistic InTouch event stream for one tenant: reference data first, then users."""

from __future__ import annotations

import datetime as dt
import random
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from demo.people import (
    EXAMPLE_LEAD_SOURCE_INTOUCH_ID,
    EXAMPLE_LEAD_SOURCE_NAME,
    EXAMPLE_STAFF_EMAIL,
    EXAMPLE_STAFF_EMAIL_AS_SENT,
    EXAMPLE_STAFF_INTOUCH_ID,
    EXAMPLE_STAFF_NAME,
    EXAMPLE_STAFF_RECEIVER_ID,
    FIRST_NAMES,
    LAST_NAMES,
    LEAD_SOURCE_NAMES,
    OTHER_STAFF_DOMAIN,
    RECEIVER_ONLY_LEAD_SOURCES,
    RECEIVER_ONLY_STAFF,
    RENAME_SUFFIXES,
    STAFF_DOMAIN,
    draw_users,
    email_local,
    vary_case,
    vary_case_and_space,
)
from streams.core.model import Record

Entity = Literal["USER", "STAFF", "LEAD_SOURCE"]
Phase = Literal["reference", "users"]
PhaseChoice = Literal["all", "reference", "users"]

SUBJECT_OF: dict[Entity, str] = {
    "USER": "UserChanged",
    "STAFF": "StaffChanged",
    "LEAD_SOURCE": "LeadSourceChanged",
}

MIN_EVENTS = 10
REFERENCE_SHARE = 0.07
# Staff and lead sources of one client stay in the tens to hundreds, whatever the user volume.
MAX_REFERENCE_EVENTS = 200
DEFAULT_START = dt.datetime(2026, 3, 2, 8, 0, tzinfo=dt.UTC)

ReceiverStaffRow = tuple[str, str, str]  # (receiver_id, email, name)
ReceiverLeadSourceRow = tuple[str, str]  # (receiver_id, name)


@dataclass(frozen=True, slots=True)
class InboundEvent:
    """One InTouch change as it goes onto its inbound topic."""

    phase: Phase
    entity: Entity
    value: Record

    @property
    def subject(self) -> str:
        """Avro subject of the value."""
        return SUBJECT_OF[self.entity]

    @property
    def key(self) -> dict[str, str]:
        """The `EntityKey`: one entity of one client always lands on one partition."""
        return {
            "client_id": self.value["client_id"],
            "entity": self.entity,
            "intouch_id": self.value["intouch_id"],
        }

    @property
    def intouch_id(self) -> str:
        return str(self.value["intouch_id"])

    @property
    def version(self) -> int:
        return int(self.value["version"])


@dataclass(frozen=True)
class Scenario:
    """Everything one generated run holds: the events and the receiver's own reference data."""

    seed: int
    client_id: str
    clubs: tuple[str, ...]
    events: tuple[InboundEvent, ...]
    receiver_staff: list[ReceiverStaffRow]
    receiver_lead_sources: list[ReceiverLeadSourceRow]

    def phase(self, phase: PhaseChoice) -> list[InboundEvent]:
        """The events of one phase, or all of them, in production order."""
        return [e for e in self.events if phase == "all" or e.phase == phase]

    def interleaved(self) -> list[InboundEvent]:
        """Every event, the staff and lead sources shuffled in among the users (seeded), each
        entity's own changes still in order: users may reach the topics before their refs."""
        rng = random.Random(f"interleave-{self.seed}")
        reference, users = self.phase("reference"), self.phase("users")
        merged: list[InboundEvent] = []
        while reference or users:
            # Uniform over all interleavings: the next event is a reference one in the
            # proportion of those left.
            if rng.random() * (len(reference) + len(users)) < len(reference):
                merged.append(reference.pop(0))
            else:
                merged.append(users.pop(0))
        return merged

    def history(self, entity: Entity) -> dict[str, list[Record]]:
        """Every version of each entity of a kind, by InTouch ID, oldest first."""
        out: dict[str, list[Record]] = {}
        for event in self.events:
            if event.entity == entity:
                out.setdefault(event.intouch_id, []).append(event.value)
        return out

    def latest(self, entity: Entity) -> dict[str, Record]:
        """The newest version of each entity of a kind, by InTouch ID."""
        return {iid: versions[-1] for iid, versions in self.history(entity).items()}


class _Builder:
    """Mutable state while drawing one scenario; every draw comes from the one seeded RNG."""

    def __init__(self, seed: int, client_id: str, clubs: Sequence[str], start: dt.datetime):
        self.rng = random.Random(seed)
        self.client_id = client_id
        self.clubs = list(clubs)
        self.clock = start
        self.versions: dict[tuple[Entity, str], int] = {}

    def stamp(self, entity: Entity, intouch_id: str) -> Record:
        """Envelope of the next event of this entity: new UUID, later time, higher version."""
        self.clock += dt.timedelta(milliseconds=self.rng.randint(200, 20_000))
        previous = self.versions.get((entity, intouch_id), 0)
        # Gaps happen in InTouch (versions bumped by saves we never see); only the order counts.
        version = previous + (1 if self.rng.random() < 0.8 else self.rng.randint(2, 4))
        self.versions[(entity, intouch_id)] = version
        return {
            "event_id": str(uuid.UUID(int=self.rng.getrandbits(128), version=4)),
            "occurred_at": self.clock,
            "client_id": self.client_id,
            "intouch_id": intouch_id,
            "version": version,
        }


def _reference_counts(events: int) -> tuple[int, int, int, int]:
    """(staff entities, staff re-saves, lead source entities, lead source renames)."""
    reference = min(max(6, round(events * REFERENCE_SHARE)), MAX_REFERENCE_EVENTS, events - 1)
    lead_source_events = max(2, reference * 2 // 5)
    staff_events = reference - lead_source_events
    renames = lead_source_events // 6
    resaves = staff_events // 8
    return staff_events - resaves, resaves, lead_source_events - renames, renames


def _staff_phase(
    b: _Builder, entities: int, resaves: int, receiver_staff: list[ReceiverStaffRow] | None
) -> tuple[list[InboundEvent], list[ReceiverStaffRow]]:
    rng = b.rng
    own_receiver = receiver_staff is None
    rows: list[ReceiverStaffRow] = list(receiver_staff or [])
    if not any(row[0] == EXAMPLE_STAFF_RECEIVER_ID for row in rows):
        rows.insert(
            0, (EXAMPLE_STAFF_RECEIVER_ID, EXAMPLE_STAFF_EMAIL, " ".join(EXAMPLE_STAFF_NAME))
        )
    firsts: list[Record] = []

    def staff_record(intouch_id: str, first: str, last: str, email: str | None) -> Record:
        return {
            **b.stamp("STAFF", intouch_id),
            "club_id": rng.choice([*b.clubs, None]),
            "first_name": first,
            "last_name": last,
            "email": email,
            "status": "ACTIVE",
        }

    firsts.append(
        staff_record(EXAMPLE_STAFF_INTOUCH_ID, *EXAMPLE_STAFF_NAME, EXAMPLE_STAFF_EMAIL_AS_SENT)
    )
    for n in range(1, entities):
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        local = email_local(f"{first}.{last}{n}")
        intouch_id = str(5000 + n)
        if n % 2 == 0:  # about half link: the receiver holds the same address
            canonical = f"{local}@{STAFF_DOMAIN}"
            if own_receiver:
                rows.append((str(9000 + n), canonical, f"{first} {last}"))
            email: str | None = vary_case_and_space(rng, canonical)
        elif rng.random() < 0.15:
            email = None  # staff without an email can never link
        else:
            email = f"{local}@{OTHER_STAFF_DOMAIN}"
        firsts.append(staff_record(intouch_id, first, last, email))
    if own_receiver:
        for n, (first, last) in enumerate(RECEIVER_ONLY_STAFF, start=1):
            rows.append(
                (str(9900 + n), f"{first}.{last}@{STAFF_DOMAIN}".lower(), f"{first} {last}")
            )
    rest = firsts[1:]
    rng.shuffle(rest)
    seconds: list[Record] = []
    for original in rng.sample(firsts, min(resaves, len(firsts))):
        # A re-save keeps the address (maybe typed differently) and changes name or status.
        changed: Record = {**original, **b.stamp("STAFF", original["intouch_id"])}
        if rng.random() < 0.5:
            changed["status"] = "INACTIVE"
        else:
            changed["last_name"] = rng.choice([n for n in LAST_NAMES if n != original["last_name"]])
        if original["email"] and original["intouch_id"] != EXAMPLE_STAFF_INTOUCH_ID:
            changed["email"] = vary_case_and_space(rng, original["email"].strip().lower())
        seconds.append(changed)
    events = [InboundEvent("reference", "STAFF", r) for r in [firsts[0], *rest, *seconds]]
    return events, rows


def _lead_source_phase(
    b: _Builder, entities: int, renames: int
) -> tuple[list[InboundEvent], list[ReceiverLeadSourceRow]]:
    rng = b.rng
    pool = list(LEAD_SOURCE_NAMES[1:])
    rng.shuffle(pool)
    names = [EXAMPLE_LEAD_SOURCE_NAME]
    for n in range(1, entities):
        names.append(pool[n - 1] if n - 1 < len(pool) else f"{pool[n % len(pool)]} {n}")
    used = {name.casefold() for name in [*names, *RECEIVER_ONLY_LEAD_SOURCES]}
    rows: list[ReceiverLeadSourceRow] = [("L9001", EXAMPLE_LEAD_SOURCE_NAME)]
    firsts: list[Record] = []
    unmatched: list[Record] = []
    for n, name in enumerate(names):
        intouch_id = EXAMPLE_LEAD_SOURCE_INTOUCH_ID if n == 0 else str(6000 + n)
        known_to_receiver = n > 0 and rng.random() < 0.4
        sent = name
        if known_to_receiver:  # the receiver has it already, in its own spelling of case
            rows.append((f"L{9001 + n}", name))
            sent = vary_case(rng, name)
        record = {**b.stamp("LEAD_SOURCE", intouch_id), "club_id": None, "name": sent}
        firsts.append(record)
        if n > 0 and not known_to_receiver:
            unmatched.append(record)
    rows.extend((f"L{9801 + n}", name) for n, name in enumerate(RECEIVER_ONLY_LEAD_SOURCES))
    rest = firsts[1:]
    rng.shuffle(rest)
    seconds: list[Record] = []
    # Only sources no receiver knows get renamed: a rename then means the same in every mode.
    for original in rng.sample(unmatched, min(renames, len(unmatched))):
        suffixes = [s for s in RENAME_SUFFIXES if f"{original['name']} {s}".casefold() not in used]
        new_name = f"{original['name']} {rng.choice(suffixes or ['Renamed'])}"
        used.add(new_name.casefold())
        seconds.append(
            {**original, **b.stamp("LEAD_SOURCE", original["intouch_id"]), "name": new_name}
        )
    events = [InboundEvent("reference", "LEAD_SOURCE", r) for r in [firsts[0], *rest, *seconds]]
    return events, rows


def build_scenario(
    seed: int,
    events: int,
    client_id: str,
    clubs: Sequence[str],
    receiver_staff: Sequence[ReceiverStaffRow] | None = None,
    *,
    start: dt.datetime = DEFAULT_START,
) -> Scenario:
    """Draw `events` InTouch changes for one client; the same arguments give the same scenario.

    Phase "reference" (staff and lead sources, about 7 %, at most 200 events) comes first so
    that links exist before users refer to them. `receiver_staff` replaces the receiver's
    generated staff (the guide's 9999 jstaff@club.com is added when missing); the InTouch
    staff that should link then link only where these rows have their address.
    """
    if events < MIN_EVENTS:
        raise ValueError(f"a scenario needs at least {MIN_EVENTS} events, not {events}")
    if not clubs:
        raise ValueError("a scenario needs at least one club")
    builder = _Builder(seed, client_id, clubs, start)
    staff_n, resaves, sources_n, renames = _reference_counts(events)
    staff, receiver_staff_rows = _staff_phase(
        builder, staff_n, resaves, None if receiver_staff is None else list(receiver_staff)
    )
    sources, receiver_sources = _lead_source_phase(builder, sources_n, renames)
    # Staff and lead sources are independent topics; interleave them as InTouch saves them.
    reference = _interleave(builder.rng, staff, sources)
    staff_ids = sorted({e.intouch_id for e in staff})
    source_ids = sorted({e.intouch_id for e in sources})
    users = draw_users(
        builder.rng,
        builder.clubs,
        lambda intouch_id: builder.stamp("USER", intouch_id),
        events - len(reference),
        staff_ids,
        source_ids,
    )
    _restamp_times(reference, users)
    return Scenario(
        seed=seed,
        client_id=client_id,
        clubs=tuple(clubs),
        events=(*reference, *(InboundEvent("users", "USER", r) for r in users)),
        receiver_staff=receiver_staff_rows,
        receiver_lead_sources=receiver_sources,
    )


def _interleave(
    rng: random.Random, left: list[InboundEvent], right: list[InboundEvent]
) -> list[InboundEvent]:
    """Merge two ordered lists randomly, keeping each list's own order (the guide's first)."""
    out = [left[0], right[0]]
    i, j = 1, 1
    while i < len(left) or j < len(right):
        take_left = j >= len(right) or (i < len(left) and rng.random() < 0.5)
        if take_left:
            out.append(left[i])
            i += 1
        else:
            out.append(right[j])
            j += 1
    return out


def _restamp_times(reference: list[InboundEvent], users: list[Record]) -> None:
    """Make `occurred_at` follow production order (drawing shuffled it within phase 1)."""
    times = sorted([e.value["occurred_at"] for e in reference] + [u["occurred_at"] for u in users])
    records = [e.value for e in reference] + users
    for record, when in zip(records, times, strict=True):
        record["occurred_at"] = when


__all__ = ["Entity", "InboundEvent", "Phase", "Scenario", "build_scenario"]
