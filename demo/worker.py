"""`connector worker` in a process of its own, for the demo, the benchmarks and the tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

#: Seconds a SIGTERM'd worker gets to stop before it is killed.
STOP_TIMEOUT = 30.0


def clean_env() -> dict[str, str]:
    """This process's environment without any connector setting of its own."""
    return {k: v for k, v in os.environ.items() if not k.startswith("CONNECTOR_")}


def worker_env(
    *, bootstrap: str, topic_prefix: str, app_id: str, data_dir: Path, **settings: str
) -> dict[str, str]:
    """`clean_env()` plus the worker's settings; `settings` are more environment variables
    (`CONNECTOR_SINK_MAX_IN_FLIGHT="8"`, ...)."""
    env = clean_env()
    env.update(
        KAFKA_BOOTSTRAP_SERVERS=bootstrap,
        CONNECTOR_TOPIC_PREFIX=topic_prefix,
        CONNECTOR_APP_ID=app_id,
        CONNECTOR_DATA_DIR=str(data_dir),
        **settings,
    )
    return env


def start_worker(
    env: dict[str, str], log_path: Path, cwd: Path | None = None
) -> subprocess.Popen[bytes]:
    """Start a worker that appends its output to `log_path` (`cwd`: the checkout to run)."""
    with log_path.open("ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "streams.cli", "worker", "--loglevel", "warn"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=cwd,
        )


def stop_worker(process: subprocess.Popen[bytes], *, kill: bool = False) -> int:
    """SIGTERM (or SIGKILL) the worker and wait; kill it when it outstays `STOP_TIMEOUT`."""
    if process.poll() is None:
        process.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        try:
            process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
    return process.returncode
