"""Burrow's lag rules, one status at a time, on windows of (time, committed, end) observations."""

from __future__ import annotations

import pytest

from streams.kafka.lagstatus import (
    Commit,
    PartitionWindow,
    Status,
    Window,
    group_status,
    partition_status,
)


def window_of(
    observations: list[tuple[float, int, int]], window: Window | None = None
) -> PartitionWindow:
    """A window fed (time, committed offset, end offset) observations in order."""
    found = PartitionWindow(window or Window(intervals=10))
    for timestamp, committed, end in observations:
        found.observe_end(end)
        found.observe_commit(timestamp, committed, end)
    return found


def status_of(observations: list[tuple[float, int, int]], now: float) -> Status:
    return window_of(observations).evaluate(now).status


# -- OK ---------------------------------------------------------------------------------------
def test_a_caught_up_group_is_ok_even_when_it_stopped_committing_long_ago() -> None:
    assert status_of([(0, 100, 100), (1, 100, 100)], now=1_000) is Status.OK


def test_a_group_whose_lag_was_zero_at_some_commit_is_ok() -> None:
    observations = [(0, 10, 20), (1, 20, 20), (2, 20, 30), (3, 20, 40)]
    assert status_of(observations, now=3.5) is Status.OK


def test_a_group_whose_lag_shrinks_somewhere_in_the_window_is_ok() -> None:
    observations = [(0, 0, 100), (1, 10, 120), (2, 50, 130), (3, 60, 150)]
    assert status_of(observations, now=3.5) is Status.OK


def test_a_partition_without_commits_is_ok_whatever_its_lag() -> None:
    found = PartitionWindow()
    found.observe_end(500)
    result = found.evaluate(now=100)
    assert (result.status, result.committed, result.lag) == (Status.OK, None, 500)


def test_the_window_must_be_complete_enough_before_it_judges() -> None:
    stalled = [(0, 5, 10), (1, 5, 20), (2, 5, 30)]
    assert window_of(stalled, Window(intervals=10, min_complete=0.5)).evaluate(2.5).status is (
        Status.OK
    )
    assert window_of(stalled, Window(intervals=4, min_complete=0.5)).evaluate(2.5).status is (
        Status.STALL
    )


# -- WARN -------------------------------------------------------------------------------------
def test_lag_that_never_decreases_while_commits_move_is_a_warning() -> None:
    observations = [(0, 0, 100), (1, 10, 120), (2, 20, 130), (3, 30, 150)]
    assert status_of(observations, now=3.5) is Status.WARN


def test_a_steady_non_zero_lag_is_a_warning_as_in_burrow() -> None:
    observations = [(0, 0, 10), (1, 10, 20), (2, 20, 30)]
    assert status_of(observations, now=2.5) is Status.WARN


# -- STALL ------------------------------------------------------------------------------------
def test_commits_of_one_offset_while_lag_grows_are_a_stall() -> None:
    observations = [(0, 42, 50), (1, 42, 60), (2, 42, 70), (3, 42, 80)]
    assert status_of(observations, now=3.5) is Status.STALL


def test_a_stall_ends_when_the_offset_moves() -> None:
    observations = [(0, 42, 50), (1, 42, 60), (2, 42, 70), (3, 43, 80)]
    assert status_of(observations, now=3.5) is Status.WARN


# -- STOP -------------------------------------------------------------------------------------
def test_no_commit_for_longer_than_the_window_spans_while_lagging_is_a_stop() -> None:
    observations = [(0, 10, 50), (1, 20, 60), (2, 30, 70)]
    assert status_of(observations, now=3.9) is Status.WARN
    assert status_of(observations, now=4.0) is Status.WARN  # silent exactly as long as it spans
    assert status_of(observations, now=4.1) is Status.STOP


def test_stop_comes_before_the_zero_lag_rule() -> None:
    found = PartitionWindow(Window(intervals=3))
    for timestamp, committed, end in [(0, 10, 10), (1, 20, 25), (2, 30, 40)]:
        found.observe_end(end)
        found.observe_commit(timestamp, committed, end)
    assert found.evaluate(now=100).status is Status.OK  # end 10 of the window: caught up then
    for end in (50, 60, 70):
        found.observe_end(end)
    assert found.evaluate(now=100).status is Status.STOP  # though a commit had no lag


