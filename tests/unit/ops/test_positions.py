"""Replay positions: durations, instants and ranges clamped to what a partition holds."""

from __future__ import annotations

import datetime as dt

import pytest

from streams.exceptions import ConfigurationError
from streams.ops.positions import (
    PartitionRange,
    clamp_range,
    parse_duration,
    parse_instant,
    parse_since,
)

NOW = dt.datetime(2026, 11, 27, 12, 0, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("P1D", 86400),
        ("PT2H30M", 9000),
        ("P1DT6H", 108000),
        ("pt90s", 90),
        ("P1W", 604800),
        ("PT0.5S", 0.5),
        ("15m", 900),
        ("2h", 7200),
        ("1d", 86400),
    ],
)
def test_durations_in_iso_8601_and_short_form(text: str, seconds: float) -> None:
    assert parse_duration(text) == dt.timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["P", "PT", "P1DT", "P1M", "P1Y", "1 day", "", "-1h"])
def test_what_is_no_duration_says_what_to_give(text: str) -> None:
    with pytest.raises(ConfigurationError, match="no duration"):
        parse_duration(text)


def test_instants_without_an_offset_are_utc_and_others_keep_theirs() -> None:
    assert parse_instant("2026-11-27T09:00:00") == dt.datetime(2026, 11, 27, 9, tzinfo=dt.UTC)
    assert parse_instant("2026-11-27T09:00:00Z") == dt.datetime(2026, 11, 27, 9, tzinfo=dt.UTC)
    assert parse_instant("2026-11-27") == dt.datetime(2026, 11, 27, tzinfo=dt.UTC)
    east = parse_instant("2026-11-27T10:00:00+01:00")
    assert east == dt.datetime(2026, 11, 27, 9, tzinfo=dt.UTC)
    with pytest.raises(ConfigurationError, match="ISO 8601"):
        parse_instant("yesterday")


def test_since_takes_an_instant_or_a_duration_back_from_now() -> None:
    assert parse_since("2026-11-26T12:00Z", NOW) == NOW - dt.timedelta(days=1)
    assert parse_since("P1D", NOW) == NOW - dt.timedelta(days=1)
    assert parse_since("2h", NOW) == NOW - dt.timedelta(hours=2)
    with pytest.raises(ConfigurationError, match="neither"):
        parse_since("soon", NOW)


def test_a_range_inside_the_partition_is_kept_as_asked() -> None:
    assert clamp_range(0, 10, 100, 20, 30) == PartitionRange(0, 20, 30, 10, 100)
    assert clamp_range(0, 10, 100, 20, None) == PartitionRange(0, 20, 100, 10, 100)
    assert clamp_range(0, 10, 100, 20, 30).count == 10


def test_out_of_range_positions_are_clamped_and_said() -> None:
    gone = clamp_range(1, 10, 100, 3, None)
    assert (gone.start, gone.end) == (10, 100)
    assert gone.notes == ("offset 3 is gone (first kept: 10): starting at 10",)
    past = clamp_range(1, 10, 100, 150, 200)
    assert (past.start, past.end, past.count) == (100, 100, 0)
    assert "past the end" in past.notes[0] and "stopping at 100" in past.notes[1]
    backwards = clamp_range(1, 10, 100, 50, 40)
    assert (backwards.start, backwards.end, backwards.count) == (50, 50, 0)
    assert "before the start" in backwards.notes[0]
