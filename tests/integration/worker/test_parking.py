"""Parking, end to end: a tenant whose receiver is down has its work parked in order while the
others go on; nothing of it is dead-lettered, and after the outage its state is exact."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

from streams.core.decisions import SkipReason
from streams.core.model import FINAL_STATUSES
from tests.integration.harness import running_pipeline, user_event, wait_for


def test_an_outage_parks_one_tenants_work_and_it_lands_exactly_once_after(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    settings = {
        "CONNECTOR_RETRY_MAX_ELAPSED": "2",
        "CONNECTOR_BREAKER_FAILURES": "2",
        "CONNECTOR_BREAKER_COOLDOWN": "1",
        "CONNECTOR_RECEIVER_TIMEOUT": "2",
    }
    with running_pipeline(kafka_bootstrap, tmp_path, **settings) as p:
        down = p.add_receiver("down")
        p.add_receiver("up")
        p.start_worker()
        p.send("UserChanged", user_event("up", "W0", 1))
        assert p.wait_outcome("up", "W0", 1)["status"] == "LINKED"  # the worker is up

        down.call(lambda: down.receiver.faults.start_outage(12))
        outage_ends = time.monotonic() + 12
        for n in range(8):
            p.send("UserChanged", user_event("down", f"D{n}", 1, first_name="One"))
        for n in range(8):  # changes queued behind the parked ones, same entities
            p.send("UserChanged", user_event("down", f"D{n}", 2, first_name="Two"))
        started = time.monotonic()
        for n in range(8):
            p.send("UserChanged", user_event("up", f"U{n}", 1))
        up = p.wait_outcomes("up", [f"U{n}" for n in range(8)], 1, timeout=60)
        assert {o["status"] for o in up.values()} == {"LINKED"}
        assert time.monotonic() - started < 10, "the other tenant waited for the outage"
        wait_for(
            "the failing tenant's work to be parked",
            lambda: any(o["status"] == "PARKED" for o in p.outcomes("down")),
        )
        assert time.monotonic() < outage_ends  # all of the above happened during the outage

        down_outcomes = p.wait_outcomes("down", [f"D{n}" for n in range(8)], 2, timeout=180)
        assert {o["status"] for o in down_outcomes.values()} == {"LINKED"}
        people = p.people("down")
        assert Counter(r["externalId"] for r in people) == Counter(f"D{n}" for n in range(8))
        assert {r["firstName"] for r in people} == {"Two"}
        assert not [d for d in p.dead_letters() if d["client_id"] == "down"]
        # Version 1 never went out: with version 2 parked behind it, it was superseded (one
        # call per entity after the outage, not one per change made during it).
        firsts = [
            o for o in p.outcomes("down") if o["version"] == 1 and o["status"] in FINAL_STATUSES
        ]
        assert {o["status"] for o in firsts} == {"SKIPPED"}
        assert any(o["message"] == SkipReason.SUPERSEDED for o in firsts)


def test_work_parked_past_its_budget_is_dead_lettered_with_the_reason(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    settings = {
        "CONNECTOR_RETRY_MAX_ELAPSED": "1",
        "CONNECTOR_BREAKER_FAILURES": "1",
        "CONNECTOR_BREAKER_COOLDOWN": "1",
        "CONNECTOR_PARK_BUDGET": "4",
    }
    with running_pipeline(kafka_bootstrap, tmp_path, **settings) as p:
        down = p.add_receiver("gone")
        down.call(lambda: down.receiver.faults.start_outage(600))
        p.start_worker()
        p.send("UserChanged", user_event("gone", "G1", 1))
        failed = p.wait_outcome("gone", "G1", 1, timeout=90)
        assert failed["status"] == "FAILED"
        assert "past the park budget" in failed["message"]
        (dead,) = wait_for("the dead letter", lambda: p.dead_letters())
        assert dead["client_id"] == "gone" and dead["error_class"] == "RetriesExhaustedError"
        headers = {h["key"] for h in dead["headers"]}
        assert "connector-parked-at" in headers  # where it waited, and since when
