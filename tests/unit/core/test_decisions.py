"""The sink's pure decisions: skip or run, which call, staff lookup, lead-source step."""

from __future__ import annotations

import datetime as dt
import functools
from typing import Any

import pytest

from adapters.base import Capability as Cap
from adapters.base import ReceiverPerson
from adapters.errors import (
    MisconfiguredError,
    PermanentError,
    ResponseShapeError,
    RetryableError,
)
from streams.core.decisions import (
    LeadSourceAction,
    LeadSourceMode,
    Reconciled,
    SkipReason,
    StaffLookup,
    UserCall,
    create_after_no_match,
    creates,
    decide_user_call,
    failed_call_status,
    idempotency_key,
    identity_problem,
    lead_source_mode,
    lead_source_step,
    left_nothing,
    marks_pending,
    may_repeat_blind,
    must_reconcile,
    person_from_command,
    reconcile_person,
    settle_delay,
    skip_user_command,
    staff_lookup,
    target_type,
    unlinked_reason,
)
from streams.core.model import Entity, EntityLink, Pending, Status, UserLink, entity_of, is_stale

FULL = frozenset(Cap)
MARKER = Pending("create_prospect", at=0.0)
NOW = dt.datetime(2026, 11, 27, tzinfo=dt.UTC)


def command(version: int = 2, fingerprint: str = "fp2", **extra: Any) -> dict[str, Any]:
    return {"version": version, "fingerprint": fingerprint, **extra}


# -- the version rule and entities --------------------------------------------------------------


def test_a_version_no_newer_than_the_applied_one_is_stale() -> None:
    link = UserLink(receiver_id="R1", version=3)
    assert is_stale(3, link)
    assert is_stale(2, link)
    assert not is_stale(4, link)
    assert not is_stale(0, None)
    assert is_stale(5, EntityLink("LS1", 5, "fp"))


def test_commands_and_outcomes_name_their_entity() -> None:
    assert entity_of({"kind": "LINK_STAFF"}) is Entity.STAFF
    assert entity_of({"kind": "SYNC_LEAD_SOURCE"}) is Entity.LEAD_SOURCE
    assert entity_of({"kind": "CONVERT_TO_MEMBER"}) is Entity.USER
    assert entity_of({"entity": "LEAD_SOURCE"}) is Entity.LEAD_SOURCE
    assert entity_of({}) is Entity.USER


# -- users -------------------------------------------------------------------------------------


def test_a_stale_user_command_is_skipped() -> None:
    link = UserLink(receiver_id="R1", version=3, fingerprint="old")
    assert skip_user_command(command(version=2), link) is SkipReason.STALE
    assert skip_user_command(command(version=3, fingerprint="old"), link) is SkipReason.STALE


def test_the_applied_version_planned_again_with_other_links_runs() -> None:
    # A re-plan after a staff or lead-source link moved: same version, another fingerprint.
    link = UserLink(receiver_id="R1", version=2, fingerprint="old")
    assert skip_user_command(command(version=2), link) is None


def test_a_command_the_receiver_already_has_is_skipped() -> None:
    link = UserLink(receiver_id="R1", version=1, fingerprint="fp2")
    assert skip_user_command(command(), link) is SkipReason.UNCHANGED


def test_the_same_fingerprint_without_a_receiver_record_still_runs() -> None:
    pending = UserLink(receiver_id=None, version=1, fingerprint="fp2", pending=MARKER)
    assert skip_user_command(command(), pending) is None
    assert skip_user_command(command(), None) is None
    assert skip_user_command(command(), UserLink("R1", "PROSPECT", 1, "other")) is None
    # A conversion of the same user is unsettled: the receiver may hold anything now.
    converting = UserLink("P1", "PROSPECT", 1, "fp2", pending=MARKER)
    assert skip_user_command(command(), converting) is None


def test_every_unsettled_creating_call_is_reconciled_first() -> None:
    assert must_reconcile(UserLink(receiver_id=None, pending=MARKER))
    # A conversion, or a member created beside the prospect, is unsettled with an ID linked.
    assert must_reconcile(UserLink(receiver_id="P1", user_type="PROSPECT", pending=MARKER))
    assert must_reconcile(EntityLink(None, -1, None, MARKER))
    assert not must_reconcile(UserLink(receiver_id="R1"))
    assert not must_reconcile(None)


def test_a_lookup_waits_until_an_unsettled_call_can_no_longer_land() -> None:
    marker = Pending("create_prospect", at=100.0)
    assert settle_delay(marker, 20.0, now=101.0, monotonic_now=0.0) == 19.0
    assert settle_delay(marker, 20.0, now=130.0, monotonic_now=0.0) == 0.0


