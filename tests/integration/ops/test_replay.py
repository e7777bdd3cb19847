"""`connector replay`, end to end: a range of an inbound topic planned again while the worker
runs, marked as a replay, and harmless the second time (no duplicate, no stale overwrite)."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from streams.kafka.lag import end_offsets
from streams.ops.replay import group_members
from tests.integration.harness import Pipeline, connector, running_pipeline, user_event, wait_for
from tests.integration.ops.replay_steps import (
    dead_letters_of,
    replay_outcomes,
    run,
    turn_up_and_wait,
)

USERS = "intouch.users.v1"


@pytest.fixture(scope="module")
def p(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pipeline]:
    with running_pipeline(kafka_bootstrap, tmp_path_factory.mktemp("replay")) as pipeline:
        pipeline.add_receiver("live")
        pipeline.start_worker()
        yield pipeline


def person(p: Pipeline, client_id: str, intouch_id: str) -> dict[str, Any]:
    (found,) = [r for r in p.people(client_id) if r.get("externalId") == intouch_id]
    return found


def test_replay_by_offset_delivers_what_was_missed_once_and_a_second_replay_changes_nothing(
    p: Pipeline,
) -> None:
    # Changes of a client not turned up yet are dead-lettered; after its turn-up, replaying
    # them is what brings its receiver up to date.
    p.send("UserChanged", user_event("late1", "U1", 1, first_name="Ann"))
    p.send("UserChanged", user_event("late1", "U1", 2, first_name="Anna"))
    first, _ = sorted(dead_letters_of(p, "late1", 2), key=lambda d: d["source_offset"])
    assert first["error_class"] == "UnknownTenantError"
    turn_up_and_wait(p, "late1")

    partition, offset = str(first["source_partition"]), str(first["source_offset"])
    args = ["replay", "--topic", USERS, "--partition", partition, "--from-offset", offset]
    once = run(p, *args)
    assert once["replayed"] >= 2 and once["filtered"] == 0
    rows = replay_outcomes(p, once["replay_id"], once["replayed"])
    mine = sorted((o["version"], o["status"]) for o in rows if o["intouch_id"] == "U1")
    assert mine == [(1, "LINKED"), (2, "LINKED")]
    assert person(p, "late1", "U1")["firstName"] == "Anna"
    calls = p.calls("late1")
    assert (calls.get("create_prospect"), calls.get("update_prospect")) == (2, 1)  # U1, probe

    p.send("UserChanged", user_event("late1", "U1", 3, first_name="Annie"))
    assert p.wait_outcome("late1", "U1", 3)["status"] == "LINKED"
    calls = p.calls("late1")
    twice = run(p, *args)
    rows = replay_outcomes(p, twice["replay_id"], twice["replayed"])
    assert twice["replayed"] == once["replayed"] + 1  # the live version 3 is in the range now
    assert {o["status"] for o in rows} == {"SKIPPED"}
    assert all(o["message"].startswith("stale") for o in rows)
    assert p.calls("late1") == calls  # no duplicate create, no call at all
    assert person(p, "late1", "U1")["firstName"] == "Annie"  # no stale overwrite
    assert [r["externalId"] for r in p.people("late1")].count("U1") == 1


def test_replay_by_time_for_one_client_touches_only_that_client_and_twice_is_harmless(
    p: Pipeline,
) -> None:
    # Record timestamps are in milliseconds: start at this one, before anything below is sent.
    now = dt.datetime.now(dt.UTC)
    since = now.replace(microsecond=now.microsecond // 1000 * 1000).isoformat()
    for n in range(3):
        p.send("UserChanged", user_event("late2", f"T{n}", 1, first_name="Tess"))
        p.send("UserChanged", user_event("live", f"L{n}", 1))
    dead_letters_of(p, "late2", 3)
    p.wait_outcomes("live", [f"L{n}" for n in range(3)], 1)
    turn_up_and_wait(p, "late2")
    live_calls = p.calls("live")

    once = run(p, "replay", "--topic", p.topic(USERS), "--from-time", since, "--client", "late2")
    assert (once["replayed"], once["filtered"]) == (4, 3)  # 3 changes and the probe; 3 others
    rows = replay_outcomes(p, once["replay_id"], 4)
    assert {o["client_id"] for o in rows} == {"late2"}
    assert Counter(o["status"] for o in rows) == {"LINKED": 3, "SKIPPED": 1}
    assert p.calls("live") == live_calls
    calls = p.calls("late2")

    twice = run(p, "replay", "--topic", USERS, "--from-time", since, "--client", "late2")
    rows = replay_outcomes(p, twice["replay_id"], 4)
    assert {(o["client_id"], o["status"]) for o in rows} == {("late2", "SKIPPED")}
    assert p.calls("late2") == calls and p.calls("live") == live_calls
    assert sorted(r["externalId"] for r in p.people("late2")) == ["T0", "T1", "T2", "probe"]


def test_replay_by_duration_of_everything_recent_creates_only_what_was_missing(
    p: Pipeline,
) -> None:
    p.send("UserChanged", user_event("late3", "D1", 1, city="Oslo"))
    dead_letters_of(p, "late3", 1)
    turn_up_and_wait(p, "late3")
    before = {c: p.calls(c) for c in ("live", "late1", "late2")}

    once = run(p, "replay", "--topic", USERS, "--by-duration", "PT10M")
    rows = replay_outcomes(p, once["replay_id"], once["replayed"])
    assert once["filtered"] == 0 and once["replayed"] >= 13  # every earlier test's changes
    created = [o for o in rows if o["status"] != "SKIPPED"]
    assert [(o["client_id"], o["intouch_id"]) for o in created] == [("late3", "D1")]
    assert {c: p.calls(c) for c in before} == before
    calls = p.calls("late3")

    twice = run(p, "replay", "--topic", USERS, "--by-duration", "10m")
    rows = replay_outcomes(p, twice["replay_id"], twice["replayed"])
    assert {o["status"] for o in rows} == {"SKIPPED"}
    assert p.calls("late3") == calls
    assert person(p, "late3", "D1")["address"]["city"] == "Oslo"


def test_a_dry_run_sends_nothing_and_says_where_positions_were_clamped(p: Pipeline) -> None:
    replay_topic = p.topic(p.topics.replay_topic)
    sent_before = end_offsets(p.bootstrap, p.kafka, replay_topic)
    done = connector(
        p.env(), "replay", "--topic", USERS, "--partition", "0", "--from-offset", "-5",
        "--to-offset", "100000", "--dry-run",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    high = end_offsets(p.bootstrap, p.kafka, p.topic(USERS))[0]
    assert f"{p.topic(USERS)}[0]: offsets 0..{high} ({high} records" in done.stdout
    assert "offset -5 is gone (first kept: 0): starting at 0" in done.stderr
    assert f"end offset 100000 is past the end ({high}): stopping at {high}" in done.stderr
    assert f"dry run: {high} records would be replayed; nothing sent" in done.stdout

    past = connector(p.env(), "replay", "--topic", USERS, "--from-offset", "100000", "--dry-run")
    assert "is past the end" in past.stderr and "0 records would be replayed" in past.stdout
    assert end_offsets(p.bootstrap, p.kafka, replay_topic) == sent_before

    wrong = connector(p.env(), "replay", "--topic", "connector.commands.v1", "--from-earliest")
    assert wrong.returncode == 1 and "is not an inbound topic" in wrong.stderr
    both = connector(p.env(), "replay", "--topic", USERS, "--from-earliest", "--from-offset", "1")
    assert both.returncode == 2 and "exactly one start" in both.stderr


def test_reset_group_is_refused_while_a_worker_runs_and_moves_the_offsets_when_none_does(
    p: Pipeline,
) -> None:
    """Last in the module: it stops the worker."""
    args = ("replay", "--topic", USERS, "--from-earliest", "--reset-group")
    looked = connector(p.env(), *args, "--dry-run")
    assert looked.returncode == 0, looked.stderr
    assert f"warning: group {p.app_id} has 1 live member(s) now" in looked.stderr
    refused = connector(p.env(), *args)
    assert refused.returncode == 1
    assert f"group {p.app_id} has 1 live member(s)" in refused.stderr
    assert p.committed(USERS) and set(p.committed(USERS).values()) != {0}

    p.stop_worker()
    wait_for(
        "the worker to leave its group",
        lambda: not group_members(p.bootstrap, p.kafka, p.app_id, 10.0),
        timeout=30,
    )
    done = connector(p.env(), *args)
    assert done.returncode == 0, done.stderr
    assert p.committed(USERS) == {n: 0 for n in range(p.topics.inbound_partitions)}
