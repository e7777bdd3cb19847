"""The pipeline's pure decisions: plans, create vs update, matching, backoff, ordered acks."""

from __future__ import annotations

import asyncio
import datetime as dt
import random
from typing import Any

import pytest

from adapters.base import Capability as Cap
from adapters.base import ReceiverLeadSource, ReceiverStaff
from streams.planning import (
    EntityLink,
    LeadSourceMode,
    UnknownClubError,
    UserCall,
    UserLink,
    creates,
    decide_user_call,
    lead_source_mode,
    match_lead_source,
    match_staff,
    person_from_command,
    plan_lead_source_change,
    plan_staff_change,
    plan_user_change,
    user_fingerprint,
)
from streams.sink import KeyedLanes, OrderedAcks, backoff_delay

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
        last_sent=links.get("last_sent"),
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


def test_nothing_changed_since_the_last_command_is_a_no_op_and_stale_versions_drop() -> None:
    fp = user_fingerprint(user(), None, None)
    link = UserLink("R1", "PROSPECT", 1, fp)
    skipped = plan(user(version=2), link=link, last_sent=fp).skipped
    assert skipped == "no change the receiver would see"
    assert plan(user(version=1, first_name="X"), link=link).skipped.startswith("stale")
    assert plan(user(version=2, first_name="Peter"), link=link, last_sent=fp).commands


def test_a_change_back_to_the_applied_state_is_sent_while_another_is_in_flight() -> None:
    # Applied: v1 without owner. Planned, not yet applied: v2 with owner 9999.
    # v3 drops the owner again: it equals what is applied, not what was last sent.
    applied = user_fingerprint(user(), None, None)
    in_flight = user_fingerprint(user(), "9999", None)
    link = UserLink("R1", "PROSPECT", 1, applied)
    (command,) = plan(user(version=3), link=link, last_sent=in_flight).commands
    assert command["staff_owner_receiver_id"] is None


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
    assert plan(user(), no_prospects).skipped == "the receiver takes no prospects"
    no_staff = FULL - {Cap.STAFF_LIST, Cap.STAFF_BY_EMAIL}
    staff = {**user(), "email": "a@b"}
    assert plan_staff_change(
        staff, capabilities=no_staff, link=None, last_sent=None, now=NOW
    ).skipped
    assert plan_staff_change(staff, capabilities=FULL, link=None, last_sent=None, now=NOW).commands


def test_lead_source_renames_go_only_where_an_update_call_exists() -> None:
    event = {"event_id": "e", "client_id": "100", "intouch_id": "2222", "version": 2,
             "name": "Newspaper Ads", "club_id": None, "occurred_at": NOW}  # fmt: skip
    linked = EntityLink("LS1", 1, "old-name")
    assert plan_lead_source_change(
        event, capabilities=FULL, link=linked, last_sent=None, now=NOW
    ).commands
    no_update = FULL - {Cap.LEAD_SOURCE_UPDATE}
    skipped = plan_lead_source_change(
        event, capabilities=no_update, link=linked, last_sent=None, now=NOW
    )
    assert skipped.skipped is not None and "no lead source update call" in skipped.skipped


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


def test_staff_match_on_trimmed_case_insensitive_email() -> None:
    staff = [ReceiverStaff("9998", "other@club.com"), ReceiverStaff("9999", "JStaff@Club.com ")]
    match = match_staff("  jstaff@club.com", staff)
    assert match is not None and match.id == "9999"
    assert match_staff("nobody@club.com", staff) is None
    assert match_staff(None, staff) is None


def test_lead_source_match_is_case_insensitive_and_modes_follow_capabilities() -> None:
    sources = [ReceiverLeadSource("LS1", "Newspaper")]
    assert match_lead_source("newspaper", sources) == sources[0]
    assert match_lead_source("Radio", sources) is None
    lists, creates_ = Cap.LEAD_SOURCE_LIST, Cap.LEAD_SOURCE_CREATE
    assert lead_source_mode(frozenset({lists, creates_})) is LeadSourceMode.LIST_AND_CREATE
    assert lead_source_mode(frozenset({lists})) is LeadSourceMode.LIST_ONLY
    assert lead_source_mode(frozenset({creates_})) is LeadSourceMode.CREATE_ONLY
    assert lead_source_mode(frozenset()) is None


def test_the_person_carries_every_field_and_inactive_status() -> None:
    (command,) = plan(user(status="INACTIVE", company="Acme", address2=None)).commands
    person = person_from_command(command)
    assert person.status == "inactive"
    assert person.company == "Acme"
    assert person.intouch_id == "5001"


def test_backoff_grows_is_capped_jittered_and_honours_retry_after() -> None:
    rng = random.Random(1)
    delays = [backoff_delay(n, base=0.1, cap=2.0, rng=rng) for n in range(1, 10)]
    assert all(0.05 <= d <= 2.0 for d in delays)
    assert delays[-1] >= 1.0
    assert backoff_delay(1, base=0.1, cap=2.0, retry_after=5.0, rng=rng) == 5.0


def test_acks_are_released_only_as_a_contiguous_prefix() -> None:
    acks: OrderedAcks[str, int] = OrderedAcks()
    for offset in (10, 11, 12):
        acks.track("tp", offset, offset)
    assert acks.complete("tp", 11) == []
    assert acks.complete("tp", 12) == []
    assert acks.lowest_unfinished("tp") == 10
    assert acks.complete("tp", 10) == [10, 11, 12]
    assert acks.in_flight() == 0


def test_lanes_keep_each_key_in_order_and_run_keys_concurrently() -> None:
    async def scenario() -> tuple[list[str], list[str], int]:
        order: list[str] = []
        done: list[str] = []
        gate = asyncio.Event()
        finished = asyncio.Event()
        running = 0
        peak = 0

        async def run(item: str) -> None:
            nonlocal running, peak
            running += 1
            peak = max(peak, running)
            if item == "a1":
                await gate.wait()  # a slow first command of key a
            order.append(item)
            running -= 1

        async def on_done(item: str) -> None:
            done.append(item)
            if item == "b2":
                gate.set()
            if len(done) == 4:
                finished.set()

        lanes = KeyedLanes(8, run, on_done)
        for key, item in [(b"a", "a1"), (b"b", "b1"), (b"a", "a2"), (b"b", "b2")]:
            await lanes.submit(key, item)
        await asyncio.wait_for(finished.wait(), timeout=10)
        await lanes.close()
        return order, done, peak

    order, done, peak = asyncio.run(scenario())
    assert sorted(done) == ["a1", "a2", "b1", "b2"]
    assert order.index("a1") < order.index("a2")
    assert order.index("b1") < order.index("b2")
    assert order.index("b2") < order.index("a1")  # b did not wait for slow a
    assert peak >= 2
