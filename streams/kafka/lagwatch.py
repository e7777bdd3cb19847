"""A consumer group's lag sampled over time and judged with Burrow's rules (see lagstatus)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from streams.exceptions import ConfigurationError, KafkaClientError
from streams.kafka.commitlog import CommitLog
from streams.kafka.lag import LagReader
from streams.kafka.lagstatus import DEFAULT_WINDOW, PartitionWindow, Status, Window, group_status

Clock = Callable[[], float]


def group_topics(reader: LagReader, group: str, fallback: Iterable[str] = ()) -> list[str]:
    """The topics `group` has committed offsets on; else those of `fallback` that exist; else a
    clear error (an unknown group, or a group that never committed)."""
    found = reader.committed_topics(group)
    if found:
        return found
    existing = []
    for topic in fallback:
        try:
            reader.end_offsets([topic])
        except KafkaClientError:
            continue
        existing.append(topic)
    if existing:
        return existing
    raise ConfigurationError(
        f"consumer group {group} has committed no offsets on this cluster: "
        "name a group that has (--group), or its topics (--topic)"
    )


@dataclass(frozen=True)
class PartitionReport:
    topic: str
    partition: int
    committed: int | None
    end: int
    lag: int
    status: Status


@dataclass(frozen=True)
class GroupReport:
    group: str
    status: Status
    partitions: list[PartitionReport]
    samples: int
    #: "logged" when commit times come from the broker's offsets topic, "observed" when only
    #: changes of the committed offsets between samples could be seen.
    commit_times: str
    at: float

    @property
    def total_lag(self) -> int:
        return sum(p.lag for p in self.partitions)

    def as_json(self) -> dict[str, Any]:
        return {
            "group": self.group,
            "status": self.status.name,
            "total_lag": self.total_lag,
            "samples": self.samples,
            "commit_times": self.commit_times,
            "at": round(self.at, 3),
            "partitions": [
                {
                    "topic": p.topic,
                    "partition": p.partition,
                    "committed": p.committed,
                    "end": p.end,
                    "lag": p.lag,
                    "status": p.status.name,
                }
                for p in self.partitions
            ],
        }


class LagWatch:
    """Samples `group`'s commits and the end offsets of `topics` into one window per partition.

    Each `sample` is one of Burrow's offset refreshes: the end offsets, then every commit the
    group made since the last sample, each with its own commit time. The first sample also
    takes the group's committed offsets as a commit made then, so a group that commits nothing
    while it is watched is judged too. Without `commit_log`, a commit is seen only as a change
    of the committed offset between two samples, and a stall reads as a stop.
    """

    def __init__(
        self,
        reader: LagReader,
        group: str,
        topics: Iterable[str],
        window: Window = DEFAULT_WINDOW,
        commit_log: CommitLog | None = None,
        clock: Clock = time.time,
    ) -> None:
        self.reader = reader
        self.group = group
        self.topics = list(topics)
        self.window = window
        self.commit_log = commit_log
        self.clock = clock
        self.windows: dict[tuple[str, int], PartitionWindow] = {}
        self.samples = 0
        self._seen: dict[tuple[str, int], int | None] = {}

    def sample(self) -> None:
        ends = self.reader.end_offsets(self.topics)
        logged = self.commit_log.read_new() if self.commit_log is not None else []
        now = self.clock()
        for tp, end in ends.items():
            self._window(tp).observe_end(end)
        for commit in logged:
            tp = (commit.topic, commit.partition)
            if tp in ends:
                self._window(tp).observe_commit(commit.timestamp, commit.offset, ends[tp])
        if self.samples == 0 or self.commit_log is None:
            committed = self.reader.committed(self.group, ends)
            for tp, offset in committed.items():
                changed = offset != self._seen.get(tp)
                self._seen[tp] = offset
                already = any((c.topic, c.partition) == tp for c in logged)
                if offset is not None and changed and not already:
                    self._window(tp).observe_commit(now, offset, ends[tp])
        self.samples += 1

    def report(self) -> GroupReport:
        now = self.clock()
        rows = []
        for (topic, partition), window in sorted(self.windows.items()):
            result = window.evaluate(now)
            rows.append(
                PartitionReport(
                    topic, partition, result.committed, result.end or 0, result.lag, result.status
                )
            )
        status = group_status(r.status for r in rows)
        times = "logged" if self.commit_log is not None else "observed"
        return GroupReport(self.group, status, rows, self.samples, times, now)

    def _window(self, tp: tuple[str, int]) -> PartitionWindow:
        if tp not in self.windows:
            self.windows[tp] = PartitionWindow(self.window)
        return self.windows[tp]
