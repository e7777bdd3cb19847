"""Pure decisions of the sink: skip or run a command, which receiver call it makes, and how."""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from adapters.base import Capability as Cap
from adapters.base import Person, ReceiverPerson
from adapters.errors import AdapterError, RetryableError
from streams.core.matching import normalize_email
from streams.core.model import PERSON_FIELDS, EntityLink, Pending, Status, UserLink, is_stale
from streams.exceptions import PlanningError


class SkipReason(enum.StrEnum):
    """Why the sink made no call for a command (the outcome's message; a closed set)."""

    STALE = "stale or already applied"
    UNCHANGED = "the receiver has this already"
    NAME_UNCHANGED = "name unchanged"
    NO_LEAD_SOURCE_UPDATE = "no lead source update call"
    NO_LEAD_SOURCE_CALLS = "the receiver has no lead source calls"
    SUPERSEDED = "superseded: a newer version waits parked behind it"


# -- users -----------------------------------------------------------------------------------


class UserCall(enum.Enum):
    """The receiver call a user command makes, decided when it runs."""

    SAVE_PROSPECT = "save_prospect"
    CREATE_PROSPECT = "create_prospect"
    UPDATE_PROSPECT = "update_prospect"
    SAVE_MEMBER = "save_member"
    CREATE_MEMBER = "create_member"
    UPDATE_MEMBER = "update_member"
    CONVERT = "convert_prospect"


def target_type(user: Mapping[str, Any]) -> str:
    """PROSPECT or MEMBER: what the receiver record of this InTouch user is."""
    return "MEMBER" if user["user_type"] == "MEMBER" else "PROSPECT"


def skip_user_command(command: Mapping[str, Any], link: UserLink | None) -> SkipReason | None:
    """Stale, or the receiver already holds exactly this (the fingerprint covers type, club,
    owner and lead source); None when the command must run. While a creating call is
    unsettled, what the receiver holds is unknown: nothing is taken as unchanged.

    The applied version itself, with another fingerprint, is not stale: it is that version
    planned again with links that changed since (commands of one entity run in log order).
    """
    if is_stale(command["version"], link):
        assert link is not None
        if command["version"] < link.version or command["fingerprint"] == link.fingerprint:
            return SkipReason.STALE
    if (
        link is not None
        and link.receiver_id
        and link.pending is None
        and link.fingerprint == command["fingerprint"]
    ):
        return SkipReason.UNCHANGED
    return None


def must_reconcile(link: UserLink | EntityLink | None) -> bool:
    """A creating call started and never settled (crash, timeout, lost answer): its outcome
    is unknown, so the receiver is asked before anything is created again."""
    return link is not None and link.pending is not None


def settle_delay(pending: Pending, window: float, *, now: float, monotonic_now: float) -> float:
    """Seconds to wait before a lookup can be trusted: the unsettled call may still land up to
    `window` (the call's timeout and a grace) after it started.

    Counted from when this process noticed the marker when it knows (`monotonic_now` on the
    same clock): the marker's own time is its writer's clock, and a reader whose clock runs
    ahead of the writer's would look too early (and a create still under way would be made
    twice), one whose clock runs behind would wait for as long as the difference. Else from
    the marker's time (`now`, epoch seconds).
    """
    if pending.noticed is not None:
        return max(0.0, pending.noticed + window - monotonic_now)
    return max(0.0, pending.at + window - now)


@dataclass(frozen=True)
class Reconciled:
    """What a reconcile lookup proved: the receiver ID that is ours, or a problem to show."""

    receiver_id: str | None = None
    problem: str | None = None


def reconcile_person(
    candidates: Sequence[ReceiverPerson],
    intouch_id: str,
    target: str,
    *,
    stores_external_id: bool,
    owner_of: Callable[[str], str | None],
    known: str | None = None,
) -> Reconciled:
    """The one candidate that is provably InTouch user `intouch_id`'s `target` record.

    Where the receiver keeps our ID, only a record carrying it counts; where it does not, a
    record linked to no other user counts, and only when it is the one such candidate. Two
    candidates, or one linked to someone else, is a problem, never a link. `known` is the
    prospect record this user is linked to; while converting, it is not the member sought.
    """
    kind = target.lower()

    def may_be_ours(person: ReceiverPerson) -> bool:
        if person.user_type is not None and person.user_type != kind:
            return False
        if person.user_type is None and known is not None and person.id == known:
            return False  # untyped, and the very prospect we are converting away from
        if stores_external_id:
            return person.external_id == intouch_id
        return owner_of(person.id) in (None, intouch_id)

    ours = [p for p in candidates if may_be_ours(p)]
    if not ours:
        return Reconciled()
    if len(ours) > 1:
        ids = ", ".join(sorted(p.id for p in ours))
        return Reconciled(
            problem=f"{len(ours)} receiver {kind}s could be InTouch user {intouch_id} "
            f"({ids}); linking none"
        )
    found = ours[0].id
    problem = identity_problem(found, intouch_id, owner_of(found))
    return Reconciled(problem=problem) if problem else Reconciled(found)


