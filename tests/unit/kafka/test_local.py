"""The local broker's checks that need no broker: Java discovery, jar verification, settings."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from streams.exceptions import JavaNotFoundError, LocalKafkaError
from streams.kafka.jars import java_executable, pinned_checksums, verify_jars
from streams.kafka.local import LocalKafka, _port_free, free_port
from streams.settings import LocalKafkaSettings


def test_missing_java_names_the_alternatives(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "no-jdk"))
    with pytest.raises(JavaNotFoundError) as err:
        java_executable()
    assert "KAFKA_BOOTSTRAP_SERVERS" in str(err.value)
    assert "deploy/docker-compose.yml" in str(err.value)


def test_an_old_java_is_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    fake = tmp_path / "jdk" / "bin" / "java"
    fake.parent.mkdir(parents=True)
    fake.write_text("#!/bin/sh\necho 'openjdk version \"11.0.2\" 2019-01-15' >&2\n")
    fake.chmod(0o755)
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "jdk"))
    with pytest.raises(JavaNotFoundError, match="Java 11"):
        java_executable()


def test_up_without_java_fails_before_touching_anything(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "no-jdk"))
    local = LocalKafka(LocalKafkaSettings(state_dir=tmp_path / "state", cache_dir=tmp_path / "c"))
    with pytest.raises(JavaNotFoundError):
        local.up()
    assert not (tmp_path / "state").exists()


def test_every_pinned_version_has_checksums_for_the_broker_jar() -> None:
    for version in ("3.9.2", "4.1.1"):
        sums = pinned_checksums(version)
        assert f"kafka_2.13-{version}.jar" in sums
        assert all(len(digest) == 64 for digest in sums.values())


def test_an_unpinned_version_is_refused() -> None:
    with pytest.raises(LocalKafkaError, match="no pinned checksums"):
        pinned_checksums("0.0.1")


def test_tampered_missing_and_extra_jars_are_reported(tmp_path: Path) -> None:
    (tmp_path / "a.jar").write_bytes(b"a")
    (tmp_path / "extra.jar").write_bytes(b"x")
    import hashlib

    sums = {
        "a.jar": hashlib.sha256(b"not a").hexdigest(),
        "b.jar": hashlib.sha256(b"b").hexdigest(),
    }
    problems = verify_jars(tmp_path, sums)
    assert any("a.jar: SHA-256" in p for p in problems)
    assert "b.jar: missing" in problems
    assert "extra.jar: not pinned" in problems
    sums["a.jar"] = hashlib.sha256(b"a").hexdigest()
    (tmp_path / "extra.jar").unlink()
    (tmp_path / "b.jar").write_bytes(b"b")
    assert verify_jars(tmp_path, sums) == []


def test_the_secured_config_gives_clients_sasl_ssl_only_and_is_the_owners(
    tmp_path: Path,
) -> None:
    local = LocalKafka(LocalKafkaSettings(state_dir=tmp_path))
    local.material.folder.mkdir()
    local.material.store_password_file.write_text("store-pass\n")
    props = local._write_config(9093, 9094, tmp_path / "data-secure", 9095)
    lines = dict(line.split("=", 1) for line in props.read_text().splitlines())
    assert lines["advertised.listeners"] == "SASL_SSL://127.0.0.1:9093,INTERNAL://127.0.0.1:9095"
    assert "PLAINTEXT://" not in lines["listeners"]
    assert lines["inter.broker.listener.name"] == "INTERNAL"
    assert lines["sasl.enabled.mechanisms"] == "SCRAM-SHA-512"
    assert lines["ssl.keystore.location"] == str(local.material.keystore)
    assert props.stat().st_mode & 0o077 == 0  # it holds the keystore password


def test_a_port_left_in_time_wait_by_a_stopped_broker_is_free_again() -> None:
    port = free_port()
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", port))
    server.listen()
    client = socket.create_connection(("127.0.0.1", port))
    accepted, _ = server.accept()
    accepted.close()  # the server side closes first: its end stays in TIME_WAIT
    server.close()
    client.close()
    assert _port_free(port)