def test_the_wait_counts_from_when_the_reader_noticed_the_marker_whatever_the_clocks() -> None:
    # Noticed 2 s ago on the reader's own clock: 18 s more, whether the writer's clock ran
    # an hour behind (the marker's time says it is long settled) or an hour ahead.
    now = 1_800_000_000.0
    for skew in (-3600.0, 0.0, 3600.0):
        marker = Pending("create_prospect", at=now - 2.0 + skew, noticed=500.0)
        assert settle_delay(marker, 20.0, now=now, monotonic_now=502.0) == 18.0
    old = Pending("create_prospect", at=now - 7200.0, noticed=500.0)
    assert settle_delay(old, 20.0, now=now, monotonic_now=530.0) == 0.0


def test_creating_calls_and_conversions_take_a_pending_marker() -> None:
    assert marks_pending(UserCall.CREATE_PROSPECT, None)
    assert marks_pending(UserCall.SAVE_MEMBER, None)
    assert marks_pending(UserCall.CONVERT, "P1")
    assert not marks_pending(UserCall.UPDATE_MEMBER, "M1")
    assert not marks_pending(UserCall.SAVE_PROSPECT, "P1")


def test_without_a_lookup_only_saves_and_deduplicated_calls_are_repeated_blind() -> None:
    assert may_repeat_blind(UserCall.SAVE_PROSPECT, takes_idempotency_keys=False)
    assert may_repeat_blind(UserCall.CREATE_PROSPECT, takes_idempotency_keys=True)
    assert not may_repeat_blind(UserCall.CREATE_MEMBER, takes_idempotency_keys=False)


def test_an_idempotency_key_is_stable_per_command_and_call() -> None:
    first = idempotency_key({"command_id": "c1"}, "create_prospect")
    assert first == idempotency_key({"command_id": "c1"}, "create_prospect")
    assert first != idempotency_key({"command_id": "c2"}, "create_prospect")
    assert first != idempotency_key({"command_id": "c1"}, "convert_prospect")


def test_a_newer_command_repeating_a_call_in_doubt_sends_that_calls_key() -> None:
    doubt = Pending("create_prospect", at=0.0, command_id="c1")
    first = idempotency_key({"command_id": "c1"}, "create_prospect")
    assert idempotency_key({"command_id": "c2"}, "create_prospect", doubt) == first
    # Another call, or a marker from before the command was kept: the command's own key.
    own = idempotency_key({"command_id": "c2"}, "create_member")
    assert idempotency_key({"command_id": "c2"}, "create_member", doubt) == own
    old = Pending("create_prospect", at=0.0)
    assert idempotency_key({"command_id": "c2"}, "create_prospect", old) != first


# -- reconcile: only a record provably ours is linked ------------------------------------------

OWNERS = {"R-Y": "Y", "R-X": "X"}


def owner(receiver_id: str) -> str | None:
    return OWNERS.get(receiver_id)


def reconcile(people: list[ReceiverPerson], *, external: bool = True, **kw: Any) -> Reconciled:
    return reconcile_person(
        people, "X2", "PROSPECT", stores_external_id=external, owner_of=owner, **kw
    )


def test_a_family_member_sharing_the_email_is_never_taken_for_us() -> None:
    sibling = ReceiverPerson("R-Y", external_id="Y", email="fam@x.com", user_type="prospect")
    assert reconcile([sibling]) == Reconciled()
    ours = ReceiverPerson("R-X2", external_id="X2", email="fam@x.com", user_type="prospect")
    assert reconcile([sibling, ours]) == Reconciled("R-X2")


def test_two_records_with_our_external_id_are_a_visible_problem() -> None:
    twins = [ReceiverPerson(f"R{n}", external_id="X2", user_type="prospect") for n in (1, 2)]
    result = reconcile(twins)
    assert result.receiver_id is None
    assert result.problem is not None and "R1, R2" in result.problem


def test_without_external_ids_one_unlinked_candidate_is_ours_and_two_are_a_problem() -> None:
    linked = ReceiverPerson("R-Y", email="fam@x.com", user_type="prospect")
    free = ReceiverPerson("R9", email="fam@x.com", user_type="prospect")
    other = ReceiverPerson("R10", email="fam@x.com", user_type="prospect")
    assert reconcile([linked], external=False) == Reconciled()
    assert reconcile([linked, free], external=False) == Reconciled("R9")
    result = reconcile([free, other], external=False)
    assert result.receiver_id is None and result.problem is not None


def test_a_record_with_our_id_but_linked_to_another_user_is_a_problem() -> None:
    taken = ReceiverPerson("R-X", external_id="X2", user_type="prospect")
    result = reconcile([taken])
    assert result.problem is not None and "linked to InTouch user X" in result.problem


