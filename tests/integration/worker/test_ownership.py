"""Partition ownership and no-op detection, end to end: real Kafka, real workers, real HTTP.

A rebalance never waits for a hanging receiver, and a change is skipped only when the link
table shows the receiver already has it — never because of what a process remembers sending.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from adapters.reference import FaultSpec
from demo.worker import stop_worker
from tests.integration.harness import (
    Pipeline,
    running_pipeline,
    settled,
    staff_event,
    user_event,
    wait_for,
)


def owners_of(p: Pipeline, members: int = 2) -> dict[str, int] | None:
    """Commands partitions per member of the worker group, once `members` members own some
    and the group is stable."""
    admin = AdminClient({"bootstrap.servers": p.bootstrap})
    (future,) = admin.describe_consumer_groups([p.app_id]).values()
    try:
        group = future.result(timeout=10)
    except KafkaException:  # e.g. NOT_COORDINATOR while the group is being set up: ask again
        return None
    commands = p.topic(p.topics.commands_topic)
    owned = {
        member.member_id: sum(
            1 for tp in member.assignment.topic_partitions if tp.topic == commands
        )
        for member in group.members
    }
    stable = str(group.state).upper().endswith("STABLE")
    return owned if stable and len(owned) == members and all(owned.values()) else None


def test_a_rebalance_with_a_hanging_receiver_completes_in_seconds(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    # Retries never give up and every call to one tenant's receiver hangs: those commands stay
    # in flight for as long as the test runs.
    unbounded = {
        "CONNECTOR_RETRY_MAX_ELAPSED": "3600",
        "CONNECTOR_RETRY_MAX_ATTEMPTS": "100000",
        "CONNECTOR_RECEIVER_TIMEOUT": "2",
    }
    with running_pipeline(kafka_bootstrap, tmp_path, **unbounded) as p:
        p.add_receiver("hang", faults=FaultSpec(timeout_rate=1.0, hang_s=3600))
        p.add_receiver("ok")
        p.start_worker()
        for n in range(6):
            p.send("UserChanged", user_event("hang", f"H{n}", 1))
        wait_for(
            "hanging creates to be in flight",
            lambda: len({o["intouch_id"] for o in p.outcomes("hang")}) >= 3,
        )
        (second,) = p.start_more_workers(1)
        started = time.monotonic()
        for n in range(12):
            p.send("UserChanged", user_event("ok", f"K{n}", 1))
        ok = p.wait_outcomes("ok", [f"K{n}" for n in range(12)], 1, timeout=60)
        assert {o["status"] for o in ok.values()} == {"LINKED"}
        took = time.monotonic() - started
        # The group rebalanced (a second worker joined) and every other tenant's commands,
        # on every partition, went through without waiting for the hanging ones.
        assert took < 30, f"other tenants waited {took:.1f}s behind a hanging receiver"
        assert second.poll() is None
        wait_for("both workers to own commands partitions", lambda: owners_of(p))
        # No change to one record was ever sent by two workers at once.
        hang = p.receivers["hang"]
        assert hang.call(lambda: list(hang.receiver.overlaps)) == []


def test_a_user_reverted_after_its_partition_moved_away_and_back_reaches_the_receiver(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    with running_pipeline(kafka_bootstrap, tmp_path) as p:
        p.add_receiver("pingpong")
        p.start_worker()
        users = [f"P{n}" for n in range(24)]  # spread over all six partitions

        def change(version: int, name: str) -> None:
            for intouch_id in users:
                p.send("UserChanged", user_event("pingpong", intouch_id, version, first_name=name))
            outcomes = p.wait_outcomes("pingpong", users, version)
            assert {o["status"] for o in outcomes.values()} == {"LINKED"}

        change(1, "Old")
        (second,) = p.start_more_workers(1)
        wait_for("both workers to own commands partitions", lambda: owners_of(p))
        change(2, "New")  # half of the users are changed by the second worker
        stop_worker(second)
        wait_for("the first worker to own every partition again", lambda: owners_of(p, 1))
        # Back to the values the first worker sent long ago: the receiver has "New", so every
        # one of them must go out, whoever sent what before.
        change(3, "Old")
        assert sorted(r["firstName"] for r in p.people("pingpong")) == ["Old"] * len(users)


def test_a_handover_with_a_lagging_link_reader_creates_nothing_twice(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    # Every worker's link reader trails the outcomes log by up to 10 s (the broker holds each
    # of its fetches that long), and every call takes 1 s at the receiver, so creates are in
    # flight, and their outcomes unread by the other workers, when the partitions move.
    lagging = json.dumps({"fetch.wait.max.ms": 10000, "fetch.min.bytes": 50_000_000})
    with running_pipeline(kafka_bootstrap, tmp_path, KAFKA_CONSUMER_CONFIG=lagging) as p:
        p.add_receiver("handover", faults=FaultSpec(latency_ms=1000))
        p.start_worker()
        p.start_more_workers(2)
        wait_for("three workers to own commands partitions", lambda: owners_of(p, 3))
        users = [f"H{n}" for n in range(36)]
        for intouch_id in users:
            p.send("UserChanged", user_event("handover", intouch_id, 1))
        receiver = p.receivers["handover"]
        wait_for(
            "creates to be in flight",
            lambda: receiver.call(lambda: receiver.receiver.in_flight) >= 6,
        )
        # One worker stops cleanly: its partitions, with creates in flight and outcomes just
        # written, go to two workers that have not read those outcomes yet.
        p.stop_worker()
        outcomes = p.wait_outcomes("handover", users, 1, timeout=120)
        # LINKED, or SKIPPED when the new owner re-ran a command its link shows done.
        assert {o["status"] for o in outcomes.values()} <= {"LINKED", "SKIPPED"}
        linked = {o["intouch_id"] for o in p.outcomes("handover") if o["status"] == "LINKED"}
        assert linked == set(users)
        wait_for("the receiver to settle", lambda: settled(p, "handover"))
        held = Counter(r["externalId"] for r in p.people("handover"))
        assert held == Counter(users), f"created twice: {[k for k, n in held.items() if n > 1]}"
        assert receiver.call(lambda: list(receiver.receiver.overlaps)) == []


@pytest.fixture(scope="module")
def p(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pipeline]:
    # Parked work is dead-lettered after 2 s here, so an outage ends in a dead letter quickly;
    # the breaker stays closed, so the first change after the outage goes out at once.
    with running_pipeline(
        kafka_bootstrap,
        tmp_path_factory.mktemp("noop"),
        CONNECTOR_PARK_BUDGET="2",
        CONNECTOR_BREAKER_FAILURES="1000000",
    ) as pipeline:
        for client_id in ("resend", "staff", "stale"):
            pipeline.add_receiver(client_id)
        pipeline.start_worker()
        yield pipeline


def test_an_identical_resend_after_a_dead_letter_reaches_the_receiver(p: Pipeline) -> None:
    receiver = p.receivers["resend"]
    receiver.call(lambda: receiver.receiver.faults.start_outage(60))
    p.send("UserChanged", user_event("resend", "R1", 1, first_name="Rae"))
    assert p.wait_outcome("resend", "R1", 1)["status"] == "FAILED"  # parked past its budget
    receiver.call(lambda: receiver.receiver.faults.start_outage(0))
    # InTouch sends the same values again: the receiver does not have them, so they go out.
    p.send("UserChanged", user_event("resend", "R1", 2, first_name="Rae"))
    assert p.wait_outcome("resend", "R1", 2)["status"] == "LINKED"
    assert [r["firstName"] for r in p.people("resend")] == ["Rae"]


def test_every_staff_save_attempts_the_match_again(p: Pipeline) -> None:
    p.send("StaffChanged", staff_event("staff", "1201", 1, email="late@club.com"))
    assert p.wait_outcome("staff", "1201", 1)["status"] == "UNLINKED"
    p.seed_staff("staff", "7777", "late@club.com", "Late Starter")  # added in the receiver
    p.send("StaffChanged", staff_event("staff", "1201", 2, email="late@club.com"))
    linked = p.wait_outcome("staff", "1201", 2)
    assert (linked["status"], linked["receiver_id"]) == ("LINKED", "7777")


def test_every_skipped_change_gets_an_outcome_with_the_reason(p: Pipeline) -> None:
    p.send("UserChanged", user_event("stale", "S1", 2, first_name="New"))
    assert p.wait_outcome("stale", "S1", 2)["status"] == "LINKED"
    p.send("UserChanged", user_event("stale", "S1", 1, first_name="Old"))  # arrives late
    skipped = wait_for(
        "the stale change's outcome",
        lambda: [o for o in p.outcomes("stale") if o["version"] == 1],
    )
    assert [(o["status"], o["message"][:6]) for o in skipped] == [("SKIPPED", "stale:")]
    # Unchanged values are skipped by the sink, in order, with their own outcome.
    p.send("UserChanged", user_event("stale", "S1", 3, first_name="New"))
    unchanged = p.wait_outcome("stale", "S1", 3)
    assert (unchanged["status"], unchanged["message"]) == (
        "SKIPPED",
        "the receiver has this already",
    )
    assert [r["firstName"] for r in p.people("stale")] == ["New"]
