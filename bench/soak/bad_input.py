"""Bad input for every inbound topic, and where each must end up: the DLQ with a reason naming
the problem, or (a duplicate or an older version) a SKIPPED outcome saying why."""

from __future__ import annotations

import datetime as dt
import random
import struct
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from demo.scenario import Entity
from streams.avro.codec import Codecs
from streams.core.model import Record

#: A field of this many characters stands for a runaway client.
HUGE = 1_000_000
NOW = dt.datetime(2026, 11, 28, 12, 0, tzinfo=dt.UTC)
SUBJECTS: dict[Entity, str] = {
    "USER": "UserChanged",
    "STAFF": "StaffChanged",
    "LEAD_SOURCE": "LeadSourceChanged",
}


@dataclass(frozen=True)
class BadRecord:
    """One bad input: the bytes to produce and the words its DLQ reason must contain."""

    kind: str
    entity: Entity
    key: bytes
    value: bytes
    reason: tuple[str, ...]  # any one of these, case-insensitive
    #: True: detected as a SKIPPED outcome (a duplicate or an older version), not a dead letter.
    skipped: bool = False
    intouch_id: str = ""
    version: int = 0


def valid_event(entity: Entity, client_id: str, club_id: str, intouch_id: str) -> Record:
    base: Record = {
        "event_id": str(uuid.uuid4()), "occurred_at": NOW, "client_id": client_id,
        "intouch_id": intouch_id, "version": 1,
    }  # fmt: skip
    if entity == "LEAD_SOURCE":
        return {**base, "club_id": None, "name": f"Source {intouch_id}"}
    if entity == "STAFF":
        return {
            **base, "club_id": None, "first_name": "Bad", "last_name": "Staff",
            "email": f"{intouch_id}@staff.example", "status": "ACTIVE",
        }  # fmt: skip
    return {
        **base, "club_id": club_id, "user_type": "PROSPECT", "status": "ACTIVE",
        "first_name": "Bad", "last_name": "Input", "email": f"{intouch_id}@soak.example",
        "birthdate": None, "gender": None, "address1": None, "address2": None, "city": None,
        "zipcode": None, "state": None, "country": None, "mobile_phone": None,
        "home_phone": None, "work_phone": None, "company": None, "staff_owner_id": None,
        "lead_source_id": None,
    }  # fmt: skip


def bad_records(
    codecs: Codecs, client_id: str, club_id: str, seed: int
) -> tuple[list[BadRecord], list[tuple[Entity, bytes, bytes]]]:
    """The bad inputs for one turned-up client, and the good events (first versions) that the
    duplicate and the older version follow; both to be produced in order."""
    rng = random.Random(f"bad-{seed}")
    out: list[BadRecord] = []
    good: list[tuple[Entity, bytes, bytes]] = []

    def key(entity: Entity, client: str, intouch_id: str) -> bytes:
        value = {"client_id": client, "entity": entity, "intouch_id": intouch_id}
        return codecs["EntityKey"].encode(value)

    def add(
        kind: str,
        entity: Entity,
        reason: tuple[str, ...],
        fields: Mapping[str, Any] | None = None,
        client: str = client_id,
    ) -> None:
        intouch_id = f"bad-{kind.replace(' ', '-')}-{entity.lower()}"
        event = {**valid_event(entity, client, club_id, intouch_id), **(fields or {})}
        value = codecs[SUBJECTS[entity]].encode(event)
        out.append(BadRecord(kind, entity, key(entity, client, intouch_id), value, reason))

    for entity in ("USER", "STAFF", "LEAD_SOURCE"):
        subject = SUBJECTS[entity]
        k = key(entity, client_id, f"bad-bytes-{entity.lower()}")
        noise = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 64)))
        out.append(BadRecord("random bytes", entity, k, noise, ("magic byte", "no record")))
        whole = codecs[subject].encode(valid_event(entity, client_id, club_id, "bad-cut"))
        cut = whole[: len(whole) // 2]
        out.append(BadRecord("truncated Avro", entity, k, cut, ("invalid avro", "trailing")))
        unknown = struct.pack(">bI", 0, 99_999) + whole[5:]
        out.append(BadRecord("unknown schema ID", entity, k, unknown, ("schema id",)))
        add("unknown tenant", entity, ("unknown tenant", "not turned up"), client="no-such-client")
        blank = {"USER": "last_name", "STAFF": "intouch_id", "LEAD_SOURCE": "name"}[entity]
        add("missing required field", entity, (blank,), {blank: "  "})
        field = "name" if entity == "LEAD_SOURCE" else "first_name"
        add("1 MB field", entity, (field,), {field: "x" * HUGE})
        if entity != "LEAD_SOURCE":
            add("invalid email", entity, ("email",), {"email": "not-an-email"})
    add("unknown club", "USER", ("club",), {"club_id": "no-such-club"})
    future = dt.date(2100, 1, 1)
    add("invalid birthdate", "USER", ("birth",), {"birthdate": future})
    # A duplicate event ID and an older version after a newer one: a real user of the client.
    for kind, intouch_id in (("duplicate event ID", "dup-event"), ("older version", "old-after")):
        v1 = valid_event("USER", client_id, club_id, intouch_id)
        v2 = {**v1, "event_id": str(uuid.uuid4()), "version": 2, "first_name": "Newest"}
        k = key("USER", client_id, intouch_id)
        good += [("USER", k, codecs["UserChanged"].encode(e)) for e in (v1, v2)]
        again = v2 if kind == "duplicate event ID" else v1
        value = codecs["UserChanged"].encode(again)
        reason = ("already", "stale", "older", "newer", "duplicate")
        out.append(BadRecord(kind, "USER", k, value, reason, True, intouch_id, again["version"]))
    return out, good


def expected_bad_users(client_id: str) -> dict[str, str]:
    """The users the duplicate and older-version inputs leave: InTouch ID -> first name."""
    del client_id
    return {"dup-event": "Newest", "old-after": "Newest"}


def classify(
    bad: Sequence[tuple[BadRecord, str, int, int]],
    dead_letters: Sequence[Record],
    skipped: Sequence[Record],
) -> dict[str, dict[str, int]]:
    """Per class: produced, found where it belongs with a reason naming the problem, and
    missed. `bad` holds (record, topic, partition, offset) as delivered."""
    at = {(d["source_topic"], d["source_partition"], d["source_offset"]): d for d in dead_letters}
    out: dict[str, dict[str, int]] = {}
    for record, topic, partition, offset in bad:
        row = out.setdefault(record.kind, {"sent": 0, "found": 0, "wrong_reason": 0})
        row["sent"] += 1
        if record.skipped:
            hits = [
                s
                for s in skipped
                if s["intouch_id"] == record.intouch_id and s["version"] == record.version
            ]
            reasons = [str(s.get("message") or "") for s in hits]
        else:
            dead = at.get((topic, partition, offset))
            reasons = [] if dead is None else [f"{dead['error_class']}: {dead['error_message']}"]
        if not reasons:
            continue
        if any(word.lower() in r.lower() for r in reasons for word in record.reason):
            row["found"] += 1
        else:
            row["wrong_reason"] += 1
    return out
