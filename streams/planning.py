"""Pure decisions of the pipeline: which commands a change becomes, which call a command makes."""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
import json
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from adapters.base import Capability as Cap
from adapters.base import Person, ReceiverLeadSource, ReceiverStaff

Record = dict[str, Any]

PERSON_FIELDS = (
    "first_name",
    "last_name",
    "status",
    "birthdate",
    "gender",
    "address1",
    "address2",
    "city",
    "zipcode",
    "state",
    "country",
    "mobile_phone",
    "home_phone",
    "work_phone",
    "company",
    "email",
)


class PlanningError(Exception):
    """An inbound change cannot become a command (dead-letter it with this reason)."""


class UnknownClubError(PlanningError):
    """The event's club is not in the tenant's turn-up."""


@dataclass(frozen=True)
class UserLink:
    """What the link table knows of one user in one receiver."""

    receiver_id: str | None = None
    user_type: str | None = None
    version: int = -1
    fingerprint: str | None = None
    pending_create: bool = False


@dataclass(frozen=True)
class EntityLink:
    """A staff or lead-source link; `receiver_id` None means 'looked, no match'."""

    receiver_id: str | None
    version: int
    fingerprint: str | None


@dataclass(frozen=True)
class Plan:
    """Commands to send, or the reason there are none."""

    commands: tuple[Record, ...] = ()
    skipped: str | None = None