def test_a_stop_is_not_called_while_an_end_offset_of_the_window_shows_no_lag() -> None:
    found = PartitionWindow(Window(intervals=3))
    for timestamp, committed, end in [(0, 10, 30), (1, 20, 30), (2, 30, 40)]:
        found.observe_end(end)
        found.observe_commit(timestamp, committed, end)
    found.observe_end(30)  # the last commit caught up with this end offset
    assert found.evaluate(now=100).status is Status.OK
    for end in (50, 60, 70):  # the window's end offsets all pass the last commit
        found.observe_end(end)
    assert found.evaluate(now=100).status is Status.STOP


def test_a_single_commit_with_lag_is_a_stop_once_time_passes() -> None:
    assert status_of([(10, 5, 50)], now=10.5) is Status.STOP


def test_the_current_lag_zero_overrides_a_stop() -> None:
    found = window_of([(0, 10, 50), (1, 20, 60)])
    found.observe_end(20)  # the end offset as read now (e.g. a truncated topic)
    assert found.evaluate(now=100).status is Status.OK


# -- REWIND -----------------------------------------------------------------------------------
def test_a_commit_lower_than_the_one_before_is_a_rewind() -> None:
    observations = [(0, 50, 100), (1, 60, 110), (2, 40, 120), (3, 45, 130)]
    assert status_of(observations, now=3.5) is Status.REWIND


def test_a_rewind_with_lag_zero_in_the_window_is_ok() -> None:
    observations = [(0, 60, 60), (1, 40, 70), (2, 45, 80)]
    assert status_of(observations, now=2.5) is Status.OK


def test_a_rewind_outranks_a_stall_and_a_warning() -> None:
    commits = [Commit(0, 50, 10), Commit(1, 40, 20), Commit(2, 40, 30)]
    assert partition_status(commits, [60, 70], 30, now=2.5) is Status.REWIND


# -- the window -------------------------------------------------------------------------------
def test_the_window_keeps_the_last_intervals_commits_only() -> None:
    observations = [(0, 50, 100), (1, 40, 110)] + [(t, 40 + t, 110 + 2 * t) for t in range(2, 8)]
    assert status_of(observations, now=7.5) is Status.REWIND
    short = window_of(observations, Window(intervals=3))
    assert [c.offset for c in short.commits] == [45, 46, 47]
    assert short.evaluate(now=7.5).status is Status.WARN


def test_a_commit_within_min_distance_replaces_the_last_and_keeps_its_time() -> None:
    found = window_of([(0, 10, 50), (0.4, 11, 50), (0.8, 12, 60)], Window(min_distance=1.0))
    assert [(c.timestamp, c.offset, c.lag) for c in found.commits] == [(0, 12, 48)]
    found.observe_commit(1.1, 13, 60)
    assert [(c.timestamp, c.offset) for c in found.commits] == [(0, 12), (1.1, 13)]


def test_commits_faster_than_min_distance_still_age_the_window() -> None:
    # Because a replaced commit keeps its slot's time, a group committing every 0.3 s with
    # min_distance 1 s takes a new slot about every second, never one slot forever.
    found = PartitionWindow(Window(intervals=10, min_distance=1.0))
    for i in range(10):
        found.observe_end(100 + i)
        found.observe_commit(i * 0.3, 42, None)
    assert [c.timestamp for c in found.commits] == [0, pytest.approx(1.2), pytest.approx(2.4)]
    assert found.evaluate(now=2.8).status is Status.STALL


def test_a_commit_ahead_of_the_known_end_has_no_lag() -> None:
    found = PartitionWindow()
    found.observe_end(10)
    found.observe_commit(0, 15)
    assert found.commits[-1].lag == 0
    assert found.evaluate(now=5).lag == 0


def test_a_window_needs_room_for_a_commit() -> None:
    with pytest.raises(ValueError):
        Window(intervals=0)
    with pytest.raises(ValueError):
        Window(min_complete=1.5)


# -- the group --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("statuses", "expected"),
    [
        ([], Status.OK),
        ([Status.OK, Status.OK], Status.OK),
        ([Status.OK, Status.WARN], Status.WARN),
        ([Status.WARN, Status.STOP], Status.ERR),
        ([Status.OK, Status.STALL], Status.ERR),
        ([Status.REWIND, Status.WARN], Status.ERR),
    ],
)
def test_a_group_takes_its_worst_partition_with_errors_as_err(
    statuses: list[Status], expected: Status
) -> None:
    assert group_status(statuses) is expected
