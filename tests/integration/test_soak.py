"""The bounded chaos soak (`python -m bench.soak --quick`): every fault class, then nothing
lost, duplicated, wrong, undetected, overlapping, uncommitted or leaked."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

#: Seconds the bounded soak may take: 138 s on a quiet machine, 184-257 s measured with the
#: suite's other tests (and other jobs) running beside it.
SOAK_TIMEOUT = 600


@pytest.mark.long
@pytest.mark.timeout(SOAK_TIMEOUT + 60)  # the soak's own bound, not the suite's 300 s
def test_the_bounded_soak_loses_duplicates_and_leaks_nothing(tmp_path: Path) -> None:
    # Its own broker (restarted mid-run), so it runs in its own process, as CI would run it.
    result = subprocess.run(
        [sys.executable, "-m", "bench.soak", "--quick"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=SOAK_TIMEOUT,
        check=False,
    )
    (tmp_path / "soak.out").write_text(result.stdout + result.stderr)
    assert result.stdout.strip(), result.stderr[-3000:]
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["defects"] == [], result.stdout[-4000:]
    assert result.returncode == 0
    faults = [f["name"] for f in summary["faults"]]
    assert faults.count("kill -9 worker") >= 5
    assert any(f["in_flight_calls"] for f in summary["faults"] if f["name"] == "kill -9 worker")
    for name in (
        "stop a worker", "add a worker", "restart with empty data dir", "receiver outage",
        "429 storm", "apply-then-time-out", "broker restart",
    ):  # fmt: skip
        assert name in faults
    # A receiver fault's recovery is the tenant's first outcome after it: none when its
    # traffic ended first; every other fault must show its time.
    timed = [f for f in summary["faults"] if f["client"] is None]
    assert all(f["recovered_s"] is not None for f in timed), summary["faults"]
    assert len(summary["tenants"]) >= 11  # one per reference receiver mode
    assert summary["records_swept"] > summary["events"]
    assert len(summary["bad_input"]) >= 11