def test_a_conversion_looks_for_the_member_not_the_prospect_it_came_from() -> None:
    prospect = ReceiverPerson("P1", external_id="X2", user_type="prospect")
    member = ReceiverPerson("M7", external_id="X2", user_type="member")
    find = functools.partial(
        reconcile_person, intouch_id="X2", target="MEMBER", stores_external_id=True,
        owner_of=lambda _: None, known="P1",
    )  # fmt: skip
    assert find([prospect]) == Reconciled()
    assert find([prospect, member]) == Reconciled("M7")
    untyped = ReceiverPerson("P1", external_id="X2")
    assert find([untyped]) == Reconciled()


def test_no_receiver_record_is_linked_to_two_entities() -> None:
    assert identity_problem("R1", "X", None) is None
    assert identity_problem("R1", "X", "X") is None
    problem = identity_problem("R1", "X", "Y")
    assert problem is not None and "R1" in problem and "Y" in problem and "X" in problem


@pytest.mark.parametrize(
    ("target", "rid", "linked", "caps", "expected"),
    [
        ("PROSPECT", None, None, FULL - {Cap.PROSPECT_SAVE}, (UserCall.CREATE_PROSPECT, None)),
        ("PROSPECT", "R1", "PROSPECT", FULL, (UserCall.UPDATE_PROSPECT, "R1")),
        ("PROSPECT", None, None, FULL, (UserCall.CREATE_PROSPECT, None)),
        ("PROSPECT", None, None, FULL - {Cap.PROSPECT_CREATE}, (UserCall.SAVE_PROSPECT, None)),
        ("PROSPECT", "R1", "PROSPECT", FULL - {Cap.PROSPECT_UPDATE},
         (UserCall.SAVE_PROSPECT, "R1")),
        ("MEMBER", "R1", "MEMBER", FULL - {Cap.MEMBER_SAVE}, (UserCall.UPDATE_MEMBER, "R1")),
        ("MEMBER", "R1", "PROSPECT", FULL, (UserCall.CONVERT, "R1")),
        ("MEMBER", "R1", "PROSPECT", FULL - {Cap.CONVERT_PROSPECT, Cap.MEMBER_SAVE},
         (UserCall.CREATE_MEMBER, None)),
    ],
)  # fmt: skip
def test_create_or_update_is_decided_from_the_link(
    target: str, rid: str | None, linked: str | None, caps: frozenset[Cap], expected: Any
) -> None:
    assert decide_user_call(target, rid, linked, caps) == expected


def test_only_calls_without_a_receiver_id_need_a_pending_marker() -> None:
    assert creates(UserCall.CREATE_PROSPECT, None)
    assert creates(UserCall.SAVE_MEMBER, None)
    assert not creates(UserCall.SAVE_MEMBER, "R1")
    assert not creates(UserCall.CONVERT, "R1")


def test_a_receiver_that_can_neither_create_nor_save_is_a_planning_error() -> None:
    from streams.exceptions import PlanningError

    with pytest.raises(PlanningError, match="cannot create members"):
        decide_user_call("MEMBER", None, None, frozenset({Cap.PROSPECT_CREATE}))
    with pytest.raises(PlanningError, match="cannot update prospects"):
        decide_user_call("PROSPECT", "R1", "PROSPECT", frozenset({Cap.PROSPECT_CREATE}))


def test_the_target_type_is_member_only_for_members() -> None:
    assert target_type({"user_type": "MEMBER"}) == "MEMBER"
    assert target_type({"user_type": "PROSPECT"}) == "PROSPECT"


def test_the_person_carries_every_field_inactive_status_and_resolved_links() -> None:
    user = {
        "first_name": "Pete", "last_name": "Prospect", "status": "INACTIVE",
        "user_type": "MEMBER", "company": "Acme", "intouch_id": "5001", "city": "Leeds",
    }  # fmt: skip
    person = person_from_command(
        {"user": user, "staff_owner_receiver_id": "9999", "lead_source_receiver_id": "LS1"}
    )
    assert person.status == "inactive"
    assert person.user_type == "member"
    assert person.company == "Acme"
    assert person.city == "Leeds"
    assert person.address2 is None
    assert person.intouch_id == "5001"
    assert (person.staff_owner_receiver_id, person.lead_source_receiver_id) == ("9999", "LS1")


