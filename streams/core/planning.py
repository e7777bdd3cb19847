"""Pure decisions of the pipeline: which commands a change becomes, which call a command makes."""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from adapters.base import Capability as Cap
from streams.core.decisions import target_type
from streams.core.ids import new_id
from streams.core.matching import normalize_email, normalize_name
from streams.core.model import PERSON_FIELDS, Entity, EntityLink, Record, UserLink, is_stale
from streams.exceptions import UnknownClubError


class PlannerSkip(enum.StrEnum):
    """Why the planner made no command: a closed set (a metric label); the outcome's message
    says more."""

    STALE = "stale"
    NO_PROSPECT_CALLS = "no_prospect_calls"
    NO_MEMBER_CALLS = "no_member_calls"
    NO_STAFF_CALLS = "no_staff_calls"
    NO_LEAD_SOURCE_CALLS = "no_lead_source_calls"
    NO_LEAD_SOURCE_UPDATE = "no_lead_source_update"


#: Why a user planned again makes no command: the receiver would see no change.
REPLAN_UNCHANGED = "unchanged: the latest command carries these values"


@dataclass(frozen=True)
class Plan:
    """Commands to send, or the reason there are none (`skip`, and `skipped` in words)."""

    commands: tuple[Record, ...] = ()
    skipped: str | None = None
    skip: PlannerSkip | None = None


def _skip(reason: PlannerSkip, message: str) -> Plan:
    return Plan(skipped=message, skip=reason)


