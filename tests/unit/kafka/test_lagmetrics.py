"""Lag in seconds, estimated from the history of end offsets (kafka-lag-exporter's way)."""

from __future__ import annotations

import pytest

from streams.kafka.lagmetrics import lag_seconds

# The log's end was 100 at t=10, 200 at t=20 and 300 at t=30.
HISTORY = [(10.0, 100), (20.0, 200), (30.0, 300)]


def test_a_group_at_the_end_is_not_behind() -> None:
    assert lag_seconds(300, now=35.0, history=HISTORY) == 0.0
    assert lag_seconds(None, now=35.0, history=[]) == 0.0


def test_the_time_the_end_passed_the_committed_offset_is_interpolated() -> None:
    # Offset 150 was written half way between t=10 and t=20: 20 s before t=35.
    assert lag_seconds(150, now=35.0, history=HISTORY) == pytest.approx(20.0)
    assert lag_seconds(200, now=35.0, history=HISTORY) == pytest.approx(15.0)


def test_an_offset_older_than_the_history_is_at_least_as_old_as_it() -> None:
    assert lag_seconds(50, now=35.0, history=HISTORY) == pytest.approx(25.0)
    assert lag_seconds(None, now=35.0, history=HISTORY) == pytest.approx(25.0)


def test_lag_grows_while_the_group_stands_still() -> None:
    assert lag_seconds(250, now=40.0, history=HISTORY) > lag_seconds(250, now=35.0, history=HISTORY)
