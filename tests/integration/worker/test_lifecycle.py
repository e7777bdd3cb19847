"""A clean stop: SIGTERM closes the lanes, every receiver client and the readers, quietly."""

from __future__ import annotations

import time
from pathlib import Path

from tests.integration.harness import running_pipeline, user_event


def test_a_sigterm_stops_the_worker_in_bounded_time_without_an_error_line(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    with running_pipeline(kafka_bootstrap, tmp_path) as p:
        for client in ("first", "second"):
            p.add_receiver(client)
        p.start_worker()
        # Both tenants' receiver clients are open (pooled HTTP sessions) when the stop comes.
        for client in ("first", "second"):
            p.send("UserChanged", user_event(client, "7001", 1))
        for client in ("first", "second"):
            assert p.wait_outcome(client, "7001", 1)["status"] == "LINKED"
        worker = p.worker
        assert worker is not None
        started = time.monotonic()
        p.stop_worker()
        stopped_in = time.monotonic() - started
        log = p.worker_log()
        assert worker.returncode == 0, log
        assert stopped_in < 25, f"SIGTERM took {stopped_in:.1f}s"
        assert "ERROR" not in log, log
        assert "Unclosed" not in log, log
        assert "Traceback" not in log, log