def identity_problem(receiver_id: str, intouch_id: str, owner: str | None) -> str | None:
    """A receiver record is linked to at most one InTouch entity: the problem when `owner`,
    the entity it is linked to, is another one."""
    if owner is None or owner == intouch_id:
        return None
    return (
        f"receiver record {receiver_id} is linked to InTouch user {owner}; "
        f"not linking it to {intouch_id} too"
    )


def marks_pending(call: UserCall, receiver_id: str | None) -> bool:
    """Whether the call may create a record (a new prospect or member, or the member of a
    conversion), and so needs a durable pending marker before it starts."""
    return creates(call, receiver_id) or call is UserCall.CONVERT


def may_repeat_blind(call: UserCall, takes_idempotency_keys: bool) -> bool:
    """After an unknown outcome, with no lookup to ask: only a save (an upsert) or a call the
    receiver deduplicates by key is safe to send again."""
    return takes_idempotency_keys or call in (UserCall.SAVE_PROSPECT, UserCall.SAVE_MEMBER)


def left_nothing(error: BaseException) -> bool:
    """Whether a creating call's failure proves the receiver made nothing (refused it, 429,
    no connection, a value that could not be rendered): its pending marker is then void
    (a NOT_APPLIED outcome), or with no lookup and no idempotency keys every later attempt
    would have to fail as "may have made a record". An answer that could not be read, a
    timeout after sending, or an error that is not the adapter's keeps the marker."""
    return isinstance(error, AdapterError) and not error.maybe_applied


def failed_call_status(error: BaseException, *, blind: bool) -> Status | None:
    """The outcome a creating call's failure after its marker writes: UNKNOWN when the
    receiver may have applied it (reconciled before anything is created again), NOT_APPLIED
    when it provably made nothing (`left_nothing`) and no earlier doubt is left (a `blind`
    repeat keeps the marker, for the doubt it did not settle); else none."""
    if isinstance(error, RetryableError) and error.maybe_applied:
        return Status.UNKNOWN
    if left_nothing(error) and not blind:
        return Status.NOT_APPLIED
    return None


def idempotency_key(command: Mapping[str, Any], call: str, pending: Pending | None = None) -> str:
    """The same for every attempt of one command's call, and only for that; while an
    earlier call of that name is in doubt (`pending`), the key that call was sent with, so
    the receiver deduplicates a repeat from a newer command against it."""
    origin = command["command_id"]
    if pending is not None and pending.call == call and pending.command_id:
        origin = pending.command_id
    return hashlib.sha256(f"{origin}/{call}".encode()).hexdigest()[:32]


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
    if receiver_id is None and Cap(f"{prefix.lower()}_create") in capabilities:
        return UserCall[f"CREATE_{prefix}"], None
    if receiver_id is not None and Cap(f"{prefix.lower()}_update") in capabilities:
        return UserCall[f"UPDATE_{prefix}"], receiver_id
    if Cap(f"{prefix.lower()}_save") in capabilities:
        return UserCall[f"SAVE_{prefix}"], receiver_id
    raise PlanningError(
        f"the receiver cannot {'create' if receiver_id is None else 'update'} {prefix.lower()}s"
    )


def creates(call: UserCall, receiver_id: str | None) -> bool:
    """Whether the call may create a record (and so needs a durable pending marker first)."""
    return call is not UserCall.CONVERT and receiver_id is None


_MAPPED_FIELDS = frozenset({"first_name", "last_name", "status"})


