"""LagWatch's sampling: end offsets and logged commits into windows, with no broker."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, cast

import pytest

from streams.exceptions import ConfigurationError, KafkaClientError
from streams.kafka.commitlog import CommitLog, OffsetCommit
from streams.kafka.lag import LagReader
from streams.kafka.lagstatus import Status, Window
from streams.kafka.lagwatch import LagWatch, group_topics

TP = ("t.users", 0)


class FakeReader:
    def __init__(self) -> None:
        self.end = 100
        self.offset: int | None = 40
        self.topics: list[str] = []
        self.existing: set[str] = set()

    def end_offsets(self, topics: Iterable[str]) -> dict[tuple[str, int], int]:
        for topic in topics:
            if topic != TP[0] and topic not in self.existing:
                raise KafkaClientError(f"topic {topic}: unknown")
        return {TP: self.end}

    def committed(self, group: str, partitions: Iterable[tuple[str, int]]) -> dict[Any, Any]:
        return {tp: self.offset for tp in partitions}

    def committed_topics(self, group: str) -> list[str]:
        return self.topics


class FakeLog:
    def __init__(self) -> None:
        self.pending: list[OffsetCommit] = []

    def read_new(self) -> list[OffsetCommit]:
        found, self.pending = self.pending, []
        return found


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def watch(log: FakeLog | None) -> tuple[FakeReader, Clock, LagWatch]:
    reader, clock = FakeReader(), Clock()
    watcher = LagWatch(
        cast(LagReader, reader), "g", [TP[0]], Window(), cast(CommitLog | None, log), clock
    )
    return reader, clock, watcher


def test_the_first_sample_takes_the_committed_offset_as_a_commit_made_then() -> None:
    _, clock, watcher = watch(FakeLog())
    watcher.sample()
    clock.now += 2
    watcher.sample()
    report = watcher.report()
    assert report.as_json()["partitions"] == [
        {"topic": "t.users", "partition": 0, "committed": 40, "end": 100, "lag": 60,
         "status": "STOP"}
    ]  # fmt: skip
    assert (report.status, report.commit_times, report.samples) == (Status.ERR, "logged", 2)


def test_logged_commits_of_one_offset_make_a_stall() -> None:
    log = FakeLog()
    reader, clock, watcher = watch(log)
    watcher.sample()
    for _ in range(4):
        clock.now += 1
        reader.end += 10
        log.pending = [OffsetCommit("g", "t.users", 0, 40, clock.now - 0.1)]
        log.pending.append(OffsetCommit("g", "other", 0, 1, clock.now))  # not watched
        watcher.sample()
    report = watcher.report()
    assert report.partitions[0].status is Status.STALL
    assert report.partitions[0].lag == 100
    assert [c.offset for c in watcher.windows[TP].commits] == [40] * 5


def test_without_the_commit_log_only_changes_count_as_commits() -> None:
    reader, clock, watcher = watch(None)
    for offset in (40, 40, 50, 50):
        reader.offset = offset
        reader.end += 5
        clock.now += 1
        watcher.sample()
    assert [c.offset for c in watcher.windows[TP].commits] == [40, 50]
    assert watcher.report().commit_times == "observed"


def test_a_never_committed_partition_counts_its_lag_from_zero_and_is_ok() -> None:
    reader, _, watcher = watch(FakeLog())
    reader.offset = None
    watcher.sample()
    row = watcher.report().partitions[0]
    assert (row.committed, row.lag, row.status) == (None, 100, Status.OK)


def test_topics_are_the_committed_ones_else_the_fallback_that_exist_else_an_error() -> None:
    reader = FakeReader()
    lag_reader = cast(LagReader, reader)
    reader.topics = ["a", "b"]
    assert group_topics(lag_reader, "g", ["x"]) == ["a", "b"]
    reader.topics = []
    reader.existing = {"x"}
    assert group_topics(lag_reader, "g", ["x", "y"]) == ["x"]
    with pytest.raises(ConfigurationError, match="group g has committed no offsets"):
        group_topics(lag_reader, "g", ["y"])
