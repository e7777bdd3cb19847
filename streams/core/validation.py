"""Whether an inbound change is fit to plan: required fields present, sizes, email, birthdate."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from typing import Any

#: Longest text field taken; anything longer is a broken producer, not a name or an address.
MAX_FIELD_CHARS = 4096
#: Fields that must hold text (not blank), by inbound subject.
REQUIRED = {
    "UserChanged": ("event_id", "client_id", "intouch_id", "first_name", "last_name"),
    "StaffChanged": ("event_id", "client_id", "intouch_id"),
    "LeadSourceChanged": ("event_id", "client_id", "intouch_id", "name"),
}
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.]+$")
OLDEST_BIRTHDATE = dt.date(1900, 1, 1)


def event_problems(subject: str, event: Mapping[str, Any], today: dt.date) -> list[str]:
    """What is wrong with a decoded change, each problem naming its field; empty when none."""
    problems = [
        f"{name} is {len(value):,} characters, more than {MAX_FIELD_CHARS:,}"
        for name, value in event.items()
        if isinstance(value, str) and len(value) > MAX_FIELD_CHARS
    ]
    problems += [
        f"{name} is required"
        for name in REQUIRED.get(subject, ())
        if not str(event.get(name) or "").strip()
    ]
    email = event.get("email")
    short = isinstance(email, str) and email.strip() and len(email) <= MAX_FIELD_CHARS
    if short and not _EMAIL.match(str(email).strip()):
        problems.append(f"email {email!r} is not an email address")
    birthdate = event.get("birthdate")
    if isinstance(birthdate, dt.date):
        if birthdate > today:
            problems.append(f"birthdate {birthdate.isoformat()} is in the future")
        elif birthdate < OLDEST_BIRTHDATE:
            problems.append(f"birthdate {birthdate.isoformat()} is before {OLDEST_BIRTHDATE}")
    return problems
