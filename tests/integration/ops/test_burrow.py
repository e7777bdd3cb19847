"""`connector lag` reaches the status Burrow 1.2.1 gives the same consumer group: stall, stop, OK.

This module runs its own Apache Kafka 3.9.2 broker instead of the session's 4.1.1 one: Burrow
1.2.1 (Debian's `burrow`) cannot read offsets from Kafka 4.x, whose brokers dropped the old
request versions it speaks (every offset fetch ends in EOF). Against 3.9.2 it works with
`kafka-version="2.0.0"` in its client profile. It also needs a ZooKeeper for its own
coordination, so one from Debian's `zookeeper` runs on loopback too.

Each test drives a consumer group itself, committing offsets explicitly on a paced schedule,
waits until Burrow's HTTP API reports the expected status, then runs `connector lag --json`
with the same window (intervals, min-distance, offset refresh) while the group goes on, and
checks both agree.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import TopicPartition
from confluent_kafka.admin import NewTopic

from demo.worker import clean_env
from streams.kafka import clients
from streams.kafka.local import LocalKafka
from streams.settings import KafkaSettings, LocalKafkaSettings
from tests.integration.harness import connector, wait_for
from tests.integration.ops.services import (
    Burrow,
    BurrowWindow,
    burrow,
    create_offsets_topic,
    zookeeper,
)

WINDOW = BurrowWindow(intervals=6, min_distance=1, offset_refresh=1)

#: Seconds between two steps of a driven group (pacing of the load, not synchronization).
TICK = 0.25

#: A plan says, for a step and the partition's end offset, which offset to commit (or none).
Plan = Callable[[int, int], int | None]


@dataclass
class Cluster:
    kafka: str
    burrow: Burrow
    workdir: Path


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    workdir = tmp_path_factory.mktemp("burrow")
    local = LocalKafka(LocalKafkaSettings(state_dir=workdir / "kafka", kafka_version="3.9.2"))
    info = local.up()
    try:
        create_offsets_topic(info.bootstrap)
        with (
            zookeeper(workdir / "zookeeper") as zk,
            burrow(workdir / "burrow", info.bootstrap, zk, WINDOW) as api,
        ):
            yield Cluster(info.bootstrap, api, workdir)
    finally:
        local.down()


class DrivenGroup(threading.Thread):
    """Produces `per_step` records to a one-partition topic each step and commits as `plan`
    says, as group `group`, without joining it (explicit commits only)."""

    def __init__(self, kafka: str, topic: str, group: str, per_step: int, plan: Plan) -> None:
        super().__init__(daemon=True)
        settings = KafkaSettings()
        self.producer = clients.producer(kafka, settings)
        self.consumer = clients.consumer(kafka, settings, group)
        self.topic, self.per_step, self.plan = topic, per_step, plan
        self.end = 0
        self.halt = threading.Event()
        self.error: BaseException | None = None

    def produce(self, count: int) -> None:
        for _ in range(count):
            self.producer.produce(self.topic, value=b"x")
        assert self.producer.flush(30) == 0
        self.end += count

    def run(self) -> None:
        step = 0
        try:
            while not self.halt.wait(TICK):
                self.produce(self.per_step)
                offset = self.plan(step, self.end)
                if offset is not None:
                    tp = TopicPartition(self.topic, 0, offset)
                    self.consumer.commit(offsets=[tp], asynchronous=False)
                step += 1
        except BaseException as exc:
            self.error = exc

    def stop(self) -> None:
        self.halt.set()
        self.join(timeout=30)
        self.consumer.close()
        assert self.error is None, f"the driven group failed: {self.error!r}"


@pytest.fixture
def drive(cluster: Cluster, unique: str) -> Iterator[Callable[..., DrivenGroup]]:
    started: list[DrivenGroup] = []

    def start(name: str, plan: Plan, per_step: int, backlog: int = 0) -> DrivenGroup:
        topic, group = f"lag-{unique}-{name}", f"lag-{unique}-{name}"
        admin = clients.admin(cluster.kafka, KafkaSettings())
        for future in admin.create_topics([NewTopic(topic, 1, 1)]).values():
            future.result(timeout=30)
        wait_for(f"Burrow to know {topic} and its end offset", lambda: _known(cluster, topic))
        group_driver = DrivenGroup(cluster.kafka, topic, group, per_step, plan)
        group_driver.produce(backlog)
        group_driver.start()
        started.append(group_driver)
        return group_driver

    yield start
    for group_driver in started:
        group_driver.stop()


def _known(cluster: Cluster, topic: str) -> bool:
    code, body = cluster.burrow.get(f"/v3/kafka/local/topic/{topic}")
    return code == 200 and bool(body.get("offsets"))


def burrow_says(cluster: Cluster, group: str, partition_status: str) -> dict[str, Any]:
    """Wait until Burrow gives partition 0 of `group` `partition_status`; its group status."""

    seen: list[dict[str, Any] | None] = [None]

    def check() -> dict[str, Any] | None:
        seen[0] = status = cluster.burrow.lag(group)
        if status is None or not status.get("partitions"):
            return None
        return status if status["partitions"][0]["status"] == partition_status else None

    try:
        found: dict[str, Any] = wait_for(f"Burrow to call {group} {partition_status}", check, 60)
    except AssertionError as exc:
        raise AssertionError(f"{exc}; Burrow said last: {seen[0]}") from None
    return found


def connector_lag(cluster: Cluster, group: str, topic: str) -> dict[str, Any]:
    env = clean_env()
    env.update(
        KAFKA_BOOTSTRAP_SERVERS=cluster.kafka,
        CONNECTOR_STATE_DIR=str(cluster.workdir / "cli-state"),
    )
    done = connector(
        env, "lag", "--group", group, "--topic", topic, "--json", "--samples", "3",
        "--interval", str(WINDOW.offset_refresh), "--intervals", str(WINDOW.intervals),
        "--min-distance", str(WINDOW.min_distance), timeout=60,
    )  # fmt: skip
    report: dict[str, Any] = json.loads(done.stdout)
    assert done.returncode == {"OK": 0, "WARN": 3, "ERR": 4}[report["status"]], done.stderr
    return report


def agree(
    cluster: Cluster, group: str, topic: str, partition: str, group_status: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Burrow's and our reports, both with `partition` for the partition and `group_status`."""
    burrow_before = burrow_says(cluster, group, partition)
    ours = connector_lag(cluster, group, topic)
    burrow_after = burrow_says(cluster, group, partition)
    assert burrow_before["status"] == burrow_after["status"] == group_status
    assert [p["status"] for p in ours["partitions"]] == [partition], ours
    assert ours["status"] == group_status, ours
    assert ours["commit_times"] == "logged"
    return burrow_after, ours


def test_a_group_committing_one_offset_while_lag_grows_is_stalled_for_both(
    cluster: Cluster, drive: Callable[..., DrivenGroup]
) -> None:
    driven = drive("stall", plan=lambda step, end: 3, per_step=5)
    agree(cluster, driven.topic, driven.topic, "STALL", "ERR")


def test_a_group_that_stops_committing_while_lagging_is_stopped_for_both(
    cluster: Cluster, drive: Callable[..., DrivenGroup]
) -> None:
    def plan(step: int, end: int) -> int | None:
        return 2 * step if step < 12 else None  # moves, falls behind, then goes silent

    driven = drive("stop", plan=plan, per_step=5)
    agree(cluster, driven.topic, driven.topic, "STOP", "ERR")


def test_a_group_catching_up_on_a_backlog_is_ok_for_both(
    cluster: Cluster, drive: Callable[..., DrivenGroup]
) -> None:
    driven = drive("catchup", plan=lambda step, end: min(5 * step, end), per_step=1, backlog=600)
    theirs, ours = agree(cluster, driven.topic, driven.topic, "OK", "OK")
    assert theirs["partitions"][0]["current_lag"] > 0, theirs  # still catching up
    assert ours["total_lag"] > 0, ours
