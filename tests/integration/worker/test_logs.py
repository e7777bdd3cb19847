"""The worker's logs: one JSON object a line with CONNECTOR_LOG_FORMAT=json, and no terminal
escape codes in either format."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

from tests.integration.harness import running_pipeline, user_event, wait_for


def test_json_logs_are_one_object_a_line_without_escape_codes(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    with running_pipeline(kafka_bootstrap, tmp_path) as p:
        env = {**p.env(), "CONNECTOR_LOG_FORMAT": "json"}
        log = tmp_path / "json-worker.log"
        with log.open("wb") as out:
            worker = subprocess.Popen(
                [sys.executable, "-m", "streams.cli", "worker", "--loglevel", "info"],
                env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            )  # fmt: skip
        try:

            def records() -> list[dict[str, object]] | None:
                lines = log.read_text(errors="replace").splitlines()
                found = [json.loads(line) for line in lines if line.startswith("{")]
                started = any("link state current" in str(r["message"]) for r in found)
                return found if started else None

            found = wait_for("the worker to log that it runs", records, 120)
        finally:
            worker.send_signal(signal.SIGTERM)
            worker.wait(timeout=60)
        text = log.read_text(errors="replace")
        assert "\x1b[" not in text
        assert {"time", "level", "logger", "message"} <= set(found[0])
        assert any(r["logger"] == "faust.worker" for r in found)
        others = [line for line in text.splitlines() if line and not line.startswith("{")]
        assert all(line.startswith(f"worker {p.app_id}: ") for line in others), others[:5]


def test_text_logs_carry_no_terminal_escape_codes(kafka_bootstrap: str, tmp_path: Path) -> None:
    with running_pipeline(kafka_bootstrap, tmp_path) as p:
        p.add_receiver("plain")
        p.start_worker()
        p.send("UserChanged", user_event("plain", "T1", 1))
        assert p.wait_outcome("plain", "T1", 1)["status"] == "LINKED"
        p.stop_worker()
        text = p.worker_log()
        assert "starting agents" in text
        assert "\x1b[" not in text  # Faust's spinner wrote cursor codes here before
