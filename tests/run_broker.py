"""The test run's Kafka brokers (the plaintext one most tests use, and the secured one),
each shared by every pytest-xdist worker (or by pytest alone).

The first process that needs a broker starts it, under a file lock in the run's root
directory; the others find its address there and attach. The process that runs the session
(xdist's controller, or pytest without xdist) sweeps the plaintext broker for secrets and
stops both, once, after every test.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from pathlib import Path

import pytest

from streams.exceptions import LocalKafkaError
from streams.kafka.local import LocalKafka
from streams.settings import LocalKafkaSettings
from tests.secret_sweep import leaks_in_files, leaks_in_topics, write_sentinel

#: The broker this process started: its process handle lives as long as this process does,
#: since another process (xdist's controller) stops the broker after this one has finished.
_STARTED: list[LocalKafka] = []


def run_root(factory: pytest.TempPathFactory) -> Path:
    """The directory every process of this run shares: the session's base temporary directory,
    of which each xdist worker's is a sub-directory (`popen-gw0`, ...)."""
    base = factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


class RunBroker:
    """What `root/<name>` holds: the lock, the broker's state, and its address once started."""

    def __init__(self, root: Path, name: str = "kafka", *, secure: bool = False) -> None:
        self.folder = root / name
        self.root = root
        self.secure = secure
        self.lock_file = self.folder / "lock"
        self.address_file = self.folder / "broker.json"
        self.failure_file = self.folder / "start-failed.txt"
        self.state_dir = self.folder / "state"

    def local(self) -> LocalKafka:
        return LocalKafka(LocalKafkaSettings(state_dir=self.state_dir))

    def address(self) -> dict[str, object] | None:
        try:
            record: dict[str, object] = json.loads(self.address_file.read_text())
        except FileNotFoundError:
            return None
        return record

    def attach(self) -> str:
        """KAFKA_BOOTSTRAP_SERVERS when set (plaintext only), else the run's local broker,
        started by the first caller (SASL_SSL when `secure`, without a sentinel record).
        A broker that cannot start fails every caller, loudly; nothing is skipped."""
        self.folder.mkdir(parents=True, exist_ok=True)
        with self.lock_file.open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
            if self.failure_file.exists():
                raise LocalKafkaError(
                    f"the run's broker did not start: {self.failure_file.read_text()}"
                )
            record = self.address()
            if record is not None:
                return str(record["bootstrap"])
            existing = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
            if existing and not self.secure:
                self._write({"bootstrap": existing, "external": True})
                return existing
            started = time.monotonic()
            try:
                local = self.local()
                _STARTED.append(local)
                info = local.up(secure=self.secure)
                if not self.secure:
                    write_sentinel(info.bootstrap)
            except BaseException as exc:
                self.failure_file.write_text(f"{type(exc).__name__}: {exc}")
                raise
            seconds = time.monotonic() - started
            self._write({"bootstrap": info.bootstrap, "external": False, "start_seconds": seconds})
            return info.bootstrap

    def _write(self, record: dict[str, object]) -> None:
        partial = self.address_file.with_suffix(".partial")
        partial.write_text(json.dumps(record))
        partial.replace(self.address_file)

    def finish(self, *, sweep_secrets: bool = True) -> list[str]:
        """After every test of the run: the secret sweep of every topic and of every log file
        under the run's root (every worker's), then the broker stopped. What the sweep found,
        or why it could not look; empty when no test used the broker."""
        problems: list[str] = []
        try:
            record = self.address()
            if record is not None and sweep_secrets:
                problems = sweep(str(record["bootstrap"]), self.root)
        except Exception as exc:
            problems = [f"the secret sweep could not finish: {type(exc).__name__}: {exc}"]
        finally:
            if self.state_dir.exists():
                self.local().down()
        return problems


def sweep(bootstrap: str, root: Path) -> list[str]:
    """Last, while the broker still runs: no test secret in any record or any log file."""
    read, in_topics = leaks_in_topics(bootstrap)
    in_files = leaks_in_files(root)
    problems = []
    if read == 0:
        problems.append("the secret sweep read no record")
    if in_topics:
        problems.append(f"test secrets found in topics: {in_topics[:10]}")
    if in_files:
        problems.append(f"test secrets found in log files: {in_files[:10]}")
    return problems
