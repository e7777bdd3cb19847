"""The worker's labelled metrics: a kept child counts in the registry like prometheus's own."""

from __future__ import annotations

from streams.worker.metrics import Metrics


def test_a_kept_child_is_reused_and_counts_in_the_registry() -> None:
    metrics = Metrics()
    first = metrics.outcomes.labels("100", "user", "DONE")
    assert metrics.outcomes.labels("100", "user", "DONE") is first
    first.inc()
    metrics.outcomes.labels("100", "user", "DONE").inc()
    metrics.outcomes.labels("200", "user", "FAILED").inc()
    sample = metrics.registry.get_sample_value
    labels = {"client": "100", "entity": "user", "status": "DONE"}
    assert sample("connector_outcomes_total", labels) == 2.0
    labels = {"client": "200", "entity": "user", "status": "FAILED"}
    assert sample("connector_outcomes_total", labels) == 1.0
    metrics.calls.labels("100", "create_prospect", "ok").observe(0.25)
    labels = {"client": "100", "call": "create_prospect", "result": "ok"}
    assert sample("connector_receiver_call_seconds_count", labels) == 1.0
    with metrics.in_flight.labels("100").track_inprogress():
        assert sample("connector_sink_in_flight", {"client": "100"}) == 1.0
    assert sample("connector_sink_in_flight", {"client": "100"}) == 0.0
