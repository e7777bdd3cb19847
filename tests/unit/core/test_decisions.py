"""The sink's pure decisions: skip or run, which call, staff lookup, lead-source step."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from adapters.base import Capability as Cap
from streams.core.decisions import (
    LeadSourceAction,
    LeadSourceMode,
    SkipReason,
    StaffLookup,
    UserCall,
    create_after_no_match,
    creates,
    decide_user_call,
    lead_source_mode,
    lead_source_step,
    must_reconcile,
    person_from_command,
    skip_user_command,
    staff_lookup,
    target_type,
    unlinked_reason,
)
from streams.core.model import Entity, EntityLink, UserLink, entity_of, is_stale

FULL = frozenset(Cap)
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
    link = UserLink(receiver_id="R1", version=2, fingerprint="old")
    assert skip_user_command(command(version=2), link) is SkipReason.STALE


def test_a_command_the_receiver_already_has_is_skipped() -> None:
    link = UserLink(receiver_id="R1", version=1, fingerprint="fp2")
    assert skip_user_command(command(), link) is SkipReason.UNCHANGED


def test_the_same_fingerprint_without_a_receiver_record_still_runs() -> None:
    pending = UserLink(receiver_id=None, version=1, fingerprint="fp2", pending_create=True)
    assert skip_user_command(command(), pending) is None
    assert skip_user_command(command(), None) is None
    assert skip_user_command(command(), UserLink("R1", "PROSPECT", 1, "other")) is None


def test_only_an_unsettled_create_with_a_lookup_call_is_reconciled_first() -> None:
    pending = UserLink(receiver_id=None, pending_create=True)
    assert must_reconcile(pending, FULL)
    assert not must_reconcile(pending, FULL - {Cap.PERSON_LOOKUP})
    assert not must_reconcile(UserLink(receiver_id="R1", pending_create=True), FULL)
    assert not must_reconcile(UserLink(receiver_id=None), FULL)
    assert not must_reconcile(None, FULL)


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
