"""The planner's pure decisions: which command a change becomes, or why none."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from adapters.base import Capability as Cap
from streams.core.model import Entity, EntityLink, UserLink
from streams.core.planning import (
    REPLAN_UNCHANGED,
    PlannerSkip,
    entity_of_event,
    plan_lead_source_change,
    plan_staff_change,
    plan_user_change,
    replan_user,
    skipped_change,
    user_fingerprint,
)
from streams.exceptions import UnknownClubError

NOW = dt.datetime(2026, 11, 27, tzinfo=dt.UTC)
FULL = frozenset(Cap)
CLUBS = {"7": "C7"}


def user(**overrides: Any) -> dict[str, Any]:
    event = {
        "event_id": "e1", "occurred_at": NOW, "client_id": "100", "club_id": "7",
        "intouch_id": "5001", "version": 1, "user_type": "PROSPECT", "status": "ACTIVE",
        "first_name": "Pete", "last_name": "Prospect", "email": "pete@example.com",
        "birthdate": None, "gender": None, "address1": None, "address2": None, "city": None,
        "zipcode": None, "state": None, "country": None, "mobile_phone": None,
        "home_phone": None, "work_phone": None, "company": None, "staff_owner_id": "1111",
        "lead_source_id": "2222",
    }  # fmt: skip
    event.update(overrides)
    return event


def plan(event: dict[str, Any], caps: frozenset[Cap] = FULL, **links: Any) -> Any:
    return plan_user_change(
        event,
        capabilities=caps,
        clubs=CLUBS,
        link=links.get("link"),
        staff_link=links.get("staff"),
        lead_source_link=links.get("source"),
        now=NOW,
    )


def test_a_new_prospect_becomes_one_upsert_with_owner_and_lead_source() -> None:
    result = plan(user(), staff=EntityLink("9999", 1, "f"), source=EntityLink("LS1", 1, "f"))
    (command,) = result.commands
    assert command["kind"] == "UPSERT_PROSPECT"
    assert command["staff_owner_receiver_id"] == "9999"
    assert command["lead_source_receiver_id"] == "LS1"
    assert command["user"]["first_name"] == "Pete"


def test_an_unlinked_owner_sends_the_prospect_without_owner() -> None:
    (command,) = plan(user(), staff=EntityLink(None, 1, "f")).commands
    assert command["staff_owner_receiver_id"] is None
    (command,) = plan(user(), staff=None).commands
    assert command["staff_owner_receiver_id"] is None


def test_a_receiver_without_staff_owner_support_gets_no_owner() -> None:
    caps = FULL - {Cap.STAFF_OWNER}
    (command,) = plan(user(), caps, staff=EntityLink("9999", 1, "f")).commands
    assert command["staff_owner_receiver_id"] is None


def test_stale_versions_drop_and_an_unchanged_change_is_left_to_the_sink() -> None:
    fp = user_fingerprint(user(), None, None)
    link = UserLink("R1", "PROSPECT", 1, fp)
    stale = plan(user(version=1, first_name="X"), link=link)
    assert stale.skipped is not None and stale.skipped.startswith("stale")
    assert stale.skip is PlannerSkip.STALE  # a closed set: the metric's label
    # The same values again still make a command: the sink decides, in order, from the link
    # table, whether the receiver has it (a change back to it may follow one in flight).
    (command,) = plan(user(version=2), link=link).commands
    assert command["fingerprint"] == fp


def test_a_skipped_change_names_the_change_it_skips() -> None:
    event = user(version=4)
    skipped = skipped_change(event, Entity.USER)
    assert skipped["command_id"] == f"skipped:{event['event_id']}"
    assert (skipped["entity"], skipped["intouch_id"], skipped["version"]) == ("USER", "5001", 4)


def test_a_prospect_becoming_a_member_is_a_conversion() -> None:
    link = UserLink("R1", "PROSPECT", 1, "old")
    (command,) = plan(user(version=2, user_type="MEMBER"), link=link).commands
    assert command["kind"] == "CONVERT_TO_MEMBER"
    (command,) = plan(user(user_type="MEMBER")).commands
    assert command["kind"] == "UPSERT_MEMBER"


def test_an_unknown_club_is_refused() -> None:
    with pytest.raises(UnknownClubError, match="club '8'"):
        plan(user(club_id="8"))


def test_capabilities_filter_what_is_planned() -> None:
    no_prospects = FULL - {Cap.PROSPECT_CREATE, Cap.PROSPECT_SAVE}
    no = plan(user(), no_prospects)
    assert (no.skipped, no.skip) == (
        "the receiver takes no prospects",
        PlannerSkip.NO_PROSPECT_CALLS,
    )
    no_staff = FULL - {Cap.STAFF_LIST, Cap.STAFF_BY_EMAIL}
    staff = {**user(), "email": "a@b"}
    assert plan_staff_change(staff, capabilities=no_staff, link=None, now=NOW).skipped
    assert plan_staff_change(staff, capabilities=FULL, link=None, now=NOW).commands


def test_lead_source_renames_go_only_where_an_update_call_exists() -> None:
    event = {"event_id": "e", "client_id": "100", "intouch_id": "2222", "version": 2,
             "name": "Newspaper Ads", "club_id": None, "occurred_at": NOW}  # fmt: skip
    linked = EntityLink("LS1", 1, "old-name")
    assert plan_lead_source_change(event, capabilities=FULL, link=linked, now=NOW).commands
    no_update = FULL - {Cap.LEAD_SOURCE_UPDATE}
    skipped = plan_lead_source_change(event, capabilities=no_update, link=linked, now=NOW)
    assert skipped.skipped is not None and "no lead source update call" in skipped.skipped


def test_a_staff_user_event_is_a_staff_change() -> None:
    assert entity_of_event("UserChanged", user()) is Entity.USER
    assert entity_of_event("UserChanged", user(user_type="STAFF")) is Entity.STAFF
    assert entity_of_event("StaffChanged", {}) is Entity.STAFF
    assert entity_of_event("LeadSourceChanged", {}) is Entity.LEAD_SOURCE


def test_every_staff_save_attempts_the_match_even_with_the_email_unchanged() -> None:
    staff = {
        "event_id": "s2", "occurred_at": NOW, "client_id": "100", "club_id": None,
        "intouch_id": "1111", "version": 2, "first_name": "John", "last_name": "Staff",
        "email": "jstaff@club.com", "status": "ACTIVE",
    }  # fmt: skip
    linked = EntityLink(None, 1, "same-email")
    (command,) = plan_staff_change(staff, capabilities=FULL, link=linked, now=NOW).commands
    assert command["kind"] == "LINK_STAFF"


# -- users planned again after a link they reference moved -------------------------------------


def replan(event: dict[str, Any], planned: str, caps: frozenset[Cap] = FULL, **links: Any) -> Any:
    return replan_user(
        event,
        planned_fingerprint=planned,
        capabilities=caps,
        clubs=CLUBS,
        link=links.get("link"),
        staff_link=links.get("staff"),
        lead_source_link=links.get("source"),
        now=NOW,
    )


def test_a_user_sent_without_owner_is_planned_again_with_it_at_the_same_version() -> None:
    event = user(version=3)
    (sent,) = plan(event).commands  # neither link existed yet
    applied = UserLink("R1", "PROSPECT", 3, sent["fingerprint"])
    staff, source = EntityLink("9999", 1, "f"), EntityLink("LS1", 1, "f")
    (again,) = replan(event, sent["fingerprint"], link=applied, staff=staff, source=source).commands
    assert (again["kind"], again["version"]) == ("UPSERT_PROSPECT", 3)
    assert (again["staff_owner_receiver_id"], again["lead_source_receiver_id"]) == ("9999", "LS1")
    assert again["fingerprint"] != sent["fingerprint"]
    assert again["command_id"] != sent["command_id"]
    # A link that went away takes the owner away again.
    (gone,) = replan(event, again["fingerprint"], link=applied, source=source).commands
    assert gone["staff_owner_receiver_id"] is None


def test_a_user_whose_receiver_values_stay_the_same_is_not_planned_again() -> None:
    staff = EntityLink("9999", 1, "f")
    (sent,) = plan(user(), staff=staff).commands
    assert not replan(user(), sent["fingerprint"], staff=staff).commands
    assert replan(user(), sent["fingerprint"], staff=staff).skipped == REPLAN_UNCHANGED
    # A receiver that takes no owner sees nothing new when the staff gets linked.
    (bare,) = plan(user(), frozenset(FULL - {Cap.STAFF_OWNER})).commands
    unowned = replan(user(), bare["fingerprint"], frozenset(FULL - {Cap.STAFF_OWNER}), staff=staff)
    assert not unowned.commands


def test_a_replan_never_overwrites_a_newer_applied_version() -> None:
    newer = UserLink("R1", "PROSPECT", 5, "fp5")
    result = replan(user(version=4), "fp4", link=newer, staff=EntityLink("9999", 1, "f"))
    assert not result.commands and result.skipped is not None


def test_a_member_planned_again_before_its_conversion_applied_still_converts() -> None:
    prospect = UserLink("R1", "PROSPECT", 1, "fp1")
    event = user(version=2, user_type="MEMBER")
    (again,) = replan(event, "fp-old", link=prospect, staff=EntityLink("9999", 1, "f")).commands
    assert again["kind"] == "CONVERT_TO_MEMBER"
