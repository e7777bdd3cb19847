"""`connector dlq`, end to end: dead letters listed, explained, and sent again after a fix;
one that fails again comes back with its earlier tries, and a stale one is skipped."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from adapters.reference.faults import FaultSpec
from tests.integration.harness import (
    Pipeline,
    connector,
    running_pipeline,
    set_faults,
    user_event,
)
from tests.integration.ops.replay_steps import (
    dead_letters_of,
    replay_outcomes,
    run,
    turn_up_and_wait,
)

REJECT = FaultSpec(error_rate=1.0, error_status=400)

#: A rejected create leaves its pending marker (the worker cannot know a 4xx applied nothing),
#: so a replayed one first waits out the receiver timeout and grace, then looks: keep it short.
SHORT_SETTLE = {"CONNECTOR_RECEIVER_TIMEOUT": "2", "CONNECTOR_RECONCILE_GRACE": "0.5"}


@pytest.fixture(scope="module")
def p(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pipeline]:
    workdir = tmp_path_factory.mktemp("dlq")
    with running_pipeline(kafka_bootstrap, workdir, **SHORT_SETTLE) as pipeline:
        pipeline.add_receiver("rej")
        pipeline.add_receiver("bad")
        pipeline.start_worker()
        yield pipeline


def listed(p: Pipeline, *filters: str) -> list[dict[str, Any]]:
    done = connector(p.env(), "dlq", "list", "--json", *filters)
    assert done.returncode == 0, done.stderr
    rows: list[dict[str, Any]] = json.loads(done.stdout)
    return rows


def shown(p: Pipeline, dead_letter_id: str) -> dict[str, Any]:
    done = connector(p.env(), "dlq", "show", dead_letter_id)
    assert done.returncode == 0, done.stderr
    found: dict[str, Any] = json.loads(done.stdout)
    return found


def test_dead_letters_are_listed_by_client_stage_and_error_and_shown_with_their_event(
    p: Pipeline,
) -> None:
    set_faults(p, "rej", create_prospect=REJECT)
    p.send("UserChanged", user_event("rej", "R1", 1, first_name="Rita"))
    p.send("UserChanged", user_event("rej", "R2", 1, first_name="Rob"))
    p.send("UserChanged", user_event("ghost", "G1", 1))
    key = {"client_id": "ghost", "entity": "USER", "intouch_id": "G2"}
    p.send_raw(p.topics.users_topic, p.codecs["EntityKey"].encode(key), b"\x00garbage")
    dead_letters_of(p, "rej", 2)
    dead_letters_of(p, "ghost", 2)  # the undecodable one keeps the client of its key

    rows = listed(p, "--client", "rej")
    assert sorted(r["entity"]["intouch_id"] for r in rows) == ["R1", "R2"]
    assert {(r["stage"], r["error_class"], r["replays"] == []) for r in rows} == {
        ("sink", "PermanentError", True)
    }
    (decode,) = listed(p, "--stage", "decode")
    assert (decode["client_id"], decode["entity"]["intouch_id"]) == ("ghost", "G2")
    (unknown,) = listed(p, "--error", "unknowntenanterror", "--since", "PT10M")
    assert unknown["client_id"] == "ghost" and unknown["stage"] == "planner"
    assert listed(p, "--since", "2999-01-01") == []

    table = connector(p.env(), "dlq", "list", "--client", "rej")
    assert table.stdout.splitlines()[0].split()[:3] == ["ID", "FAILED", "AT"]
    assert all(r["dead_letter_id"] in table.stdout for r in rows)

    r1 = next(r for r in rows if r["entity"]["intouch_id"] == "R1")
    details = shown(p, r1["dead_letter_id"][:8])
    assert details["dead_letter_id"] == r1["dead_letter_id"]
    assert (details["stage"], details["attempts"], details["subject"]) == ("sink", 1, "Command")
    assert "400" in details["error_message"]
    assert details["record"]["kind"] == "UPSERT_PROSPECT"
    event = details["intouch_event"]
    assert event["planned_from"].startswith(p.topic(p.topics.users_topic) + "[")
    assert event["record"]["first_name"] == "Rita" and event["record"]["intouch_id"] == "R1"
    assert details["source_position"].startswith(p.topic(p.topics.commands_topic))
    assert "dead letter (sink) for client rej, USER R1" in p.worker_log()

    missing = connector(p.env(), "dlq", "show", "no-such-id")
    assert missing.returncode == 1 and "no dead letter no-such-id" in missing.stderr


def test_after_the_fix_a_dlq_replay_delivers_skips_what_is_stale_and_shows_as_replayed(
    p: Pipeline,
) -> None:
    set_faults(p, "rej")  # fixed
    p.send("UserChanged", user_event("rej", "R2", 2, first_name="Robert"))
    assert p.wait_outcome("rej", "R2", 2)["status"] == "LINKED"
    turn_up_and_wait(p, "ghost")

    dry = run(p, "dlq", "replay", "--client", "rej", "--dry-run")
    assert len(dry["dead_letters"]) == 2 and dry["replay_id"] is None and not dry["sent"]
    assert all(not r["replays"] for r in listed(p, "--client", "rej"))

    done = run(p, "dlq", "replay", "--client", "rej")
    assert len(done["dead_letters"]) == 2 and done["sent"]
    rows = replay_outcomes(p, done["replay_id"], 2)
    by_id = {o["intouch_id"]: o for o in rows}
    assert by_id["R1"]["status"] == "LINKED"
    assert (by_id["R2"]["status"], by_id["R2"]["version"]) == ("SKIPPED", 1)  # stale
    people = {r["externalId"]: r["firstName"] for r in p.people("rej")}
    assert people == {"R1": "Rita", "R2": "Robert"}

    for row in listed(p, "--client", "rej"):
        assert [r["replay_id"] for r in row["replays"]] == [done["replay_id"]]
        assert shown(p, row["dead_letter_id"])["replays"][0]["replay_id"] == done["replay_id"]
    again = run(p, "dlq", "replay", "--client", "rej")
    assert (again["dead_letters"], again["already_replayed"]) == ([], 2)

    planner = run(p, "dlq", "replay", "--stage", "planner", "--client", "ghost")
    (outcome,) = replay_outcomes(p, planner["replay_id"], 1)
    assert (outcome["intouch_id"], outcome["status"]) == ("G1", "LINKED")


def test_a_dead_letter_that_fails_again_returns_to_the_dlq_with_its_earlier_tries(
    p: Pipeline,
) -> None:
    set_faults(p, "bad", create_prospect=REJECT)
    p.send("UserChanged", user_event("bad", "B1", 1))
    (first,) = dead_letters_of(p, "bad", 1)

    once = run(p, "dlq", "replay", "--client", "bad")
    assert once["dead_letters"] == [first["dead_letter_id"]]
    second = next(d for d in dead_letters_of(p, "bad", 2) if d != first)
    failed = replay_outcomes(p, once["replay_id"], 1)[0]
    assert failed["status"] == "FAILED" and failed["intouch_id"] == "B1"
    details = shown(p, second["dead_letter_id"])
    assert [h["dead_letter_id"] for h in details["history"]] == [first["dead_letter_id"]]
    assert details["replayed_from"]["replay_id"] == once["replay_id"]
    assert details["intouch_event"]["record"]["intouch_id"] == "B1"  # through the replay

    twice = run(p, "dlq", "replay", "--client", "bad")  # only the new one: no loop
    assert twice["dead_letters"] == [second["dead_letter_id"]] and twice["already_replayed"] == 1
    third = next(d for d in dead_letters_of(p, "bad", 3) if d not in (first, second))
    history = shown(p, third["dead_letter_id"])["history"]
    assert [h["dead_letter_id"] for h in history] == [
        first["dead_letter_id"],
        second["dead_letter_id"],
    ]
    assert {h["error_class"] for h in history} == {"PermanentError"}
    assert not p.people("bad")
