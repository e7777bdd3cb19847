"""Shared fixtures: one real Apache Kafka broker per test session, unique names per test."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from streams.kafka_local import LocalKafka
from streams.settings import LocalKafkaSettings


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """KAFKA_BOOTSTRAP_SERVERS when set, else a local broker started once for the session.

    A broker that cannot start fails every test that needs it, loudly; nothing is skipped.
    """
    existing = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if existing:
        yield existing
        return
    settings = LocalKafkaSettings(state_dir=tmp_path_factory.mktemp("kafka-state"))
    local = LocalKafka(settings)
    info = local.up()
    try:
        yield info.bootstrap
    finally:
        local.down()


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
