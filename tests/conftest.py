"""Shared fixtures: one real Apache Kafka broker per test session, unique names per test."""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest

from streams.kafka.local import LocalKafka
from streams.settings import LocalKafkaSettings
from tests.secret_sweep import leaks_in_files, leaks_in_topics, write_sentinel
from tests.secret_values import find_leaks


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """KAFKA_BOOTSTRAP_SERVERS when set, else a local broker started once for the session.

    A broker that cannot start fails every test that needs it, loudly; nothing is skipped.
    """
    existing = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if existing:
        yield existing
        assert_no_secret_leaked(existing, tmp_path_factory)
        return
    settings = LocalKafkaSettings(state_dir=tmp_path_factory.mktemp("kafka-state"))
    local = LocalKafka(settings)
    info = local.up()
    try:
        write_sentinel(info.bootstrap)
        yield info.bootstrap
        assert_no_secret_leaked(info.bootstrap, tmp_path_factory)
    finally:
        local.down()


def assert_no_secret_leaked(bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Last, while the broker still runs: no test secret in any record or any log file."""
    read, in_topics = leaks_in_topics(bootstrap)
    in_files = leaks_in_files(tmp_path_factory.getbasetemp())
    assert read > 0, "the secret sweep read no record"
    assert not in_topics, f"test secrets found in topics: {in_topics[:10]}"
    assert not in_files, f"test secrets found in log files: {in_files[:10]}"


class _CollectLogs(logging.Handler):
    """Keeps every log line of the test process for the secret check at the end."""

    lines: ClassVar[list[str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.lines.append(self.format(record))
        except Exception:
            self.lines.append(repr(record.msg))


def pytest_configure(config: pytest.Config) -> None:
    logging.getLogger().addHandler(_CollectLogs(level=logging.DEBUG))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    leaked = {secret for line in _CollectLogs.lines for secret in find_leaks(line.encode())}
    if leaked:
        print(f"\nFAILED: test secrets appeared in captured logs: {[s[:3] for s in leaked]}")
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
