"""Burrow's consumer lag evaluation (its 1.2.1 rules), pure: commits and end offsets in.

A partition keeps a sliding window of the group's last `intervals` commits, each with the lag it
had when it was committed, and the partition's last `intervals` end offsets. Its status, as
Burrow's caching evaluator decides it:

- OK when the current lag is zero, or the lag was zero at some commit of the window;
- STOP when the lag is non-zero, no commit came for longer than the window spans (now minus the
  last commit is more than the last commit minus the first) and no end offset of the window is
  at or below the last commit (the consumer was not caught up a moment ago);
- REWIND when a commit of the window is lower than the one before it;
- STALL when every commit of the window is the same offset (the consumer commits, but does not
  move) while the lag is non-zero;
- WARN when the lag never decreases from one commit to the next (the consumer is too slow);
- otherwise OK.

A group's status is its worst partition's: OK, WARN, or ERR when any partition is STOP, STALL
or REWIND (Burrow reports those three only per partition).
"""

from __future__ import annotations

import enum
import itertools
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass


class Status(enum.IntEnum):
    """Burrow's statuses, ordered by severity."""

    OK = 1
    WARN = 2
    ERR = 3
    STOP = 4
    STALL = 5
    REWIND = 6


@dataclass(frozen=True)
class Window:
    """How much history a partition keeps, as Burrow's storage and evaluator settings."""

    #: Commits (and end offsets) kept per partition: Burrow's `intervals`.
    intervals: int = 10
    #: Seconds under which a commit replaces the previous one instead of taking a new slot
    #: (it keeps the replaced one's timestamp): Burrow's `min-distance`.
    min_distance: float = 0.0
    #: Fraction of the window that must be filled before a status other than OK is given:
    #: Burrow's `minimum-complete`.
    min_complete: float = 0.0

    def __post_init__(self) -> None:
        if self.intervals < 1:
            raise ValueError("a window keeps at least one commit")
        if self.min_distance < 0 or not 0 <= self.min_complete <= 1:
            raise ValueError("min_distance must be >= 0 and min_complete within 0..1")


DEFAULT_WINDOW = Window()


@dataclass(frozen=True)
class Commit:
    """One commit of the window: when (seconds since the epoch), which offset, its lag then."""

    timestamp: float
    offset: int
    lag: int


@dataclass(frozen=True)
class PartitionStatus:
    status: Status
    committed: int | None
    end: int | None
    lag: int
    complete: float


class PartitionWindow:
    """The sliding window of one partition of one group."""

    def __init__(self, window: Window = DEFAULT_WINDOW) -> None:
        self.window = window
        self.commits: deque[Commit] = deque(maxlen=window.intervals)
        self.ends: deque[int] = deque(maxlen=window.intervals)

    def observe_end(self, end: int) -> None:
        """The partition's end offset (next offset to be written), sampled now."""
        self.ends.append(end)

    def observe_commit(self, timestamp: float, offset: int, end: int | None = None) -> None:
        """A commit of `offset` at `timestamp`; its lag is taken against `end`, or against the
        newest end offset observed (a commit ahead of the end counts as no lag)."""
        if end is None:
            end = self.ends[-1] if self.ends else offset
        lag = max(end - offset, 0)
        if self.commits and timestamp - self.commits[-1].timestamp < self.window.min_distance:
            # Too close to the previous commit: it takes that slot and keeps its timestamp, so
            # a consumer committing faster than min_distance still moves the window on.
            timestamp = self.commits.pop().timestamp
        self.commits.append(Commit(timestamp, offset, lag))

    def evaluate(self, now: float) -> PartitionStatus:
        committed = self.commits[-1].offset if self.commits else None
        end = self.ends[-1] if self.ends else None
        lag = current_lag(committed, end)
        complete = len(self.commits) / self.window.intervals
        status = Status.OK
        if self.commits and complete >= self.window.min_complete:
            status = partition_status(list(self.commits), list(self.ends), lag, now)
        return PartitionStatus(status, committed, end, lag, complete)


def current_lag(committed: int | None, end: int | None) -> int:
    """End minus committed; a partition never committed counts from 0, none ahead of its end."""
    if end is None:
        return 0
    return max(end - (committed or 0), 0)


def partition_status(
    commits: Sequence[Commit], ends: Sequence[int], lag: int, now: float
) -> Status:
    """Burrow's rules over a window of commits (oldest first) and end offsets, at `now`."""
    if lag <= 0 or not commits:
        return Status.OK
    if stopped(commits, now) and not recently_caught_up(commits, ends):
        return Status.STOP
    if any(c.lag == 0 for c in commits):
        return Status.OK
    if rewound(commits):
        return Status.REWIND
    if stalled(commits):
        return Status.STALL
    if lag_not_decreasing(commits):
        return Status.WARN
    return Status.OK


def stopped(commits: Sequence[Commit], now: float) -> bool:
    """No commit for longer than the window spans from its first commit to its last."""
    first, last = commits[0].timestamp, commits[-1].timestamp
    return now - last > last - first


def recently_caught_up(commits: Sequence[Commit], ends: Sequence[int]) -> bool:
    """Some end offset of the window is at or below the last commit: no lag a moment ago."""
    last = commits[-1].offset
    return any(end <= last for end in ends)


def rewound(commits: Sequence[Commit]) -> bool:
    return any(b.offset < a.offset for a, b in _pairs(commits))


def stalled(commits: Sequence[Commit]) -> bool:
    return all(b.offset == a.offset for a, b in _pairs(commits))


def lag_not_decreasing(commits: Sequence[Commit]) -> bool:
    return not any(b.lag < a.lag for a, b in _pairs(commits))


def group_status(statuses: Iterable[Status]) -> Status:
    """The worst partition status, with STOP, STALL and REWIND reported as ERR."""
    worst = max(statuses, default=Status.OK)
    return min(worst, Status.ERR)


def _pairs(commits: Sequence[Commit]) -> Iterable[tuple[Commit, Commit]]:
    return itertools.pairwise(commits)