def fingerprint(values: Mapping[str, Any]) -> str:
    """A stable hash of what a receiver would see."""
    text = json.dumps(values, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _command(
    kind: str, event: Mapping[str, Any], fp: str, now: dt.datetime, **extra: Any
) -> Record:
    return {
        "command_id": new_id(),
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


def _stale(event: Mapping[str, Any], link: UserLink | EntityLink | None) -> Plan | None:
    """Skip an event no newer than the version the link table applied."""
    if link is None or not is_stale(event["version"], link):
        return None
    return _skip(PlannerSkip.STALE, f"stale: version {event['version']} <= applied {link.version}")


def skipped_change(event: Mapping[str, Any], entity: Entity) -> Record:
    """What a SKIPPED outcome of the planner is about: the change itself (no command)."""
    return {
        "command_id": f"skipped:{event['event_id']}",
        "client_id": event["client_id"],
        "club_id": event.get("club_id"),
        "entity": str(entity),
        "intouch_id": event["intouch_id"],
        "version": event["version"],
        "fingerprint": None,
    }


def entity_of_event(subject: str, event: Mapping[str, Any]) -> Entity:
    """What an inbound change is about: a staff user event is a staff change."""
    if subject == "LeadSourceChanged":
        return Entity.LEAD_SOURCE
    if subject == "StaffChanged" or event.get("user_type") == "STAFF":
        return Entity.STAFF
    return Entity.USER


def plan_user_change(
    event: Mapping[str, Any],
    *,
    capabilities: frozenset[Cap],
    clubs: Mapping[str, str],
    link: UserLink | None,
    staff_link: EntityLink | None,
    lead_source_link: EntityLink | None,
    now: dt.datetime,
) -> Plan:
    """A prospect or member change becomes one upsert or conversion.

    Whether the receiver has this already is the sink's decision, in order per entity, from
    what the link table says was applied; the planner keeps no memory of what it sent.
    """
    if event["club_id"] not in clubs:
        raise UnknownClubError(
            f"club {event['club_id']!r} of client {event['client_id']!r} is not turned up"
        )
    untakeable = _untakeable(target_type(event), capabilities)
    if untakeable is not None:
        return untakeable
    stale = _stale(event, link)
    if stale is not None:
        return stale
    return Plan(
        commands=(_user_command(event, capabilities, link, staff_link, lead_source_link, now),)
    )


def _untakeable(kind_type: str, capabilities: frozenset[Cap]) -> Plan | None:
    """The skip of a user the receiver cannot take (no create or save call for its type)."""
    if kind_type == "PROSPECT" and not capabilities & {Cap.PROSPECT_CREATE, Cap.PROSPECT_SAVE}:
        return _skip(PlannerSkip.NO_PROSPECT_CALLS, "the receiver takes no prospects")
    if kind_type == "MEMBER" and not capabilities & {Cap.MEMBER_CREATE, Cap.MEMBER_SAVE}:
        return _skip(PlannerSkip.NO_MEMBER_CALLS, "the receiver takes no members")
    return None


def referenced_ids(
    event: Mapping[str, Any],
    capabilities: frozenset[Cap],
    staff_link: EntityLink | None,
    lead_source_link: EntityLink | None,
) -> tuple[str | None, str | None]:
    """The receiver IDs of the user's staff owner and lead source, where they are linked."""
    # The guide: an unlinked staff owner means the user is sent with no owner.
    owner = staff_link.receiver_id if staff_link and event.get("staff_owner_id") else None
    if Cap.STAFF_OWNER not in capabilities:
        owner = None
    source = (
        lead_source_link.receiver_id if lead_source_link and event.get("lead_source_id") else None
    )
    return owner, source


def _user_command(
    event: Mapping[str, Any],
    capabilities: frozenset[Cap],
    link: UserLink | None,
    staff_link: EntityLink | None,
    lead_source_link: EntityLink | None,
    now: dt.datetime,
) -> Record:
    owner, source = referenced_ids(event, capabilities, staff_link, lead_source_link)
    kind_type = target_type(event)
    fp = user_fingerprint(event, owner, source)
    converting = kind_type == "MEMBER" and link is not None and link.user_type == "PROSPECT"
    kind = "CONVERT_TO_MEMBER" if converting else f"UPSERT_{kind_type}"
    return _command(
        kind,
        event,
        fp,
        now,
        user=dict(event),
        staff_owner_receiver_id=owner,
        lead_source_receiver_id=source,
    )


def replan_user(
    latest: Mapping[str, Any],
    *,
    planned_fingerprint: str,
    capabilities: frozenset[Cap],
    clubs: Mapping[str, str],
    link: UserLink | None,
    staff_link: EntityLink | None,
    lead_source_link: EntityLink | None,
    now: dt.datetime,
) -> Plan:
    """A user planned again after a staff or lead-source link it references appeared, changed
    or went away: its latest planned InTouch state, at the same version, with today's links.

    Nothing when the receiver would see what the user's latest command already carries, when
    the receiver takes no such users, or when the link table applied a newer version (its
    own command carried the links of its time and is followed in its turn).
    """
    if latest["club_id"] not in clubs:
        return Plan(skipped="club no longer turned up")
    untakeable = _untakeable(target_type(latest), capabilities)
    if untakeable is not None:
        return untakeable
    if link is not None and latest["version"] < link.version:
        return Plan(skipped=f"newer version {link.version} applied")
    owner, source = referenced_ids(latest, capabilities, staff_link, lead_source_link)
    if user_fingerprint(latest, owner, source) == planned_fingerprint:
        return Plan(skipped=REPLAN_UNCHANGED)
    return Plan(
        commands=(_user_command(latest, capabilities, link, staff_link, lead_source_link, now),)
    )


def plan_staff_change(
    event: Mapping[str, Any],
    *,
    capabilities: frozenset[Cap],
    link: EntityLink | None,
    now: dt.datetime,
) -> Plan:
    """A staff change becomes a link attempt by email; the connector never writes staff."""
    if not capabilities & {Cap.STAFF_LIST, Cap.STAFF_BY_EMAIL}:
        return _skip(PlannerSkip.NO_STAFF_CALLS, "the receiver has no staff calls")
    fp = fingerprint({"email": normalize_email(event.get("email"))})
    # Every staff save attempts the match (the guide), even with the email unchanged.
    stale = _stale(event, link)
    if stale is not None:
        return stale
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
    now: dt.datetime,
) -> Plan:
    """A lead source change becomes a sync, or nothing when the receiver cannot take it."""
    if not capabilities & {Cap.LEAD_SOURCE_LIST, Cap.LEAD_SOURCE_CREATE}:
        return _skip(PlannerSkip.NO_LEAD_SOURCE_CALLS, "the receiver has no lead source calls")
    fp = fingerprint({"name": normalize_name(event["name"])})
    stale = _stale(event, link)
    if stale is not None:
        return stale
    renamed = link is not None and link.receiver_id is not None and fp != link.fingerprint
    if renamed and Cap.LEAD_SOURCE_UPDATE not in capabilities:
        # The guide: without an update call, no attempts at updates are made.
        return _skip(
            PlannerSkip.NO_LEAD_SOURCE_UPDATE,
            "rename not sent: the receiver has no lead source update call",
        )
    return Plan(commands=(_command("SYNC_LEAD_SOURCE", event, fp, now, lead_source=dict(event)),))
