"""One secured (SASL_SSL, SCRAM-SHA-512) local broker for the session, and `connector` envs
that reach it by KAFKA_* alone."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from demo.worker import clean_env
from streams.kafka.secure import SecureMaterial
from tests.run_broker import RunBroker, run_root


@dataclass(frozen=True)
class SecureBroker:
    """The running secured broker and what a client of it exports."""

    bootstrap: str
    material: SecureMaterial
    start_seconds: float

    @property
    def password(self) -> str:
        return self.material.sasl_password().get_secret_value()

    def kafka_env(self) -> dict[str, str]:
        """KAFKA_* of a client of this broker (the password as its value, as users export it)."""
        return {
            "KAFKA_BOOTSTRAP_SERVERS": self.bootstrap,
            "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
            "KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
            "KAFKA_SASL_USERNAME": "connector",
            "KAFKA_SASL_PASSWORD": self.password,
            "KAFKA_SSL_CAFILE": str(self.material.ca_pem),
        }


@pytest.fixture(scope="session")
def secure_kafka(tmp_path_factory: pytest.TempPathFactory) -> SecureBroker:
    """`connector kafka up --secure` in its own state dir, once for the whole run (every xdist
    worker shares it); stopped after the last test (tests/conftest.py).

    A broker that cannot start fails every test that needs it, loudly; nothing is skipped."""
    shared = RunBroker(run_root(tmp_path_factory), "secure-kafka", secure=True)
    bootstrap = shared.attach()
    local = shared.local()
    info = local.info()
    assert info is not None and info.secure and info.bootstrap == bootstrap
    record = shared.address() or {}
    return SecureBroker(bootstrap, local.material, float(record["start_seconds"]))


@pytest.fixture
def secure_env(secure_kafka: SecureBroker, tmp_path: Path) -> dict[str, str]:
    """A `connector` subprocess's environment: the secured broker, unique topics and group."""
    unique = uuid.uuid4().hex[:10]
    return {
        **clean_env(),
        **secure_kafka.kafka_env(),
        "CONNECTOR_TOPIC_PREFIX": f"s{unique}.",
        "CONNECTOR_APP_ID": f"app-{unique}",
        "CONNECTOR_STATE_DIR": str(tmp_path / "state"),
        "CONNECTOR_DATA_DIR": str(tmp_path / "data"),
    }