# -- staff -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("email", "caps", "expected"),
    [
        ("a@club.com", FULL, StaffLookup.BY_EMAIL),
        ("a@club.com", FULL - {Cap.STAFF_BY_EMAIL}, StaffLookup.LIST),
        ("a@club.com", FULL - {Cap.STAFF_BY_EMAIL, Cap.STAFF_LIST}, StaffLookup.NONE),
        ("  ", FULL, StaffLookup.NONE),
        (None, FULL, StaffLookup.NONE),
    ],
)
def test_staff_are_looked_up_by_email_where_possible_else_listed(
    email: str | None, caps: frozenset[Cap], expected: StaffLookup
) -> None:
    assert staff_lookup(email, caps) is expected


def test_an_unlinked_staff_says_why() -> None:
    assert unlinked_reason("a@club.com") == "no receiver staff with this email"
    assert unlinked_reason(" ") == "staff has no email"


# -- lead sources ------------------------------------------------------------------------------

LIST, CREATE, UPDATE = Cap.LEAD_SOURCE_LIST, Cap.LEAD_SOURCE_CREATE, Cap.LEAD_SOURCE_UPDATE


def test_lead_source_modes_follow_capabilities() -> None:
    assert lead_source_mode(frozenset({LIST, CREATE})) is LeadSourceMode.LIST_AND_CREATE
    assert lead_source_mode(frozenset({LIST})) is LeadSourceMode.LIST_ONLY
    assert lead_source_mode(frozenset({CREATE})) is LeadSourceMode.CREATE_ONLY
    assert lead_source_mode(frozenset()) is None


@pytest.mark.parametrize(
    ("link", "caps", "action", "skip"),
    [
        (EntityLink("LS1", 2, "fp1"), FULL, LeadSourceAction.SKIP, SkipReason.STALE),
        (EntityLink("LS1", 1, "fp2"), FULL, LeadSourceAction.SKIP, SkipReason.NAME_UNCHANGED),
        (EntityLink("LS1", 1, "fp1"), FULL, LeadSourceAction.UPDATE, None),
        (EntityLink("LS1", 1, "fp1"), frozenset({LIST, CREATE}), LeadSourceAction.SKIP,
         SkipReason.NO_LEAD_SOURCE_UPDATE),
        (None, frozenset(), LeadSourceAction.SKIP, SkipReason.NO_LEAD_SOURCE_CALLS),
        (None, frozenset({CREATE}), LeadSourceAction.CREATE, None),
        (None, frozenset({LIST}), LeadSourceAction.LIST, None),
        (None, frozenset({LIST, CREATE}), LeadSourceAction.LIST, None),
        # Looked before and found nothing (no receiver ID): match or create again.
        (EntityLink(None, 1, "fp1"), frozenset({LIST, CREATE}), LeadSourceAction.LIST, None),
    ],
)  # fmt: skip
def test_the_first_lead_source_step(
    link: EntityLink | None,
    caps: frozenset[Cap],
    action: LeadSourceAction,
    skip: SkipReason | None,
) -> None:
    step = lead_source_step(command(version=2, fingerprint="fp2"), link, caps)
    assert (step.action, step.skip) == (action, skip)


def test_no_match_in_the_list_creates_only_where_the_receiver_can_create() -> None:
    assert create_after_no_match(frozenset({LIST, CREATE}))
    assert not create_after_no_match(frozenset({LIST}))


def test_only_an_answer_that_proves_nothing_was_made_voids_a_marker() -> None:
    assert left_nothing(RetryableError("429", maybe_applied=False, throttled=True))
    assert left_nothing(RetryableError("no connection", maybe_applied=False))
    assert left_nothing(PermanentError("HTTP 400", status=400))
    assert left_nothing(MisconfiguredError("HTTP 401", status=401))
    assert not left_nothing(RetryableError("timed out after sending"))
    assert not left_nothing(RetryableError("HTTP 503"))
    assert not left_nothing(ResponseShapeError("no id in the answer", status=201))
    assert not left_nothing(RuntimeError("a bug, not the receiver's answer"))
    applied_first = PermanentError("the follow-up's 400", status=400, maybe_applied=True)
    assert not left_nothing(applied_first)


def test_a_failed_creating_call_records_its_doubt_or_voids_its_marker() -> None:
    timed_out = RetryableError("timed out after sending")
    refused = PermanentError("HTTP 400", status=400)
    assert failed_call_status(timed_out, blind=False) is Status.UNKNOWN
    assert failed_call_status(timed_out, blind=True) is Status.UNKNOWN
    assert failed_call_status(refused, blind=False) is Status.NOT_APPLIED
    assert failed_call_status(refused, blind=True) is None  # the earlier doubt is still there
    assert failed_call_status(ResponseShapeError("unreadable", status=201), blind=False) is None
    assert failed_call_status(RuntimeError("a bug"), blind=False) is None
