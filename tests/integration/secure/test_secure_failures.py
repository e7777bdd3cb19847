"""A wrong SASL password and an untrusted CA: one clear line, at once, no retry flood."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from demo.worker import start_worker
from streams.kafka.jars import java_executable
from streams.kafka.secure import keytool_executable, make_ca
from tests.integration.harness import connector, wait_for
from tests.integration.secure.conftest import SecureBroker

pytestmark = pytest.mark.integration

#: Seconds a `connector` process needs to start (imports) on a busy 2-core machine, on top
#: of the `--timeout` it is given.
START_ALLOWANCE = 15.0


@pytest.fixture(scope="module")
def foreign_ca(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CA that did not sign the broker's certificate."""
    folder = tmp_path_factory.mktemp("foreign-ca")
    return make_ca(keytool_executable(java_executable()), folder, "foreign-ca", "Someone else")


def refused_login(broker: SecureBroker) -> str:
    return (
        f"error: Kafka at {broker.bootstrap} refused the SASL login for user 'connector' "
        "(SCRAM-SHA-512): check KAFKA_SASL_USERNAME/KAFKA_SASL_PASSWORD"
    )


def untrusted(broker: SecureBroker, ca: Path) -> str:
    return (
        f"error: TLS to {broker.bootstrap} failed: the broker's certificate is not signed by "
        f"KAFKA_SSL_CAFILE={ca}"
    )


def one_line_within(env: dict[str, str], timeout: float) -> tuple[str, float]:
    started = time.monotonic()
    done = connector(env, "tenants", "list", "--timeout", f"{timeout:g}")
    elapsed = time.monotonic() - started
    assert done.returncode == 1, done.stderr
    assert elapsed < timeout + START_ALLOWANCE, elapsed
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    return lines[0], elapsed


def worker_fails_with_one_line(env: dict[str, str], log: Path) -> tuple[str, float]:
    started = time.monotonic()
    worker = start_worker(env, log)
    try:
        wait_for("the worker to exit", lambda: worker.poll() is not None, timeout=60)
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait(timeout=10)
    assert worker.returncode != 0
    lines = log.read_text().strip().splitlines()
    assert len(lines) == 1, lines[:20]
    return lines[0], time.monotonic() - started


def test_a_wrong_password_is_one_line_at_once(
    secure_kafka: SecureBroker, secure_env: dict[str, str], tmp_path: Path
) -> None:
    wrong = "not-the-password-" + secure_kafka.password[:4]
    env = {**secure_env, "KAFKA_SASL_PASSWORD": wrong}
    line, listed = one_line_within(env, timeout=5)
    assert line == refused_login(secure_kafka)
    line, ran = worker_fails_with_one_line(env, tmp_path / "worker.log")
    assert line == refused_login(secure_kafka)
    assert wrong not in line and secure_kafka.password not in line
    print(f"\nwrong password: tenants list {listed:.1f}s, worker {ran:.1f}s")


def test_an_untrusted_ca_is_one_line_at_once(
    secure_kafka: SecureBroker, secure_env: dict[str, str], foreign_ca: Path, tmp_path: Path
) -> None:
    env = {**secure_env, "KAFKA_SSL_CAFILE": str(foreign_ca)}
    line, listed = one_line_within(env, timeout=5)
    assert line == untrusted(secure_kafka, foreign_ca)
    line, ran = worker_fails_with_one_line(env, tmp_path / "worker.log")
    assert line == untrusted(secure_kafka, foreign_ca)
    assert secure_kafka.password not in line
    print(f"\nuntrusted CA: tenants list {listed:.1f}s, worker {ran:.1f}s")


def test_kafka_up_secure_reuses_the_broker_and_prints_what_to_export(
    secure_kafka: SecureBroker, secure_env: dict[str, str]
) -> None:
    """Run again on the fixture's state dir: the running broker is reused, the password is
    not printed, and the file that holds it is its owner's only."""
    env = {**secure_env, "CONNECTOR_STATE_DIR": str(secure_kafka.material.folder.parent)}
    done = connector(env, "kafka", "up", "--secure")
    assert done.returncode == 0, done.stderr
    assert f"reusing the broker on {secure_kafka.bootstrap}" in done.stderr
    assert done.stdout.splitlines() == secure_kafka.material.exports(secure_kafka.bootstrap)
    assert secure_kafka.password not in done.stdout + done.stderr
    assert (secure_kafka.material.password_file.stat().st_mode & 0o077) == 0
    plain = connector(env, "kafka", "up")
    assert plain.returncode == 1
    assert "a secured local broker already runs" in plain.stderr
    unset = {k: v for k, v in env.items() if not k.startswith("KAFKA_")}
    listed = connector(unset, "tenants", "list", "--timeout", "5")
    assert listed.returncode == 1
    assert listed.stderr.strip() == (
        f"error: the local broker on {secure_kafka.bootstrap} is secured: export the KAFKA_* "
        "settings that `connector kafka up --secure` prints"
    )
