"""How bench.scaleout and bench.stages summarise their runs."""

from __future__ import annotations

from bench.scaleout import speedups
from bench.stages import row, summary_table


def test_speedups_are_against_the_one_worker_mean() -> None:
    rows = [
        {"workers": 1, "events_per_s": 100.0},
        {"workers": 2, "events_per_s": 150.0},
        {"workers": 1, "events_per_s": 120.0},
        {"workers": 3, "events_per_s": 99.0},
    ]
    assert [r["speedup"] for r in speedups(rows)] == [0.91, 1.36, 1.09, 0.9]
    assert speedups([{"workers": 2, "events_per_s": 10.0}])[0]["speedup"] is None


def test_a_stage_row_gives_rate_and_cpu_per_event_and_keeps_the_rest() -> None:
    measured = {
        "seconds": 4.0,
        "cpu_seconds": 2.0,
        "in_flight_mean": 3.14159,
        "in_flight_max": 9,
        "call_ms": 1.0,
    }
    out = row("sink", 20.0, 1000, measured)
    assert out["events_per_s"] == 250.0
    assert out["cpu_ms_per_event"] == 2.0
    assert out["in_flight_mean"] == 3.14
    assert "seconds" not in out
    lines = summary_table([out, row("planner", None, 1000, {"seconds": 2.0, "cpu_seconds": 1})])
    assert "3.1/" in lines[1] and lines[2].split()[:3] == ["planner", "-", "500.0"]
