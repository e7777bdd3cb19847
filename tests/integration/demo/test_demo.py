"""`connector demo`, the README's main job, end to end on the session broker."""

from __future__ import annotations

import json
from pathlib import Path

from demo.worker import clean_env
from tests.integration.harness import connector


def test_the_demo_ends_with_no_mismatch(kafka_bootstrap: str, tmp_path: Path) -> None:
    env = clean_env()
    env.update(KAFKA_BOOTSTRAP_SERVERS=kafka_bootstrap, CONNECTOR_STATE_DIR=str(tmp_path))
    result = connector(env, "demo", "--events", "800", "--seed", "7", timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["mismatches"] == 0
    assert summary["events"] == 800
    assert summary["dlq"] == 0
    assert 0 < summary["commands"] <= 800
    assert summary["calls"] >= summary["links"] > 0
    assert "mismatches" in result.stderr  # the summary table


def test_the_interleaved_demo_converges(kafka_bootstrap: str, tmp_path: Path) -> None:
    """Staff, lead sources and users produced mixed: users often reach the worker before the
    links they reference, and are planned again once those links exist."""
    env = clean_env()
    env.update(KAFKA_BOOTSTRAP_SERVERS=kafka_bootstrap, CONNECTOR_STATE_DIR=str(tmp_path))
    args = ("demo", "--events", "800", "--seed", "11", "--interleaved")
    result = connector(env, *args, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert (summary["mismatches"], summary["dlq"], summary["interleaved"]) == (0, 0, True)
    assert summary["events"] == 800
    assert summary["calls"] >= summary["links"] > 0
    assert summary["replanned"] > 0  # users did reach the worker before their links
