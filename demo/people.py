"""The guide's worked example, and the realistic names, places and users a scenario draws."""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable, Sequence
from typing import Any

from streams.core.model import Record

# The receiver guide's worked example, kept literally so the demo can tell its story.
EXAMPLE_STAFF_INTOUCH_ID = "1111"
EXAMPLE_STAFF_RECEIVER_ID = "9999"
EXAMPLE_STAFF_EMAIL = "jstaff@club.com"
EXAMPLE_STAFF_EMAIL_AS_SENT = " JStaff@Club.com "
EXAMPLE_STAFF_NAME = ("John", "Staff")
EXAMPLE_LEAD_SOURCE_INTOUCH_ID = "2222"
EXAMPLE_LEAD_SOURCE_NAME = "Newspaper"
EXAMPLE_PROSPECT_INTOUCH_ID = "3333"
EXAMPLE_PROSPECT_NAME = ("Pete", "Prospect")

# -- realistic values -------------------------------------------------------------------------

FIRST_NAMES = (
    "Olivia", "Liam", "Emma", "Noah", "Ava", "Elijah", "Sophia", "James", "Isabella", "Lucas",
    "Mia", "Mason", "Amelia", "Ethan", "Harper", "Logan", "Evelyn", "Aiden", "Abigail", "Jacob",
    "Chloe", "Mateo", "Zoe", "Daniel", "Nora", "Henry", "Layla", "Jackson", "Riley", "Sebastian",
    "Aaliyah", "Diego", "Priya", "Wei", "Fatima", "Kenji", "Ines", "Tomasz", "Aisha", "Mohammed",
)  # fmt: skip
LAST_NAMES = (
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez",
    "Martinez", "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson", "Thomas", "Taylor",
    "Moore", "Jackson", "Martin", "Lee", "Perez", "Thompson", "White", "Harris", "Sanchez",
    "Clark", "Ramirez", "Lewis", "Robinson", "Walker", "Young", "Allen", "King", "Wright",
    "Nguyen", "Patel", "Kowalski", "O'Brien", "Müller",
)  # fmt: skip
STREETS = (
    "Main St", "Oak Ave", "Maple Dr", "Cedar Ln", "Pine St", "Elm St", "Washington Blvd",
    "Lakeview Rd", "Park Ave", "Sunset Blvd", "Highland Ave", "River Rd", "Church St",
)  # fmt: skip
# (city, state, zip prefix, country): a move changes all four together, as a real one does.
PLACES = (
    ("Austin", "TX", "787", "US"), ("Denver", "CO", "802", "US"), ("Portland", "OR", "972", "US"),
    ("Columbus", "OH", "432", "US"), ("Raleigh", "NC", "276", "US"), ("Tampa", "FL", "336", "US"),
    ("Madison", "WI", "537", "US"), ("Boise", "ID", "837", "US"), ("Toronto", "ON", "M5V", "CA"),
    ("Vancouver", "BC", "V6B", "CA"),
)  # fmt: skip
COMPANIES = (
    "Acme Corp", "Globex", "Initech", "Umbrella Health", "Stark Industries", "Wayne Enterprises",
    "Hooli", "Vandelay Industries", "Soylent Foods", "Pied Piper",
)  # fmt: skip
GENDERS = ("F", "M", "X")
LEAD_SOURCE_NAMES = (
    EXAMPLE_LEAD_SOURCE_NAME, "Radio Ad", "Walk-in", "Member Referral", "Facebook", "Instagram",
    "Google Search", "Flyer", "Billboard", "Corporate Partner", "Open Day", "Guest Pass",
    "Website Form", "Email Campaign", "TikTok", "YouTube", "Podcast", "Local Event", "Yelp",
    "Community Fair", "Mall Kiosk", "Direct Mail", "SMS Campaign", "Doctor Referral",
)  # fmt: skip
RENAME_SUFFIXES = ("Promo", "Campaign", "2.0", "Spring", "Partners", "Online")
# Receiver lead sources InTouch never sends: they must survive the run untouched.
RECEIVER_ONLY_LEAD_SOURCES = ("Legacy Import", "Trade Show")
RECEIVER_ONLY_STAFF = (("Front", "Desk"), ("Club", "Manager"))
STAFF_DOMAIN = "club.com"
OTHER_STAFF_DOMAIN = "staff.example.org"
PEOPLE_DOMAINS = ("example.com", "mail.example.net", "inbox.example.org")

# Phase-2 actions and their weights; conversions and duplicates are frequent on purpose.
USER_ACTIONS = (
    ("new_prospect", 30),
    ("new_member", 8),
    ("update", 35),
    ("duplicate", 10),
    ("convert", 10),
    ("reassign", 7),
)


