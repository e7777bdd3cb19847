"""Shared fixtures: one real Apache Kafka broker per test run (every xdist worker shares it),
unique names per test, and the end-of-run secret sweep."""

from __future__ import annotations

import logging
import os
import uuid
from pathlib import Path
from typing import Any, ClassVar

import pytest

from tests.run_broker import RunBroker, run_root
from tests.secret_values import find_leaks


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> str:
    """KAFKA_BOOTSTRAP_SERVERS when set, else the run's local broker: started once for the
    whole run, whatever the number of xdist workers, and stopped after the last test.

    A broker that cannot start fails every test that needs it, loudly; nothing is skipped."""
    return RunBroker(run_root(tmp_path_factory)).attach()


class _CollectLogs(logging.Handler):
    """Keeps every log line of the test process for the secret check at the end."""

    lines: ClassVar[list[str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.lines.append(self.format(record))
        except Exception:
            self.lines.append(repr(record.msg))


#: Secrets (their first letters) that xdist workers found in their captured log lines.
_WORKER_LEAKS: list[str] = []


def pytest_configure(config: pytest.Config) -> None:
    logging.getLogger().addHandler(_CollectLogs(level=logging.DEBUG))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked `long` first: run in parallel (`--dist loadscope --no-loadscope-reorder`,
    one module to one xdist worker, in this order), none of them then starts last, while the
    other workers run out of work."""
    items.sort(key=lambda item: item.get_closest_marker("long") is None)


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: object) -> None:
    """xdist's controller: what a worker that finished found in its captured logs."""
    output = getattr(node, "workeroutput", {})
    _WORKER_LEAKS.extend(output.get("secret_leaks_in_logs", []))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Every process checks its captured log lines; the one that ran the session (xdist's
    controller, or pytest alone) then sweeps the broker's topics and every worker's files,
    once, after every test, and stops the run's broker."""
    leaked = {secret[:3] for line in _CollectLogs.lines for secret in find_leaks(line.encode())}
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:  # an xdist worker: its controller reports
        workeroutput["secret_leaks_in_logs"] = sorted(leaked)
        return
    problems = []
    leaked.update(_WORKER_LEAKS)
    if leaked:
        problems.append(f"test secrets appeared in captured logs: {sorted(leaked)}")
    factory: pytest.TempPathFactory = session.config._tmp_path_factory  # type: ignore[attr-defined]
    problems += RunBroker(factory.getbasetemp()).finish()
    RunBroker(factory.getbasetemp(), "secure-kafka", secure=True).finish(sweep_secrets=False)
    if problems:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is None:
            print("\n".join(["", "secret sweep FAILED", *problems]))
        else:
            reporter.write_line("")
            reporter.write_sep("=", "secret sweep FAILED", red=True, bold=True)
            for problem in problems:
                reporter.write_line(f"FAILED: {problem}", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture
def unique() -> str:
    """A short unique token for topic, group and client names of one test."""
    return uuid.uuid4().hex[:10]


@pytest.fixture
def test_env(kafka_bootstrap: str, unique: str, tmp_path: Path) -> dict[str, str]:
    """Environment for a `connector` subprocess bound to the session broker and unique topics."""
    env = dict(os.environ)
    env.update(
        {
            "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
            "CONNECTOR_TOPIC_PREFIX": f"t{unique}.",
            "CONNECTOR_APP_ID": f"app-{unique}",
            "CONNECTOR_STATE_DIR": str(tmp_path / "state"),
        }
    )
    return env
