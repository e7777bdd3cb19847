"""Matching InTouch values to the receiver's: staff by email, lead sources by name."""

from __future__ import annotations

from adapters.base import ReceiverLeadSource, ReceiverStaff
from streams.core.matching import match_lead_source, match_staff, normalize_email


def test_staff_match_on_trimmed_case_insensitive_email() -> None:
    staff = [ReceiverStaff("9998", "other@club.com"), ReceiverStaff("9999", "JStaff@Club.com ")]
    match = match_staff("  jstaff@club.com", staff)
    assert match is not None and match.id == "9999"
    assert match_staff("nobody@club.com", staff) is None
    assert match_staff(None, staff) is None


def test_lead_source_match_is_case_insensitive() -> None:
    sources = [ReceiverLeadSource("LS1", "Newspaper")]
    assert match_lead_source("newspaper", sources) == sources[0]
    assert match_lead_source("Radio", sources) is None


def test_one_email_normalisation_trims_and_case_folds() -> None:
    assert normalize_email("  JStaff@Club.COM ") == "jstaff@club.com"
    assert normalize_email("STRASSE@club.com") == normalize_email("straße@club.com".upper())
    assert normalize_email("   ") is None
    assert normalize_email(None) is None