def email_local(text: str) -> str:
    """An ASCII mailbox name from a person's name ("O'Brien" and "Müller" included)."""
    return text.lower().replace("'", "").replace("ü", "u")


def vary_case_and_space(rng: random.Random, email: str) -> str:
    """The same address as an InTouch user might have typed it: other case, stray spaces."""
    local, _, domain = email.partition("@")
    styles: list[Callable[[str], str]] = [str.upper, str.title, str.lower, str.capitalize]
    varied = f"{rng.choice(styles)(local)}@{rng.choice(styles)(domain)}"
    return rng.choice(("", " ", "  ")) + varied + rng.choice(("", " ", "\t"))


def vary_case(rng: random.Random, name: str) -> str:
    """The same lead source name in another case ("newspaper" for "Newspaper")."""
    styles: list[Callable[[str], str]] = [str.lower, str.upper, str.swapcase]
    return rng.choice(styles)(name)


class _People:
    """Draws users and their changes; `stamp(intouch_id)` is the envelope of a user's next event."""

    def __init__(
        self,
        rng: random.Random,
        clubs: Sequence[str],
        stamp: Callable[[str], Record],
        staff_ids: list[str],
        lead_source_ids: list[str],
    ) -> None:
        self.rng = rng
        self.clubs = clubs
        self.stamp = stamp
        self.staff_ids = staff_ids
        self.lead_source_ids = lead_source_ids
        self.latest: dict[str, Record] = {}
        self.next_id = 100001

    def _email(self, first: str, last: str, intouch_id: str) -> str:
        local = email_local(f"{first}.{last}.{intouch_id}")
        return f"{local}@{self.rng.choice(PEOPLE_DOMAINS)}"

    def _phone(self) -> str:
        return f"+1-555-{self.rng.randint(200, 999)}-{self.rng.randint(0, 9999):04d}"

    def _place(self) -> dict[str, Any]:
        city, state, zip_prefix, country = self.rng.choice(PLACES)
        if country == "US":
            zipcode = f"{zip_prefix}{self.rng.randint(0, 99):02d}"
        else:
            zipcode = f"{zip_prefix} {self.rng.randint(1, 9)}A{self.rng.randint(1, 9)}"
        return {
            "address1": f"{self.rng.randint(1, 9999)} {self.rng.choice(STREETS)}",
            "city": city,
            "zipcode": zipcode,
            "state": state,
            "country": country,
        }

    def _birthdate(self) -> dt.date:
        return dt.date(1950, 1, 1) + dt.timedelta(days=self.rng.randint(0, 20_500))

    def _maybe(self, share: float, draw: Callable[[], Any]) -> Any:
        return draw() if self.rng.random() < share else None

    def new(self, user_type: str) -> Record:
        rng = self.rng
        intouch_id = str(self.next_id)
        self.next_id += 1
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        record: Record = {
            **self.stamp(intouch_id),
            "club_id": rng.choice(self.clubs),
            "user_type": user_type,
            "status": "ACTIVE" if rng.random() < 0.92 else "INACTIVE",
            "first_name": first,
            "last_name": last,
            "email": self._maybe(0.9, lambda: self._email(first, last, intouch_id)),
            "birthdate": self._maybe(0.8, self._birthdate),
            "gender": self._maybe(0.85, lambda: rng.choice(GENDERS)),
            "address2": None,  # InTouch has no second address line
            **self._place(),
            "mobile_phone": self._maybe(0.85, self._phone),
            "home_phone": self._maybe(0.4, self._phone),
            "work_phone": self._maybe(0.25, self._phone),
            "company": self._maybe(0.3, lambda: rng.choice(COMPANIES)),
            "staff_owner_id": self._maybe(0.5, lambda: rng.choice(self.staff_ids)),
            "lead_source_id": self._maybe(0.6, lambda: rng.choice(self.lead_source_ids)),
        }
        self.latest[intouch_id] = record
        return record

    def example_prospect(self) -> Record:
        first, last = EXAMPLE_PROSPECT_NAME
        record: Record = {
            **self.stamp(EXAMPLE_PROSPECT_INTOUCH_ID),
            "club_id": self.clubs[0],
            "user_type": "PROSPECT",
            "status": "ACTIVE",
            "first_name": first,
            "last_name": last,
            "email": "pete.prospect@example.com",
            "birthdate": dt.date(1990, 6, 15),
            "gender": "M",
            "address1": "12 Main St",
            "address2": None,
            "city": "Austin",
            "zipcode": "78701",
            "state": "TX",
            "country": "US",
            "mobile_phone": "+1-555-010-1111",
            "home_phone": None,
            "work_phone": None,
            "company": None,
            "staff_owner_id": EXAMPLE_STAFF_INTOUCH_ID,
            "lead_source_id": EXAMPLE_LEAD_SOURCE_INTOUCH_ID,
        }
        self.latest[EXAMPLE_PROSPECT_INTOUCH_ID] = record
        return record

    def _next(self, current: Record, **changes: Any) -> Record:
        record = {**current, **self.stamp(current["intouch_id"]), **changes}
        self.latest[current["intouch_id"]] = record
        return record

    def duplicate(self, current: Record) -> Record:
        """Same content again under a new event ID and version: the planner must skip it."""
        return self._next(current)

    def convert(self, current: Record) -> Record:
        # Joining often comes with a new address: a receiver whose convert call copies the
        # prospect as stored must still end with it (issue 11, seen case 3).
        city = "Springfield" if current.get("city") != "Springfield" else "Shelbyville"
        return self._next(current, user_type="MEMBER", status="ACTIVE", city=city)

    def reassign(self, current: Record) -> Record:
        rng = self.rng
        changes: Record = {}
        while not changes:
            if rng.random() < 0.5:
                owner = rng.choice([*self.staff_ids, None])
                if owner != current["staff_owner_id"]:
                    changes["staff_owner_id"] = owner
            else:
                source = rng.choice([*self.lead_source_ids, None])
                if source != current["lead_source_id"]:
                    changes["lead_source_id"] = source
        return self._next(current, **changes)

    def update(self, current: Record) -> Record:
        """Change one to three of the guide's fields (or the email), each to a new value."""
        rng = self.rng
        draws: dict[str, Callable[[], Record]] = {
            "first_name": lambda: {"first_name": rng.choice(FIRST_NAMES)},
            "last_name": lambda: {"last_name": rng.choice(LAST_NAMES)},
            "status": lambda: {"status": "INACTIVE" if current["status"] == "ACTIVE" else "ACTIVE"},
            "birthdate": lambda: {"birthdate": self._birthdate()},
            "gender": lambda: {"gender": rng.choice([*GENDERS, None])},
            "address": self._place,
            "mobile_phone": lambda: {"mobile_phone": self._maybe(0.9, self._phone)},
            "home_phone": lambda: {"home_phone": self._maybe(0.7, self._phone)},
            "work_phone": lambda: {"work_phone": self._maybe(0.7, self._phone)},
            "company": lambda: {"company": self._maybe(0.8, lambda: rng.choice(COMPANIES))},
            "email": lambda: {
                "email": self._email(
                    current["first_name"], current["last_name"], current["intouch_id"]
                )
            },
        }
        changes: Record = {}
        for name in rng.sample(sorted(draws), rng.randint(1, 3)):
            for key, value in draws[name]().items():
                if value != current[key]:
                    changes[key] = value
        if not changes:
            changes["status"] = "INACTIVE" if current["status"] == "ACTIVE" else "ACTIVE"
        return self._next(current, **changes)


