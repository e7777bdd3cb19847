"""`connector lag --json` on a real worker's group: a backlog shows, then drains to zero."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.integration.harness import Pipeline, connector, running_pipeline, user_event, wait_for

EXIT_STATUS = {"OK": 0, "WARN": 3, "ERR": 4}


def lag_report(p: Pipeline, *args: str) -> dict[str, Any]:
    """`connector lag --json` as the worker's operator runs it: group and topics by default."""
    env = {**p.env(), "CONNECTOR_STATE_DIR": str(p.workdir / "cli-state")}
    done = connector(env, "lag", "--json", "--samples", "2", "--interval", "0.5", *args)
    report: dict[str, Any] = json.loads(done.stdout)
    # The exit status is the group's status, for scripts: 0 OK, 3 WARN, 4 ERR.
    assert done.returncode == EXIT_STATUS[report["status"]], done.stderr
    return report


def lag_on(report: dict[str, Any], topic: str) -> int:
    return sum(row["lag"] for row in report["partitions"] if row["topic"] == topic)


def test_a_backlog_shows_as_lag_while_the_worker_is_stopped_and_drains_to_zero(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    with running_pipeline(kafka_bootstrap, tmp_path) as p:
        p.add_receiver("lagcli")
        users = p.topic(p.topics.users_topic)
        p.start_worker()
        p.send("UserChanged", user_event("lagcli", "1", 1))
        p.wait_outcome("lagcli", "1", 1)
        wait_for(
            "the worker to commit its first event",
            lambda: sum(p.committed(p.topics.users_topic).values()) == 1,
        )
        p.stop_worker()

        for n in range(2, 152):
            p.send("UserChanged", user_event("lagcli", str(n), 1))
        backlog = lag_report(p)
        assert backlog["group"] == p.app_id
        assert backlog["commit_times"] == "logged"  # read from __consumer_offsets of Kafka 4.1
        assert lag_on(backlog, users) == 150, backlog
        rows = [r for r in backlog["partitions"] if r["topic"] == users]
        # Lagging, and nothing commits: STOP where the group has committed; a partition it
        # never committed on has no commit to judge, and is OK as in Burrow.
        assert {r["status"] for r in rows if r["committed"] is not None and r["lag"]} == {"STOP"}
        assert {r["status"] for r in rows if r["committed"] is None} <= {"OK"}
        assert backlog["status"] == "ERR"
        stopped = connector({**p.env(), "CONNECTOR_STATE_DIR": str(p.workdir / "cli-state")}, "lag")
        assert stopped.returncode == 4, stopped.stderr
        assert "status ERR" in stopped.stdout.splitlines()[0]

        p.start_worker()

        def caught_up() -> dict[str, Any] | None:
            report = lag_report(p)
            return report if report["total_lag"] == 0 else None

        drained = wait_for("the worker's lag to reach zero", caught_up, timeout=120)
        assert users in {row["topic"] for row in drained["partitions"]}
        assert drained["status"] == "OK"
        assert {row["status"] for row in drained["partitions"]} == {"OK"}
        assert len(p.people("lagcli")) == 151


def test_an_unknown_group_and_an_unreachable_broker_are_clear_errors(
    kafka_bootstrap: str, tmp_path: Path, test_env: dict[str, str], unique: str
) -> None:
    done = connector(test_env, "lag", "--group", f"nobody-{unique}", "--samples", "1")
    assert done.returncode == 1
    assert f"consumer group nobody-{unique} has committed no offsets" in done.stderr

    env = {**test_env, "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1"}
    done = connector(env, "lag", "--group", "g", "--samples", "1", "--timeout", "2")
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("error: cannot list the topics of Kafka at 127.0.0.1:1"), done.stderr
    assert "Traceback" not in done.stderr
