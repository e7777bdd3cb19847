"""A worker that exits by itself in a soak says why in the summary (its log goes with the
work dir of a run without defects)."""

from __future__ import annotations

from pathlib import Path

from bench.soak.rig import awaited, last_error


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


def test_a_recovery_waits_for_the_group_left_when_its_worker_was_stopped_for_good() -> None:
    # w3 was killed and started again, then "stop a worker" took it out of the rig: its
    # recovery cannot be w3 answering ready (it never will; the run used to wait 180 s).
    workers = {"w1": object(), "w2": object()}
    assert awaited(["w3"], workers) == ["w1", "w2"]
    assert awaited(["w2", "w3"], workers) == ["w2"]
    assert awaited(["w1"], {**workers, "w3": object()}) == ["w1"]
