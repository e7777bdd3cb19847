"""The seeded scenario, the oracle of the receiver's final state, and the diff against it."""

from __future__ import annotations

import copy
import datetime as dt
import itertools
from collections import Counter
from collections.abc import Sequence
from typing import Any

import pytest

from adapters.base import Capability as Cap
from adapters.reference import ReceiverMode
from adapters.reference.store import ReceiverStore
from demo.compare import STATE_PROFILE, MismatchKind, compare, receiver_fields
from demo.oracle import (
    ExpectedState,
    ReceiverRules,
    expected_receiver_state,
    profile_named,
)
from demo.people import (
    EXAMPLE_LEAD_SOURCE_INTOUCH_ID,
    EXAMPLE_PROSPECT_INTOUCH_ID,
    EXAMPLE_STAFF_INTOUCH_ID,
    EXAMPLE_STAFF_RECEIVER_ID,
)
from demo.scenario import InboundEvent, Scenario, build_scenario
from streams.avro.codec import Codecs
from streams.avro.registry import FileRegistry
from streams.core.matching import normalize_email

CLIENT = "100"
CLUBS = ["7", "8", "9"]
T0 = dt.datetime(2026, 3, 2, 8, 0, tzinfo=dt.UTC)
ENVELOPE = {"event_id", "occurred_at", "version"}


@pytest.fixture(scope="module")
def scenario() -> Scenario:
    return build_scenario(42, 600, CLIENT, CLUBS)


# -- the scenario ------------------------------------------------------------------------------


def test_same_seed_same_scenario_other_seed_other_scenario() -> None:
    first = build_scenario(7, 400, CLIENT, CLUBS)
    assert first == build_scenario(7, 400, CLIENT, CLUBS)
    assert first.events != build_scenario(8, 400, CLIENT, CLUBS).events


@pytest.mark.parametrize("events", [10, 11, 300, 5000])
def test_event_count_is_exact_and_reference_share_small(events: int) -> None:
    scenario = build_scenario(1, events, CLIENT, CLUBS)
    assert len(scenario.events) == events
    reference = len(scenario.phase("reference"))
    assert len(scenario.phase("users")) == events - reference
    assert 6 <= reference <= 200
    if events >= 300:
        assert reference <= 0.1 * events


def test_too_few_events_or_no_club_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 10"):
        build_scenario(1, 9, CLIENT, CLUBS)
    with pytest.raises(ValueError, match="club"):
        build_scenario(1, 100, CLIENT, [])


def test_versions_strictly_increase_and_ids_are_unique(scenario: Scenario) -> None:
    last: dict[tuple[str, str], int] = {}
    for event in scenario.events:
        key = (event.entity, event.intouch_id)
        assert event.version > last.get(key, 0), key
        last[key] = event.version
    assert len({e.value["event_id"] for e in scenario.events}) == len(scenario.events)
    times = [e.value["occurred_at"] for e in scenario.events]
    assert times == sorted(times)
    assert all(t.tzinfo is not None for t in times)


def test_reference_phase_comes_first_and_users_refer_only_to_it(scenario: Scenario) -> None:
    phases = [e.phase for e in scenario.events]
    assert phases == sorted(phases)  # "reference" < "users"
    assert {e.entity for e in scenario.phase("reference")} == {"STAFF", "LEAD_SOURCE"}
    assert {e.entity for e in scenario.phase("users")} == {"USER"}
    staff, sources = set(scenario.latest("STAFF")), set(scenario.latest("LEAD_SOURCE"))
    for user in (e.value for e in scenario.phase("users")):
        assert user["staff_owner_id"] in staff | {None}
        assert user["lead_source_id"] in sources | {None}


