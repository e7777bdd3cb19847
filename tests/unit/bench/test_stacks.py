"""bench.stacks reads py-spy's raw output, torn lines included."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from bench import stacks


def test_a_torn_frame_line_is_skipped_and_the_rest_counted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    raw = tmp_path / "worker.stacks"
    raw.write_text(
        "thread (1): MainThread;f (a.py:1);g (a.py:2) 3\n"
        "thread (1): MainThread;\ufe8f\x00 (\n"  # py-spy read a frame name torn
        "thread (2): producer-acks;h (b.py:9) 1\n"
    )
    monkeypatch.setattr(sys, "argv", ["stacks", str(raw)])
    stacks.main()
    out = capsys.readouterr().out
    assert out.startswith("4 samples (1 torn lines skipped)")
    assert " 75.0%  thread: MainThread" in out
    assert " 75.0%  g (a.py)" in out
