"""The worker's operations endpoints, end to end: /health, /ready, /metrics, and 404 for
anything else; lag of its own group on /metrics."""

from __future__ import annotations

from pathlib import Path

import httpx

from streams.kafka.local import free_port
from tests.integration.harness import running_pipeline, user_event, wait_for


def get(url: str) -> httpx.Response | None:
    try:
        return httpx.get(url, timeout=5)
    except httpx.TransportError:
        return None  # not serving yet


def samples(text: str, name: str) -> dict[str, float]:
    """`name{labels}` -> value for every sample of one metric in an exposition."""
    out = {}
    for line in text.splitlines():
        if line.startswith(name + "{"):
            series, _, value = line.rpartition(" ")
            out[series] = float(value)
    return out


def test_health_ready_metrics_and_nothing_else(kafka_bootstrap: str, tmp_path: Path) -> None:
    port = free_port()
    settings = {"CONNECTOR_METRICS_PORT": str(port), "CONNECTOR_LAG_INTERVAL": "0.5"}
    with running_pipeline(kafka_bootstrap, tmp_path, **settings) as p:
        p.add_receiver("ops")
        base = f"http://127.0.0.1:{port}"
        p.start_worker()
        # The server is up before the links are loaded: not ready yet, and it says why.
        first = wait_for("the ops server", lambda: get(f"{base}/ready"))
        assert first.status_code == 503, first.text
        assert first.json()["ready"] is False and first.json()["reasons"]
        health = httpx.get(f"{base}/health", timeout=5)
        assert (health.status_code, health.json()) == (200, {"status": "alive"})

        def ready() -> httpx.Response | None:
            answer = get(f"{base}/ready")
            return answer if answer is not None and answer.status_code == 200 else None

        body = wait_for("the worker to be ready", ready).json()
        assert body["ready"] is True and body["reasons"] == [] and body["partitions"] > 0
        for path in ("/", "/metricsx", "/ready/now", "/admin"):
            assert httpx.get(base + path, timeout=5).status_code == 404, path

        for n in range(5):
            p.send("UserChanged", user_event("ops", f"O{n}", 1))
        outcomes = p.wait_outcomes("ops", [f"O{n}" for n in range(5)], 1)
        assert {o["status"] for o in outcomes.values()} == {"LINKED"}
        users = p.topic(p.topics.users_topic)

        def drained() -> dict[str, float] | None:
            text = httpx.get(f"{base}/metrics", timeout=5).text
            offsets = samples(text, "kafka_consumergroup_group_offset")
            mine = {k: v for k, v in offsets.items() if f'topic="{users}"' in k}
            lags = samples(text, "kafka_consumergroup_group_lag")
            done = sum(mine.values()) >= 5 and all(
                v == 0 for k, v in lags.items() if f'topic="{users}"' in k
            )
            return mine if done else None

        committed = wait_for("the group's committed offsets on /metrics", drained)
        assert all(f'group="{p.app_id}"' in series for series in committed)
        assert len(committed) == 6  # one series per partition of the users topic