def test_the_guides_example_is_there_literally(scenario: Scenario) -> None:
    assert (EXAMPLE_STAFF_RECEIVER_ID, "jstaff@club.com", "John Staff") in scenario.receiver_staff
    john = scenario.history("STAFF")[EXAMPLE_STAFF_INTOUCH_ID][0]
    assert (john["first_name"], john["last_name"]) == ("John", "Staff")
    assert john["email"] != "jstaff@club.com"  # sent with other case and spaces
    assert normalize_email(john["email"]) == "jstaff@club.com"
    newspaper = scenario.history("LEAD_SOURCE")[EXAMPLE_LEAD_SOURCE_INTOUCH_ID]
    assert [v["name"] for v in newspaper] == ["Newspaper"]
    pete = scenario.history("USER")[EXAMPLE_PROSPECT_INTOUCH_ID]
    assert {(v["first_name"], v["last_name"], v["user_type"]) for v in pete} == {
        ("Pete", "Prospect", "PROSPECT")
    }
    assert {v["staff_owner_id"] for v in pete} == {EXAMPLE_STAFF_INTOUCH_ID}
    assert scenario.events[0].intouch_id == EXAMPLE_STAFF_INTOUCH_ID


def test_about_half_the_staff_link_and_matches_are_typed_differently(scenario: Scenario) -> None:
    receiver_emails = {normalize_email(email) for _, email, _ in scenario.receiver_staff}
    staff = scenario.latest("STAFF")
    linked = [s for s in staff.values() if normalize_email(s["email"]) in receiver_emails]
    assert 0.35 <= len(linked) / len(staff) <= 0.65
    assert any(s["email"] != s["email"].strip() for s in linked)
    assert any(s["email"].strip() != s["email"].strip().lower() for s in linked)


def test_lead_sources_have_renames_and_case_insensitive_matches() -> None:
    scenario = build_scenario(3, 3000, CLIENT, CLUBS)
    history = scenario.history("LEAD_SOURCE")
    renamed = [v for v in history.values() if len(v) > 1]
    assert renamed and all(v[0]["name"] != v[-1]["name"] for v in renamed)
    receiver_names = {name for _, name in scenario.receiver_lead_sources}
    sent = [v[0]["name"] for v in history.values()]
    assert any(n not in receiver_names and n.casefold() in _folded(receiver_names) for n in sent)
    assert len(_folded(sent)) == len(sent)  # InTouch names never collide among themselves


def _folded(names: Sequence[str] | set[str]) -> set[str]:
    return {n.casefold() for n in names}


def test_users_phase_has_every_kind_of_change(scenario: Scenario) -> None:
    kinds: Counter[str] = Counter()
    for versions in scenario.history("USER").values():
        kinds["new " + versions[0]["user_type"].lower()] += 1
        for before, after in itertools.pairwise(versions):
            content = {k for k in after if k not in ENVELOPE and after[k] != before[k]}
            if not content:
                kinds["duplicate"] += 1
            elif before["user_type"] == "PROSPECT" and after["user_type"] == "MEMBER":
                kinds["conversion"] += 1
            elif content & {"staff_owner_id", "lead_source_id"}:
                kinds["reassign"] += 1
            else:
                kinds["update"] += 1
                kinds.update(f"field {name}" for name in content)
    for kind in ("new prospect", "new member", "duplicate", "conversion", "reassign", "update"):
        assert kinds[kind] > 0, kind
    assert kinds["field city"] and kinds["field email"] and kinds["field status"]
    assert all(e.value["address2"] is None for e in scenario.phase("users"))
    clubs = {iid: {v["club_id"] for v in vs} for iid, vs in scenario.history("USER").items()}
    assert all(len(c) == 1 for c in clubs.values())


def test_every_event_encodes_and_decodes_to_itself(scenario: Scenario) -> None:
    codecs = Codecs(FileRegistry())
    for event in scenario.events:
        assert codecs["EntityKey"].decode(codecs["EntityKey"].encode(event.key)) == event.key
        value = codecs[event.subject].decode(codecs[event.subject].encode(event.value))
        assert value == event.value


def test_given_receiver_staff_replace_the_generated_ones() -> None:
    rows = [("S1", "someone@club.com", "Some One")]
    scenario = build_scenario(5, 200, CLIENT, CLUBS, receiver_staff=rows)
    assert scenario.receiver_staff[1:] == rows
    assert scenario.receiver_staff[0][0] == EXAMPLE_STAFF_RECEIVER_ID


