"""bench.latency's pacing schedule and its summary of one step."""

from __future__ import annotations

import os
import threading

import pytest

from bench.latency import (
    busy_ms,
    schedule,
    spread,
    step_summary,
    thread_cpu,
    thread_ms,
    verdict,
)


def test_schedule_spaces_events_evenly_over_the_duration() -> None:
    due = schedule(4.0, 2.5)
    assert due == [0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0, 2.25]


def test_schedule_rejects_a_rate_of_nothing() -> None:
    with pytest.raises(ValueError):
        schedule(0.0, 10)


def test_spread_gives_the_tail() -> None:
    values = [10.0] * 98 + [150.0, 400.0]
    assert spread(values) == {"p50": 10.0, "p95": 10.0, "p99": 150.0, "max": 400.0}


def test_a_step_is_split_at_the_command() -> None:
    produced = {("c", "U1", 1): 100.0, ("c", "U2", 1): 100.5}
    commands = {("c", "U1", 1): 100.03, ("c", "U2", 1): 100.55}
    outcomes = {("c", "U1", 1): 100.1, ("c", "U2", 1): 100.8}
    step = step_summary(produced, commands, outcomes)
    assert step["events"] == 2
    assert step["latency_ms"]["max"] == pytest.approx(300.0)
    assert step["latency_ms"]["p50"] == pytest.approx(100.0)
    assert step["to_command_ms"]["max"] == pytest.approx(50.0)
    assert step["command_to_call_ms"]["max"] == pytest.approx(250.0)


def test_a_step_shows_whether_latency_grew_from_its_first_to_its_last_events() -> None:
    produced = {("c", f"U{n}", 1): float(n) for n in range(20)}
    # listed last-first: the tenths follow produce time, not insertion order
    produced = dict(reversed(list(produced.items())))
    outcomes = {c: at + (0.01 if at < 10 else 2.0) for c, at in produced.items()}
    step = step_summary(produced, {}, outcomes)
    assert step["first_tenth_p50_ms"] == pytest.approx(10.0)
    assert step["last_tenth_p50_ms"] == pytest.approx(2000.0)
    assert "to_command_ms" not in step


def test_the_verdict_reads_the_half_rate_step() -> None:
    def step(fraction: float, p99: float) -> dict[str, object]:
        return {"fraction": fraction, "latency_ms": {"p99": p99}}

    assert verdict([step(0.25, 50), step(0.5, 180), step(0.9, 900)]) is True
    assert verdict([step(0.25, 50), step(0.5, 201), step(0.9, 90)]) is False
    assert verdict([step(0.9, 90)]) is None


def test_busy_cpu_is_what_is_left_above_the_idle_floor() -> None:
    # 12 s of CPU over 60 s at an idle floor of 0.1 core: 6 s of work for 600 events
    assert busy_ms(12.0, 0.1, 60.0, 600) == 10.0
    assert busy_ms(1.0, 0.1, 60.0, 600) == 0.0  # never below nothing


def test_cpu_by_thread_is_per_event_largest_first_and_leaves_out_threads_that_did_nothing() -> None:
    before = {"MainThread": 1.0, "Thread": 0.5, "ops-http": 0.2}
    after = {"MainThread": 3.0, "Thread": 1.5, "ops-http": 0.2, "rdk:broker1": 0.25}
    assert list(thread_ms(before, after, 1000).items()) == [
        ("MainThread", 2.0), ("Thread", 1.0), ("rdk:broker1", 0.25),
    ]  # fmt: skip


def test_cpu_by_thread_reads_this_process_and_names_python_threads_as_told() -> None:
    spent = thread_cpu(os.getpid(), {str(threading.get_native_id()): "the-test"})
    assert "the-test" in spent and "main" not in spent
    assert all(seconds >= 0 for seconds in spent.values())