def fingerprint(values: Mapping[str, Any]) -> str:
    """A stable hash of what a receiver would see."""
    text = json.dumps(values, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def normalize_email(email: str | None) -> str | None:
    email = (email or "").strip().lower()
    return email or None


def normalize_name(name: str | None) -> str:
    return " ".join((name or "").split()).casefold()


def target_type(event: Mapping[str, Any]) -> str:
    return "MEMBER" if event["user_type"] == "MEMBER" else "PROSPECT"


def _command(
    kind: str, event: Mapping[str, Any], fp: str, now: dt.datetime, **extra: Any
) -> Record:
    return {
        "command_id": str(uuid.uuid4()),
        "kind": kind,
        "client_id": event["client_id"],
        "club_id": event.get("club_id"),
        "intouch_id": event["intouch_id"],
        "version": event["version"],
        "cause_event_id": event["event_id"],
        "issued_at": now,
        "fingerprint": fp,
        "staff_owner_receiver_id": None,
        "lead_source_receiver_id": None,
        "user": None,
        "staff": None,
        "lead_source": None,
        **extra,
    }


def user_fingerprint(
    event: Mapping[str, Any], owner_id: str | None, lead_source_id: str | None
) -> str:
    seen = {name: event.get(name) for name in PERSON_FIELDS}
    seen.update(
        type=target_type(event),
        club=event.get("club_id"),
        owner=owner_id,
        lead_source=lead_source_id,
    )
    return fingerprint(seen)


def _stale_or_unchanged(
    event: Mapping[str, Any],
    link: UserLink | EntityLink | None,
    fp: str | None,
    last_sent: str | None,
    unchanged: str,
) -> Plan | None:
    """Skip an event older than what was applied, or equal to the last command planned."""
    if link is not None and event["version"] <= link.version:
        return Plan(skipped=f"stale: version {event['version']} <= applied {link.version}")
    if fp is not None and fp == last_sent:
        return Plan(skipped=unchanged)
    return None


def plan_user_change(
    event: Mapping[str, Any],
    *,
    capabilities: frozenset[Cap],
    clubs: Mapping[str, str],
    link: UserLink | None,
    staff_link: EntityLink | None,
    lead_source_link: EntityLink | None,
    last_sent: str | None,
    now: dt.datetime,
) -> Plan:
    """A prospect or member change becomes one upsert or conversion, unless nothing changed.

    `last_sent` is the fingerprint of the last command planned for this user, when known:
    comparing with the last *applied* one would skip a change back to it while another
    command is still in flight.
    """
    if event["club_id"] not in clubs:
        raise UnknownClubError(
            f"club {event['club_id']!r} of client {event['client_id']!r} is not turned up"
        )
    kind_type = target_type(event)
    if kind_type == "PROSPECT" and not capabilities & {Cap.PROSPECT_CREATE, Cap.PROSPECT_SAVE}:
        return Plan(skipped="the receiver takes no prospects")
    if kind_type == "MEMBER" and not capabilities & {Cap.MEMBER_CREATE, Cap.MEMBER_SAVE}:
        return Plan(skipped="the receiver takes no members")
    stale = _stale_or_unchanged(event, link, None, None, "")
    if stale:
        return stale
    # The guide: an unlinked staff owner means the user is sent with no owner.
    owner = staff_link.receiver_id if staff_link and event.get("staff_owner_id") else None
    if Cap.STAFF_OWNER not in capabilities:
        owner = None
    source = (
        lead_source_link.receiver_id if lead_source_link and event.get("lead_source_id") else None
    )
    fp = user_fingerprint(event, owner, source)
    if fp == last_sent:
        return Plan(skipped="no change the receiver would see")
    converting = kind_type == "MEMBER" and link is not None and link.user_type == "PROSPECT"
    kind = "CONVERT_TO_MEMBER" if converting else f"UPSERT_{kind_type}"
    command = _command(
        kind,
        event,
        fp,
        now,
        user=dict(event),
        staff_owner_receiver_id=owner,
        lead_source_receiver_id=source,
    )
    return Plan(commands=(command,))


def plan_staff_change(
    event: Mapping[str, Any],
    *,
    capabilities: frozenset[Cap],
    link: EntityLink | None,
    last_sent: str | None,
    now: dt.datetime,
) -> Plan:
    """A staff change becomes a link attempt by email; the connector never writes staff."""
    if not capabilities & {Cap.STAFF_LIST, Cap.STAFF_BY_EMAIL}:
        return Plan(skipped="the receiver has no staff calls")
    fp = fingerprint({"email": normalize_email(event.get("email"))})
    skip = _stale_or_unchanged(event, link, fp, last_sent, "staff email unchanged")
    if skip:
        return skip
    staff = {
        "event_id": event["event_id"],
        "occurred_at": event["occurred_at"],
        "client_id": event["client_id"],
        "club_id": event.get("club_id"),
        "intouch_id": event["intouch_id"],
        "version": event["version"],
        "first_name": event["first_name"],
        "last_name": event["last_name"],
        "email": event.get("email"),
        "status": event.get("status", "ACTIVE"),
    }
    return Plan(commands=(_command("LINK_STAFF", event, fp, now, staff=staff),))


def plan_lead_source_change(
    event: Mapping[str, Any],
    *,
    capabilities: frozenset[Cap],
    link: EntityLink | None,
    last_sent: str | None,
    now: dt.datetime,
) -> Plan:
    """A lead source change becomes a sync, or nothing when the receiver cannot take it."""
    if not capabilities & {Cap.LEAD_SOURCE_LIST, Cap.LEAD_SOURCE_CREATE}:
        return Plan(skipped="the receiver has no lead source calls")
    fp = fingerprint({"name": normalize_name(event["name"])})
    skip = _stale_or_unchanged(event, link, fp, last_sent, "lead source name unchanged")
    if skip:
        return skip
    renamed = link is not None and link.receiver_id is not None and fp != link.fingerprint
    if renamed and Cap.LEAD_SOURCE_UPDATE not in capabilities:
        # The guide: without an update call, no attempts at updates are made.
        return Plan(skipped="rename not sent: the receiver has no lead source update call")
    return Plan(commands=(_command("SYNC_LEAD_SOURCE", event, fp, now, lead_source=dict(event)),))


class UserCall(enum.Enum):
    """The receiver call a user command makes, decided when it runs."""

    SAVE_PROSPECT = "save_prospect"
    CREATE_PROSPECT = "create_prospect"
    UPDATE_PROSPECT = "update_prospect"
    SAVE_MEMBER = "save_member"
    CREATE_MEMBER = "create_member"
    UPDATE_MEMBER = "update_member"
    CONVERT = "convert_prospect"


def decide_user_call(
    target: str, receiver_id: str | None, linked_type: str | None, capabilities: frozenset[Cap]
) -> tuple[UserCall, str | None]:
    """Create or update from the link table at execution time; conversion is the adapter's.

    Returns the call and the receiver ID it applies to (None when it creates a record).
    """
    if target == "MEMBER" and receiver_id and linked_type == "PROSPECT":
        if Cap.CONVERT_PROSPECT in capabilities:
            return UserCall.CONVERT, receiver_id
        receiver_id = None  # no conversion call: the member is a new record in the receiver
    prefix = "MEMBER" if target == "MEMBER" else "PROSPECT"
    # The guide asks for create + update; a single save is the accepted alternative.
    if receiver_id is None and getattr(Cap, f"{prefix}_CREATE") in capabilities:
        return UserCall[f"CREATE_{prefix}"], None
    if receiver_id is not None and getattr(Cap, f"{prefix}_UPDATE") in capabilities:
        return UserCall[f"UPDATE_{prefix}"], receiver_id
    if getattr(Cap, f"{prefix}_SAVE") in capabilities:
        return UserCall[f"SAVE_{prefix}"], receiver_id
    raise PlanningError(
        f"the receiver cannot {'create' if receiver_id is None else 'update'} {prefix.lower()}s"
    )


def creates(call: UserCall, receiver_id: str | None) -> bool:
    """Whether the call may create a record (and so needs a durable pending marker first)."""
    return call is not UserCall.CONVERT and receiver_id is None


def match_staff(email: str | None, staff: Iterable[ReceiverStaff]) -> ReceiverStaff | None:
    """The receiver staff whose email equals `email`, case-insensitive and trimmed."""
    wanted = normalize_email(email)
    if wanted is None:
        return None
    return next((s for s in staff if normalize_email(s.email) == wanted), None)


def match_lead_source(
    name: str, sources: Iterable[ReceiverLeadSource]
) -> ReceiverLeadSource | None:
    """The receiver lead source named `name`, case-insensitive."""
    wanted = normalize_name(name)
    return next((s for s in sources if normalize_name(s.name) == wanted), None)


class LeadSourceMode(enum.Enum):
    """The guide's three ways to sync a lead source."""

    LIST_AND_CREATE = "list+create"
    LIST_ONLY = "list only"
    CREATE_ONLY = "create only"


def lead_source_mode(capabilities: frozenset[Cap]) -> LeadSourceMode | None:
    can_list = Cap.LEAD_SOURCE_LIST in capabilities
    can_create = Cap.LEAD_SOURCE_CREATE in capabilities
    if can_list and can_create:
        return LeadSourceMode.LIST_AND_CREATE
    if can_list:
        return LeadSourceMode.LIST_ONLY
    if can_create:
        return LeadSourceMode.CREATE_ONLY
    return None


def person_from_command(command: Mapping[str, Any]) -> Person:
    user = command["user"]
    return Person(
        first_name=user["first_name"],
        last_name=user["last_name"],
        status="inactive" if user["status"] == "INACTIVE" else "active",
        user_type="member" if user["user_type"] == "MEMBER" else "prospect",
        birthdate=user.get("birthdate"),
        gender=user.get("gender"),
        address1=user.get("address1"),
        address2=user.get("address2"),
        city=user.get("city"),
        zipcode=user.get("zipcode"),
        state=user.get("state"),
        country=user.get("country"),
        mobile_phone=user.get("mobile_phone"),
        home_phone=user.get("home_phone"),
        work_phone=user.get("work_phone"),
        company=user.get("company"),
        email=user.get("email"),
        intouch_id=user["intouch_id"],
        staff_owner_receiver_id=command.get("staff_owner_receiver_id"),
        lead_source_receiver_id=command.get("lead_source_receiver_id"),
    )