# -- the oracle on a hand-made scenario --------------------------------------------------------

_clock = itertools.count()


def _envelope(intouch_id: str, version: int) -> dict[str, Any]:
    return {
        "event_id": f"e{next(_clock)}",
        "occurred_at": T0 + dt.timedelta(seconds=next(_clock)),
        "client_id": CLIENT,
        "intouch_id": intouch_id,
        "version": version,
    }


def staff(intouch_id: str, email: str | None, version: int = 1) -> InboundEvent:
    value = {
        **_envelope(intouch_id, version),
        "club_id": None,
        "first_name": "Sam",
        "last_name": intouch_id,
        "email": email,
        "status": "ACTIVE",
    }
    return InboundEvent("reference", "STAFF", value)


def source(intouch_id: str, name: str, version: int = 1) -> InboundEvent:
    value = {**_envelope(intouch_id, version), "club_id": None, "name": name}
    return InboundEvent("reference", "LEAD_SOURCE", value)


def user(intouch_id: str, version: int = 1, **fields: Any) -> InboundEvent:
    value: dict[str, Any] = {
        **_envelope(intouch_id, version),
        "club_id": "7",
        "user_type": "PROSPECT",
        "status": "ACTIVE",
        "first_name": "Una",
        "last_name": f"User{intouch_id}",
        "email": f"u{intouch_id}@example.com",
        "birthdate": dt.date(1991, 2, 3),
        "gender": "F",
        "address1": "1 Main St",
        "address2": None,
        "city": "Austin",
        "zipcode": "78701",
        "state": "TX",
        "country": "US",
        "mobile_phone": "+1-555-200-0000",
        "home_phone": None,
        "work_phone": None,
        "company": None,
        "staff_owner_id": None,
        "lead_source_id": None,
    }
    value.update(fields)
    return InboundEvent("users", "USER", value)


def tiny(*events: InboundEvent) -> Scenario:
    return Scenario(
        seed=0,
        client_id=CLIENT,
        clubs=("7", "8"),
        events=events,
        receiver_staff=[("R1", "alice@club.com", "Alice A"), ("R2", "bob@club.com", "Bob B")],
        receiver_lead_sources=[("L1", "Newspaper"), ("L2", "Radio")],
    )


def test_owner_is_linked_by_trimmed_case_insensitive_email_else_none() -> None:
    scenario = tiny(
        staff("11", "  ALICE@Club.com "),
        staff("12", "carol@club.com"),
        staff("13", None),
        user("1", staff_owner_id="11"),
        user("2", staff_owner_id="12"),
        user("3", staff_owner_id="13"),
    )
    full = expected_receiver_state(scenario, ReceiverMode.FULL)
    assert full.staff_links == {"11": "R1"}
    owner = full.people["1"].staff_owner
    assert owner is not None and owner.receiver_id == "R1"
    assert full.people["2"].staff_owner is None and full.people["3"].staff_owner is None
    by_email = expected_receiver_state(scenario, ReceiverMode.STAFF_BY_EMAIL_ONLY)
    assert by_email.people["1"].staff_owner == owner
    no_staff = expected_receiver_state(scenario, ReceiverMode.NO_STAFF)
    assert no_staff.staff_links == {} and no_staff.people["1"].staff_owner is None


def test_member_owner_follows_the_option() -> None:
    scenario = tiny(
        staff("11", "alice@club.com"), user("1", user_type="MEMBER", staff_owner_id="11")
    )
    assert expected_receiver_state(scenario).people["1"].staff_owner is not None
    kept = expected_receiver_state(scenario, members_keep_owner=False)
    assert kept.people["1"].staff_owner is None


