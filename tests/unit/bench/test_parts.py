"""The benchmarks' shared pure parts: percentiles, change numbering, metrics parsing."""

from __future__ import annotations

import pytest

from bench.parts import change_of, parse_metrics, percentile, total


def test_percentile_is_nearest_rank() -> None:
    values = [float(n) for n in range(100, 0, -1)]  # 100..1, unsorted on purpose
    assert percentile(values, 50) == 50.0
    assert percentile(values, 99) == 99.0
    assert percentile(values, 100) == 100.0
    assert percentile([7.0], 99) == 7.0


def test_percentile_of_nothing_is_an_error() -> None:
    with pytest.raises(ValueError):
        percentile([], 50)


def test_changes_cover_each_user_once_per_version_spread_over_clients() -> None:
    changes = [change_of(n, 12, 4, ("a", "b"), "S1") for n in range(12)]
    assert len(set(changes)) == 12
    assert changes[:3] == [("a", "S1U0", 1), ("b", "S1U1", 1), ("a", "S1U2", 1)]
    assert changes[3] == ("a", "S1U0", 2)  # a user's next version comes a round later
    # a user stays with one client
    assert {c for c, u, _ in changes if u == "S1U1"} == {"b"}


def test_metrics_are_summed_over_labels_and_comments_dropped() -> None:
    text = (
        "# HELP connector_events_total Inbound events planned\n"
        'connector_events_total{topic="a"} 3.0\n'
        'connector_events_total{topic="b"} 4.0\n'
        'connector_events_created{topic="a"} 1.7e9\n'
        "connector_sink_in_flight 2.0\n"
    )
    metrics = parse_metrics(text)
    assert total(metrics, "connector_events_total") == 7.0
    assert total(metrics, "connector_sink_in_flight") == 2.0
    assert total(metrics, "connector_events") == 0.0
