"""A worker that exits by itself in a soak says why in the summary (its log goes with the
work dir of a run without defects)."""

from __future__ import annotations

from pathlib import Path

from bench.soak.rig import last_error


def test_the_last_line_that_says_what_went_wrong_is_kept(tmp_path: Path) -> None:
    log = tmp_path / "w1.log"
    log.write_text(
        "[12:00:01] [7] [WARNING] aiokafka: Heartbeat failed\n"
        "[12:00:02] [7] [ERROR] streams.cli: cannot reach the broker at 127.0.0.1:9092\n"
        "shutting down\n"
    )
    assert last_error(log) == (
        "[12:00:02] [7] [ERROR] streams.cli: cannot reach the broker at 127.0.0.1:9092"
    )
    (tmp_path / "quiet.log").write_text("started\nstopped\n")
    assert last_error(tmp_path / "quiet.log") == "stopped"
    assert last_error(tmp_path / "none.log") == "no log"