def test_lead_source_matches_case_insensitively_per_mode() -> None:
    scenario = tiny(
        source("21", "newspaper"),
        source("22", "Podcast"),
        user("1", lead_source_id="21"),
        user("2", lead_source_id="22"),
    )
    full = expected_receiver_state(scenario, ReceiverMode.FULL)
    assert full.lead_source_links == {"21": "Newspaper", "22": "Podcast"}
    assert [(s.name, s.receiver_id) for s in full.lead_sources] == [
        ("Newspaper", "L1"),
        ("Radio", "L2"),
        ("Podcast", None),  # created by the connector; the receiver picks its ID
    ]
    assert full.people["1"].lead_source == "Newspaper"
    list_only = expected_receiver_state(scenario, ReceiverMode.LEAD_SOURCES_LIST_ONLY)
    assert list_only.lead_source_links == {"21": "Newspaper"}
    assert list_only.unlinked_lead_sources == ["22"]
    assert list_only.people["2"].lead_source is None
    assert [s.name for s in list_only.lead_sources] == ["Newspaper", "Radio"]
    # Create only: the receiver refuses a name it has in another case (409), naming the one it
    # has; the profile says so, and that one is linked.
    create_only = expected_receiver_state(scenario, ReceiverMode.LEAD_SOURCES_CREATE_ONLY)
    assert create_only.lead_source_links == {"21": "Newspaper", "22": "Podcast"}
    assert create_only.people["1"].lead_source == "Newspaper"
    # Where a 409 names nothing, the source stays unlinked and users go out without it.
    rules = ReceiverRules.from_capabilities("bare", {Cap.LEAD_SOURCE_CREATE})
    bare = expected_receiver_state(scenario, rules)
    assert bare.lead_source_links == {"22": "Podcast"}
    assert bare.people["1"].lead_source is None


def test_rename_applies_only_where_the_receiver_can_update() -> None:
    scenario = tiny(
        source("21", "Radio"),
        source("23", "Flyer"),
        source("23", "Flyer Promo", version=2),
        user("1", lead_source_id="21"),
        user("2", lead_source_id="23"),
    )
    full = expected_receiver_state(scenario, ReceiverMode.FULL)
    assert full.people["2"].lead_source == "Flyer Promo"
    assert "Flyer" not in {s.name for s in full.lead_sources}
    frozen = expected_receiver_state(scenario, ReceiverMode.NO_LEAD_SOURCE_UPDATE)
    assert frozen.people["2"].lead_source == "Flyer"
    assert {s.name for s in frozen.lead_sources} == {"Newspaper", "Radio", "Flyer"}
    create_only = expected_receiver_state(scenario, ReceiverMode.LEAD_SOURCES_CREATE_ONLY)
    assert create_only.people["2"].lead_source == "Flyer"
    custom = ReceiverRules("custom", True, True, True, lead_source_update=False)
    assert expected_receiver_state(scenario, custom).people["2"].lead_source == "Flyer"


def test_latest_version_wins_and_conversion_makes_a_member() -> None:
    scenario = tiny(
        user("1", city="Austin"),
        user("1", version=2, city="Denver", state="CO", zipcode="80202"),
        user("1", version=3, city="Denver", state="CO", zipcode="80202"),  # duplicate
        user("1", version=5, user_type="MEMBER", status="INACTIVE", birthdate=None),
    )
    person = expected_receiver_state(scenario).people["1"]
    assert person.kind == "member"
    assert person.values["status"] == "inactive" and person.values["birthdate"] is None
    assert person.values["user_type"] == "member" and person.values["city"] == "Austin"


# -- compare() against the reference receiver's own state --------------------------------------