def person_from_command(command: Mapping[str, Any]) -> Person:
    """The person a user command sends, with the owner and lead source it resolved."""
    user = command["user"]
    # The guide's optional fields carry over by name; the mapped ones are set below.
    optional = {name: user.get(name) for name in PERSON_FIELDS if name not in _MAPPED_FIELDS}
    return Person(
        first_name=user["first_name"],
        last_name=user["last_name"],
        status="inactive" if user["status"] == "INACTIVE" else "active",
        user_type="member" if user["user_type"] == "MEMBER" else "prospect",
        intouch_id=user["intouch_id"],
        staff_owner_receiver_id=command.get("staff_owner_receiver_id"),
        lead_source_receiver_id=command.get("lead_source_receiver_id"),
        **optional,
    )


# -- staff -----------------------------------------------------------------------------------


class StaffLookup(enum.Enum):
    """How a staff command finds the receiver's staff (the call's name in outcomes)."""

    BY_EMAIL = "find_staff_by_email"
    LIST = "list_staff"
    NONE = "none"


def staff_lookup(email: str | None, capabilities: frozenset[Cap]) -> StaffLookup:
    """By email where the receiver has that call, else its whole list; nothing without email."""
    if normalize_email(email) is None:
        return StaffLookup.NONE
    if Cap.STAFF_BY_EMAIL in capabilities:
        return StaffLookup.BY_EMAIL
    if Cap.STAFF_LIST in capabilities:
        return StaffLookup.LIST
    return StaffLookup.NONE


def unlinked_reason(email: str | None) -> str:
    """The message of an UNLINKED staff outcome."""
    return "no receiver staff with this email" if normalize_email(email) else "staff has no email"


# -- lead sources ----------------------------------------------------------------------------


class LeadSourceMode(enum.Enum):
    """The guide's three ways to sync a lead source."""

    LIST_AND_CREATE = "list+create"
    LIST_ONLY = "list only"
    CREATE_ONLY = "create only"


def lead_source_mode(capabilities: frozenset[Cap]) -> LeadSourceMode | None:
    """The receiver's lead-source mode, or None when it has no lead-source calls."""
    can_list = Cap.LEAD_SOURCE_LIST in capabilities
    can_create = Cap.LEAD_SOURCE_CREATE in capabilities
    if can_list and can_create:
        return LeadSourceMode.LIST_AND_CREATE
    if can_list:
        return LeadSourceMode.LIST_ONLY
    if can_create:
        return LeadSourceMode.CREATE_ONLY
    return None


class LeadSourceAction(enum.Enum):
    """What a lead-source command does first."""

    SKIP = "skip"
    UPDATE = "update_lead_source"
    LIST = "list_lead_sources"
    CREATE = "create_lead_source"


@dataclass(frozen=True)
class LeadSourceStep:
    """The first step of a lead-source command, with the reason when it is a skip."""

    action: LeadSourceAction
    skip: SkipReason | None = None


def lead_source_step(
    command: Mapping[str, Any], link: EntityLink | None, capabilities: frozenset[Cap]
) -> LeadSourceStep:
    """Skip, rename the linked source, list to match (list+create, list only), or create."""
    if is_stale(command["version"], link):
        return LeadSourceStep(LeadSourceAction.SKIP, SkipReason.STALE)
    if link is not None and link.receiver_id is not None:
        if link.fingerprint == command["fingerprint"]:
            return LeadSourceStep(LeadSourceAction.SKIP, SkipReason.NAME_UNCHANGED)
        if Cap.LEAD_SOURCE_UPDATE in capabilities:
            return LeadSourceStep(LeadSourceAction.UPDATE)
        return LeadSourceStep(LeadSourceAction.SKIP, SkipReason.NO_LEAD_SOURCE_UPDATE)
    mode = lead_source_mode(capabilities)
    if mode is None:
        return LeadSourceStep(LeadSourceAction.SKIP, SkipReason.NO_LEAD_SOURCE_CALLS)
    if mode is LeadSourceMode.CREATE_ONLY:
        return LeadSourceStep(LeadSourceAction.CREATE)
    return LeadSourceStep(LeadSourceAction.LIST)


def create_after_no_match(capabilities: frozenset[Cap]) -> bool:
    """After a list found no match: create (list+create), or fail visibly (list only)."""
    return lead_source_mode(capabilities) is LeadSourceMode.LIST_AND_CREATE


def no_match_message(name: str) -> str:
    """The FAILED outcome's message when a list-only receiver has no such lead source."""
    return f"no lead source {name!r} in the receiver, which cannot create one"
