"""What a soak run left, checked: the receivers' records, the DLQ, overlaps, offsets, secrets."""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

from bench.soak.bad_input import BadRecord, classify, expected_bad_users
from bench.soak.faults import Fault
from bench.soak.rig import SOAK_SECRET, Rig, Tenant
from demo.compare import MismatchKind, compare
from demo.oracle import expected_receiver_state
from streams.avro.codec import default_codecs
from streams.core.model import FINAL_STATUSES, SETTLING_STATUSES
from streams.exceptions import ConnectorError
from streams.kafka.lag import LagReader
from streams.kafka.reader import read_to_end
from tests.secret_sweep import leaks_in_files, leaks_in_topics

LOST = {MismatchKind.MISSING_PERSON, MismatchKind.MISSING_CLIENT}
DUPLICATED = {MismatchKind.DUPLICATE_PERSON, MismatchKind.UNEXPECTED_PERSON}


def group_topics(rig: Rig) -> list[str]:
    t = rig.topics
    bases = (t.users_topic, t.staff_topic, t.lead_sources_topic, t.commands_topic, t.parked_topic)
    return [t.name(b) for b in bases]


def lag(rig: Rig) -> int | None:
    """Records of the group's topics not committed yet; None while the group cannot say."""
    try:
        with LagReader(rig.bootstrap, rig.kafka_settings) as reader:
            rows = reader.group_lag(rig.app_id, group_topics(rig))
    except ConnectorError:
        return None
    return sum(r.lag for r in rows) if rows else None


def read(rig: Rig, base: str, subject: str) -> list[tuple[dict[str, Any], float]]:
    codec = default_codecs()[subject]
    topic = rig.topics.name(base)
    return [
        (codec.decode(m.value()), m.timestamp()[1] / 1000)
        for m in read_to_end(rig.bootstrap, rig.kafka_settings, [topic])
    ]


def mismatches(rig: Rig, tenant: Tenant, outcomes: list[dict[str, Any]]) -> dict[str, Any]:
    """Lost, duplicated and wrong records of one tenant's receiver."""
    links = {
        o["intouch_id"]: o["receiver_id"]
        for o in outcomes
        if o["client_id"] == tenant.client_id
        and o["entity"] == "USER"
        and o["status"] in SETTLING_STATUSES
        and o["receiver_id"]
    }
    expected = expected_receiver_state(
        tenant.scenario, tenant.mode, receiver_client_id=tenant.receiver_client,
        club_map=tenant.clubs,
    )  # fmt: skip
    state = tenant.call(tenant.receiver.receiver.state)
    found = compare(expected, state, links=links)
    extra = expected_bad_users(tenant.client_id) if tenant is first_tenant(rig) else {}
    people = [
        p
        for club in state["clients"][tenant.receiver_client]["clubs"].values()
        for kind in ("prospects", "members")
        for p in club[kind].values()
    ]
    counts = Counter(p.get("externalId") for p in people)
    wrong_extra = sum(
        1
        for p in people
        if p.get("externalId") in extra and p.get("firstName") != extra[p["externalId"]]
    )
    # The bad-input users are checked here, not against the scenario.
    found = [m for m in found if not _bad_input_user(m, extra)]
    return {
        "entities": len(expected.people),
        "lost": sum(m.kind in LOST for m in found) + sum(counts[i] == 0 for i in extra),
        "duplicated": sum(m.kind in DUPLICATED for m in found) + sum(counts[i] > 1 for i in extra),
        "wrong": sum(m.kind not in LOST | DUPLICATED for m in found) + wrong_extra,
        "examples": [str(m) for m in found[:5]],
    }


def _bad_input_user(mismatch: Any, ids: dict[str, str]) -> bool:
    """A record the bad inputs made: counted with them, not as a scenario user."""
    if mismatch.kind is not MismatchKind.UNEXPECTED_PERSON:
        return False
    return "'bad-" in mismatch.detail or any(f"'{i}'" in mismatch.detail for i in ids)


def first_tenant(rig: Rig) -> Tenant:
    return next(iter(rig.tenants.values()))


def settle(rig: Rig, timeout: float) -> float:
    """Wait until the group has committed everything, twice in a row, and no receiver call
    is under way; return the seconds it took."""
    began = time.monotonic()
    quiet = 0
    while quiet < 2:
        rig.revive()
        busy = sum(t.call(lambda t=t: t.receiver.receiver.in_flight) for t in rig.tenants.values())
        quiet = quiet + 1 if lag(rig) == 0 and busy == 0 else 0
        if time.monotonic() - began > timeout:
            raise TimeoutError(f"not settled after {timeout:.0f}s (lag {lag(rig)})")
        time.sleep(1.5)
    return time.monotonic() - began


def recovery_from_outcomes(
    faults: list[Fault], outcomes: list[tuple[dict[str, Any], float]]
) -> None:
    """A receiver fault or a broker restart has recovered when the work it held back is
    done: every entity (of its tenant) left parked or in doubt during it has a final outcome
    again; with none held back, at the first final outcome after it ended."""
    for fault in faults:
        timed_here = fault.client is not None or fault.name == "broker restart"
        if fault.recovered_s is not None or not fault.ended or not timed_here:
            continue
        mine = [(r, ts) for r, ts in outcomes if fault.client in (None, r["client_id"])]
        last: dict[tuple[str, str], tuple[float, str]] = {}
        for r, ts in sorted(mine, key=lambda o: o[1]):
            if ts <= fault.ended:
                last[(r["client_id"], r["intouch_id"])] = (ts, r["status"])
        # Still parked or in doubt when the fault ended: what it held back.
        held = {
            k
            for k, (ts, status) in last.items()
            if ts >= fault.started and status not in FINAL_STATUSES
        }
        done: dict[tuple[str, str], float] = {}
        for r, ts in mine:
            key = (r["client_id"], r["intouch_id"])
            if ts >= fault.ended and r["status"] in FINAL_STATUSES:
                done.setdefault(key, ts)
        if held and all(k in done for k in held):
            fault.recovered_s = round(max(done[k] for k in held) - fault.ended, 1)
            fault.detail += f"; {len(held)} entities held back"
        elif not held and done:
            fault.recovered_s = round(min(done.values()) - fault.ended, 1)


def check(
    rig: Rig, faults: list[Fault], bad: list[tuple[BadRecord, str, int, int]]
) -> dict[str, Any]:
    t = rig.topics
    outcomes = read(rig, t.outcomes_topic, "Outcome")
    rows = [row for row, _ in outcomes]
    tenants = {c: mismatches(rig, tenant, rows) for c, tenant in rig.tenants.items()}
    dead = [row for row, _ in read(rig, t.dlq_topic, "DeadLetter")]
    skipped = [r for r in rows if r["status"] == "SKIPPED"]
    recovery_from_outcomes(faults, outcomes)
    overlaps = [o for tenant in rig.tenants.values() for o in tenant.receiver.receiver.overlaps]
    read_n, in_topics = leaks_in_topics(rig.bootstrap, (SOAK_SECRET,))
    in_files = leaks_in_files(rig.workdir, (SOAK_SECRET,))
    return {
        "tenants": tenants,
        "bad_input": classify(bad, dead, skipped),
        "dead_letters": len(dead),
        "dead_letters_by_stage": dict(Counter(d["stage"] for d in dead)),
        "overlapping_calls": len(overlaps),
        "overlap_examples": overlaps[:5],
        "lag_at_end": lag(rig),
        "records_swept": read_n,
        "leaks": in_topics + in_files,
    }