def _put(target: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, leaf = dotted.split(".")
    for part in parents:
        target = target.setdefault(part, {})
    target[leaf] = value


def receiver_state_for(expected: ExpectedState, mode: str = "full") -> dict[str, Any]:
    """A reference receiver's `/_admin/state` holding exactly `expected`, built by its store."""
    clubs = sorted(set(expected.club_map.values()))
    store = ReceiverStore({expected.receiver_client_id: clubs}, staff_owner_allowed=True)
    client = expected.receiver_client_id
    for receiver_id, email, name in expected.staff:
        store.seed_staff(client, email, name, staff_id=receiver_id)
    source_ids = {
        s.name: store.create_lead_source(client, {"name": s.name})["id"]
        for s in expected.lead_sources
    }
    fields = receiver_fields(profile_named(STATE_PROFILE))
    for person in expected.people.values():
        body: dict[str, Any] = {}
        for name, value in {**person.values, "intouch_id": person.intouch_id}.items():
            if name != "user_type":
                _put(body, fields[name].path, fields[name].wire(value))
        if person.staff_owner is not None:
            body["staffOwnerId"] = person.staff_owner.receiver_id
        if person.lead_source is not None:
            body["leadSourceId"] = source_ids[person.lead_source]
        club = expected.club_map[person.club_id]
        store.create_person(client, club, person.kind, body)
    return {"mode": mode, "routes": [], "clients": store.as_json()}


@pytest.mark.parametrize("mode", list(ReceiverMode))
def test_a_receiver_holding_the_expected_state_has_no_mismatch(
    scenario: Scenario, mode: ReceiverMode
) -> None:
    # Building through the real store also proves the expectation is one the receiver accepts.
    club_map = {"7": "CL1", "8": "CL2", "9": "CL3"}
    expected = expected_receiver_state(scenario, mode, receiver_client_id="C100", club_map=club_map)
    assert compare(expected, receiver_state_for(expected, mode.value)) == []


@pytest.fixture
def small() -> tuple[ExpectedState, dict[str, Any]]:
    scenario = tiny(
        staff("11", "alice@club.com"),
        source("21", "newspaper"),
        source("22", "Podcast"),
        user("1", staff_owner_id="11", lead_source_id="21"),
        user("2", lead_source_id="22"),
        user("3", user_type="MEMBER"),
    )
    expected = expected_receiver_state(scenario)
    return expected, receiver_state_for(expected)


def _kinds(expected: ExpectedState, state: dict[str, Any]) -> list[MismatchKind]:
    return [m.kind for m in compare(expected, state)]


def _record(state: dict[str, Any], external_id: str) -> dict[str, Any]:
    for club in state["clients"][CLIENT]["clubs"].values():
        for people in (club["prospects"], club["members"]):
            for record in people.values():
                if record["externalId"] == external_id:
                    return record  # type: ignore[no-any-return]
    raise AssertionError(external_id)


def _club(state: dict[str, Any], club: str = "7") -> dict[str, Any]:
    return state["clients"][CLIENT]["clubs"][club]  # type: ignore[no-any-return]


def test_compare_finds_missing_duplicate_and_unexpected_people(small: Any) -> None:
    expected, state = small
    missing = copy.deepcopy(state)
    record = _record(missing, "2")
    del _club(missing)["prospects"][record["id"]]
    assert _kinds(expected, missing) == [MismatchKind.MISSING_PERSON]

    duplicate = copy.deepcopy(state)
    copied = {**_record(duplicate, "1"), "id": "P9"}
    _club(duplicate, "8")["prospects"]["P9"] = copied
    assert _kinds(expected, duplicate) == [MismatchKind.DUPLICATE_PERSON]
    message = str(compare(expected, duplicate)[0])
    assert "user 1" in message and "P9" in message and "club 8" in message

    stranger = copy.deepcopy(state)
    _club(stranger)["prospects"]["P8"] = {**_record(stranger, "2"), "id": "P8", "externalId": "77"}
    assert _kinds(expected, stranger) == [MismatchKind.UNEXPECTED_PERSON]


def test_compare_matches_by_email_when_no_external_id_was_kept(small: Any) -> None:
    expected, state = small
    record = _record(state, "2")
    record["externalId"] = None
    record["email"] = "  U2@Example.com"
    assert [m.detail for m in compare(expected, state)] == [
        "field email (email) is '  U2@Example.com', want 'u2@example.com'"
    ]


def test_compare_finds_wrong_fields_type_club_owner_and_lead_source(small: Any) -> None:
    expected, state = small
    _record(state, "1")["address"]["city"] = "Boston"
    _record(state, "1")["staffOwnerId"] = "R2"
    _record(state, "2")["leadSourceId"] = _record(state, "1")["leadSourceId"]
    member = _record(state, "3")
    del _club(state)["members"][member["id"]]
    _club(state, "8")["prospects"][member["id"]] = member
    found = compare(expected, state)
    assert [m.kind for m in found] == [
        MismatchKind.FIELD,
        MismatchKind.WRONG_OWNER,
        MismatchKind.WRONG_LEAD_SOURCE,
        MismatchKind.WRONG_CLUB,
        MismatchKind.WRONG_TYPE,
    ]
    assert (found[0].want, found[0].got) == ("Austin", "Boston")
    assert "address.city" in found[0].detail
    assert "R1" in found[1].detail and "alice@club.com" in found[1].detail
    assert "'Podcast'" in found[2].detail and "'Newspaper'" in found[2].detail


def test_compare_accepts_an_owner_seeded_under_another_id(small: Any) -> None:
    expected, state = small
    staff_table = state["clients"][CLIENT]["staff"]
    staff_table["S7"] = {**staff_table.pop("R1"), "staffId": "S7"}
    _record(state, "1")["staffOwnerId"] = "S7"
    assert compare(expected, state) == []


def test_compare_finds_lead_source_and_staff_differences(small: Any) -> None:
    expected, state = small
    sources = state["clients"][CLIENT]["lead_sources"]
    radio = next(rid for rid, s in sources.items() if s["name"] == "Radio")
    del sources[radio]
    podcast = next(rid for rid, s in sources.items() if s["name"] == "Podcast")
    sources[podcast]["name"] = "PODCAST"
    sources["L77"] = {"id": "L77", "name": "Billboard"}
    staff_table = state["clients"][CLIENT]["staff"]
    del staff_table["R2"]
    staff_table["S9"] = {"staffId": "S9", "emailAddress": "new@club.com", "displayName": "New"}
    found = compare(expected, state)
    assert [m.kind for m in found] == [
        MismatchKind.WRONG_LEAD_SOURCE,  # user 2's source is now named "PODCAST"
        MismatchKind.MISSING_LEAD_SOURCE,
        MismatchKind.LEAD_SOURCE_NAME,
        MismatchKind.UNEXPECTED_LEAD_SOURCE,
        MismatchKind.MISSING_STAFF,
        MismatchKind.UNEXPECTED_STAFF,
    ]
    assert "'Radio'" in found[1].subject and "L77" in found[3].subject


def test_compare_reports_a_missing_client(small: Any) -> None:
    expected, _state = small
    found = compare(expected, {"clients": {"C200": {}}})
    assert [m.kind for m in found] == [MismatchKind.MISSING_CLIENT]
    assert "C200" in found[0].detail


def test_compare_matches_a_receiver_without_external_ids_through_the_links() -> None:
    scenario = tiny(user("1", email=None), user("2", email=None))
    expected = expected_receiver_state(scenario, ReceiverMode.NO_EXTERNAL_ID)
    state = receiver_state_for(expected, ReceiverMode.NO_EXTERNAL_ID.value)
    links = {}
    for record in _club(state)["prospects"].values():
        links[record["externalId"]] = record["id"]
        record["externalId"] = None  # nothing but the connector's link tells who it is
    assert compare(expected, state, links=links) == []
    kinds = _kinds(expected, state)
    assert kinds.count(MismatchKind.MISSING_PERSON) == 2
    assert kinds.count(MismatchKind.UNEXPECTED_PERSON) == 2


def test_a_member_may_leave_one_prospect_behind_only_where_there_is_no_convert_call() -> None:
    scenario = tiny(user("5", user_type="MEMBER"))
    for mode, allowed in ((ReceiverMode.NO_CONVERT, True), (ReceiverMode.FULL, False)):
        expected = expected_receiver_state(scenario, mode)
        state = receiver_state_for(expected, mode.value)
        member = _record(state, "5")
        left_behind = {**member, "id": "P77", "type": "prospect"}
        _club(state)["prospects"]["P77"] = left_behind
        found = _kinds(expected, state)
        assert (found == []) is allowed, (mode, found)
        assert (MismatchKind.DUPLICATE_PERSON in found) is not allowed, (mode, found)
