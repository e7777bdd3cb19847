"""Inbound changes that break the contract are named, field by field, before any planning."""

from __future__ import annotations

import datetime as dt

from streams.core.validation import MAX_FIELD_CHARS, event_problems

TODAY = dt.date(2026, 11, 28)


def user(**fields: object) -> dict[str, object]:
    base: dict[str, object] = {
        "event_id": "e1", "client_id": "100", "intouch_id": "7", "first_name": "Ann",
        "last_name": "Lee", "email": " Ann.Lee@Club.com ", "birthdate": dt.date(1990, 5, 1),
    }  # fmt: skip
    return {**base, **fields}


def test_a_good_user_has_no_problem() -> None:
    assert event_problems("UserChanged", user(), TODAY) == []
    assert event_problems("UserChanged", user(email=None, birthdate=None), TODAY) == []


def test_each_problem_names_its_field() -> None:
    assert event_problems("UserChanged", user(last_name="  "), TODAY) == ["last_name is required"]
    assert event_problems("UserChanged", user(email="not-an-email"), TODAY) == [
        "email 'not-an-email' is not an email address"
    ]
    (future,) = event_problems("UserChanged", user(birthdate=dt.date(2100, 1, 1)), TODAY)
    assert future == "birthdate 2100-01-01 is in the future"
    (old,) = event_problems("UserChanged", user(birthdate=dt.date(1800, 1, 1)), TODAY)
    assert old.startswith("birthdate 1800-01-01")
    (huge,) = event_problems("UserChanged", user(first_name="x" * 1_000_000), TODAY)
    assert huge == f"first_name is 1,000,000 characters, more than {MAX_FIELD_CHARS:,}"


def test_staff_and_lead_sources_need_their_ids_and_a_lead_source_its_name() -> None:
    staff = {"event_id": "e", "client_id": "1", "intouch_id": "", "email": "a@b.co"}
    assert event_problems("StaffChanged", staff, TODAY) == ["intouch_id is required"]
    source = {"event_id": "e", "client_id": "1", "intouch_id": "9", "name": ""}
    assert event_problems("LeadSourceChanged", source, TODAY) == ["name is required"]
    assert event_problems("StaffChanged", {**staff, "intouch_id": "3", "email": None}, TODAY) == []
