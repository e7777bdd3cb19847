"""How InTouch values are matched to the receiver's: emails and lead-source names."""

from __future__ import annotations

from collections.abc import Iterable

from adapters.base import ReceiverLeadSource, ReceiverStaff


def normalize_email(email: str | None) -> str | None:
    """Trimmed and case-folded (the guide: staff match on email, case-insensitive)."""
    email = (email or "").strip().casefold()
    return email or None


def normalize_name(name: str | None) -> str:
    """Inner white space folded and case-folded (lead sources match by name)."""
    return " ".join((name or "").split()).casefold()


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
