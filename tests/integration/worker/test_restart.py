"""Crashes: kill -9 mid-stream, link tables rebuilt from the outcomes log, ordered commits."""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

from adapters.reference.faults import NO_FAULTS, FaultSpec
from tests.integration.harness import running_pipeline, user_event, wait_for


def test_a_slow_first_command_is_never_committed_past_and_is_delivered_after_kill_9(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    # One commands partition, so the slow and the fast commands share it (faust-streaming #606).
    # The slow receiver never answers (a hang never reaches its store, so nothing is created
    # behind our back), and retries may go on far longer than the test: however slow the
    # machine, the first command is still unfinished when the worker is killed.
    unbounded = {"CONNECTOR_RETRY_MAX_ELAPSED": "3600", "CONNECTOR_RETRY_MAX_ATTEMPTS": "1000"}
    with running_pipeline(
        kafka_bootstrap, tmp_path, CONNECTOR_COMMANDS_PARTITIONS="1", **unbounded
    ) as p:
        slow = p.start_receiver("slow", faults=FaultSpec(timeout_rate=1.0, hang_s=3600))
        p.turn_up("slow")
        p.add_receiver("fast")
        p.start_worker()
        p.send("UserChanged", user_event("slow", "8001", 1, first_name="Slow"))
        wait_for(
            "the slow create to be in flight",
            lambda: any(o["status"] == "PENDING_CREATE" for o in p.outcomes("slow")),
        )
        for i in range(20):
            p.send("UserChanged", user_event("fast", str(9000 + i), 1))
        p.wait_outcomes("fast", [str(9000 + i) for i in range(20)], 1)
        users_end = 21
        wait_for(
            "the worker to commit the planner's input",
            lambda: sum(p.committed(p.topics.users_topic).values()) >= users_end,
        )
        # Twenty later commands are done; the slow first one is not: nothing may be committed
        # past it on the commands partition.
        assert p.committed(p.topics.commands_topic).get(0, 0) == 0
        p.stop_worker(kill=True)

        slow.call(lambda: slow.receiver.faults.replace(NO_FAULTS, {}))
        p.start_worker()
        done = p.wait_outcome("slow", "8001", 1, timeout=90)
        assert done["status"] == "LINKED"
        slow_people = [x for x in p.people("slow") if x.get("externalId") == "8001"]
        assert len(slow_people) == 1 and slow_people[0]["firstName"] == "Slow"
        fast_ids = Counter(x["externalId"] for x in p.people("fast"))
        assert fast_ids == Counter(str(9000 + i) for i in range(20))  # replays made no duplicates
        wait_for(
            "the commands partition to be committed to its end",
            lambda: p.committed(p.topics.commands_topic).get(0, 0) >= 21,
        )


def test_a_worker_killed_mid_stream_rebuilds_its_links_from_the_log_and_ends_exact(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    with running_pipeline(kafka_bootstrap, tmp_path) as p:
        p.add_receiver("c", faults=FaultSpec(latency_ms=15, jitter_ms=15))
        p.start_worker()
        entities = [str(10_000 + i) for i in range(120)]
        for version in (1, 2):
            for intouch_id in entities:
                p.send(
                    "UserChanged",
                    user_event("c", intouch_id, version, first_name=f"V{version}-{intouch_id}"),
                )
        wait_for(
            "some users to be linked",
            lambda: sum(o["status"] == "LINKED" for o in p.outcomes("c")) >= 60,
        )
        p.stop_worker(kill=True)
        # A new machine: no local RocksDB, only the outcomes log.
        shutil.rmtree(tmp_path / "data")
        p.start_worker()
        p.wait_outcomes("c", entities, 2, timeout=120)
        people = p.people("c")
        counts = Counter(x["externalId"] for x in people)
        assert counts == Counter(entities), "every user exactly once"
        assert {x["externalId"]: x["firstName"] for x in people} == {i: f"V2-{i}" for i in entities}