def draw_users(
    rng: random.Random,
    clubs: Sequence[str],
    stamp: Callable[[str], Record],
    count: int,
    staff_ids: list[str],
    lead_source_ids: list[str],
) -> list[Record]:
    """`count` user events: the guide's prospect first, then new users and changes to them."""
    people = _People(rng, clubs, stamp, staff_ids, lead_source_ids)
    out = [people.example_prospect()]
    actions = [name for name, _ in USER_ACTIONS]
    weights = [weight for _, weight in USER_ACTIONS]
    while len(out) < count:
        # Pete stays the guide's untouched prospect; everyone else may change.
        others = [r for iid, r in people.latest.items() if iid != EXAMPLE_PROSPECT_INTOUCH_ID]
        prospects = [r for r in others if r["user_type"] == "PROSPECT"]
        action = rng.choices(actions, weights)[0]
        if len(others) < 5 or (action == "convert" and not prospects):
            action = "new_prospect"
        if action == "new_prospect":
            out.append(people.new("PROSPECT"))
        elif action == "new_member":
            out.append(people.new("MEMBER"))
        elif action == "convert":
            out.append(people.convert(rng.choice(prospects)))
        elif action == "duplicate":
            out.append(
                people.duplicate(rng.choice([*others, people.latest[EXAMPLE_PROSPECT_INTOUCH_ID]]))
            )
        elif action == "reassign":
            out.append(people.reassign(rng.choice(others)))
        else:
            out.append(people.update(rng.choice(others)))
    return out
