"""Turn-up through `connector` on the session broker: published, followed live, secret-free."""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
import time
from pathlib import Path

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Producer, TopicPartition
from pydantic import SecretStr

from adapters.errors import MisconfiguredError
from adapters.reference import ReferenceAuth, ReferenceConfig, run_in_thread
from streams.settings import KafkaSettings
from streams.tenancy.directory import TenantDirectory
from streams.tenancy.receivers import open_receiver
from streams.tenancy.secrets import SecretResolver
from streams.tenancy.turnup import validate_turnup
from tests.integration.harness import connector
from tests.secret_values import TURNUP_SECRET

pytestmark = pytest.mark.integration

SECRET_REF = "RECEIVER_100_PASSWORD"
SECRET = TURNUP_SECRET


@pytest.fixture
def tenants_topic(test_env: dict[str, str], unique: str) -> str:
    created = connector(test_env, "topics", "ensure")
    assert created.returncode == 0, created.stderr
    return f"t{unique}.connector.tenants.v1"


def turnup_args(*clubs: str, client: str = "100") -> list[str]:
    args = ["turnup", "--client", client, "--receiver-client", f"R-{client}"]
    args += ["--adapter", "reference", "--host", "127.0.0.1:8080", "--scheme", "http"]
    args += ["--username", "api", "--secret-ref", SECRET_REF, "--option", "region=eu"]
    for club in clubs:
        args += ["--club", club]
    return args


def raw_records(bootstrap: str, topic: str, timeout: float = 30.0) -> list[tuple[bytes, bytes]]:
    """Every (key, value) on the topic's single partition, tombstones as b''."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"raw-{topic}",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
        }
    )
    records: list[tuple[bytes, bytes]] = []
    deadline = time.monotonic() + timeout
    try:
        consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
        while time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is None:
                continue
            error = message.error()
            if error is not None and error.code() == KafkaError._PARTITION_EOF:
                return records
            assert error is None, error
            records.append((message.key() or b"", message.value() or b""))
    finally:
        consumer.close()
    raise AssertionError(f"{topic}: did not reach the end within {timeout}s")


def test_turnup_show_replace_remove_and_no_secret_anywhere(
    test_env: dict[str, str], tenants_topic: str, kafka_bootstrap: str
) -> None:
    env = {**test_env, SECRET_REF: SECRET}
    outputs: list[str] = []

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        done = connector(env, *args)
        outputs.extend([done.stdout, done.stderr])
        return done

    first = run(*turnup_args("7=C7", "8=C8"))
    assert first.returncode == 0, first.stderr
    assert "turned up client 100" in first.stderr

    shown = run("tenants", "show", "100")
    assert shown.returncode == 0, shown.stderr
    data = json.loads(shown.stdout)
    assert data["clubs"] == {"7": "C7", "8": "C8"}
    assert data["connection"]["secret_ref"] == SECRET_REF
    assert data["connection"]["host"] == "127.0.0.1:8080"
    assert data["options"] == {"region": "eu"}

    with TenantDirectory(kafka_bootstrap, KafkaSettings(), tenants_topic) as directory:
        directory.wait_until_current(30)
        tenant = directory.get("100")
        assert tenant is not None and tenant.clubs.get("8") == "C8"
        seen_version = directory.version

        # A second turn-up replaces the first, and the running directory sees it live.
        second = run(*turnup_args("7=C70", "9=C9"))
        assert second.returncode == 0, second.stderr
        directory.wait_until_current(30)
        tenant = directory.get("100")
        assert tenant is not None and dict(tenant.clubs) == {"7": "C70", "9": "C9"}
        assert directory.version > seen_version

        listed = run("tenants", "list")
        assert listed.returncode == 0, listed.stderr
        assert listed.stdout.splitlines()[0].split() == ["CLIENT", "ADAPTER", "CLUBS", "HOST"]
        assert listed.stdout.splitlines()[1].split() == [
            "100",
            "reference",
            "7=C70,9=C9",
            "http://127.0.0.1:8080",
        ]
        as_json = run("tenants", "list", "--json")
        assert as_json.returncode == 0, as_json.stderr
        [record] = json.loads(as_json.stdout)
        assert record["client_id"] == "100" and record["clubs"] == {"7": "C70", "9": "C9"}
        assert record["connection"]["secret_ref"] == SECRET_REF

        removed = run("tenants", "remove", "100")
        assert removed.returncode == 0, removed.stderr
        directory.wait_until_current(30)
        assert directory.get("100") is None
        assert directory.all() == []

    gone = run("tenants", "show", "100")
    assert gone.returncode == 1
    assert "no tenant 100" in gone.stderr

    records = raw_records(kafka_bootstrap, tenants_topic)
    assert [key for key, _ in records] == [b"100", b"100", b"100"]
    assert records[-1][1] == b""  # the tombstone
    assert all(SECRET_REF.encode() in value for _, value in records[:2])
    for key, value in records:
        assert SECRET.encode() not in key and SECRET.encode() not in value
    assert all(SECRET not in text for text in outputs)


def test_invalid_turnup_exits_2_with_the_fix(
    test_env: dict[str, str], tenants_topic: str, kafka_bootstrap: str
) -> None:
    twice = connector(test_env, *turnup_args("7=C7", "7=C8"))
    assert twice.returncode == 2
    assert "error: InTouch club 7 is mapped twice" in twice.stderr
    assert "keep one --club" in twice.stderr

    unknown = connector(
        test_env, "turnup", "--client", "1", "--receiver-client", "R", "--adapter", "nope"
    )
    assert unknown.returncode == 2
    assert "unknown adapter 'nope': use one of reference" in unknown.stderr

    assert raw_records(kafka_bootstrap, tenants_topic) == []  # nothing was published


def test_turnup_from_file(test_env: dict[str, str], tenants_topic: str, tmp_path: Path) -> None:
    path = tmp_path / "tenant.yaml"
    path.write_text(
        "client_id: 300\nreceiver_client_id: R-300\nadapter: reference-save-only\n"
        "clubs: {1: A, 2: B}\nconnection: {host: api.example, secret_ref: RECEIVER_300_TOKEN}\n"
    )
    done = connector(test_env, "turnup", "--file", str(path))
    assert done.returncode == 0, done.stderr
    shown = connector(test_env, "tenants", "show", "300")
    data = json.loads(shown.stdout)
    assert data["adapter"] == "reference-save-only"
    assert data["connection"]["scheme"] == "https"
    assert data["connection"]["secret_ref"] == "RECEIVER_300_TOKEN"


def test_directory_skips_undecodable_records(
    test_env: dict[str, str],
    tenants_topic: str,
    kafka_bootstrap: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    producer = Producer({"bootstrap.servers": kafka_bootstrap})
    producer.produce(tenants_topic, key=b"100", value=b"not a tenant")
    assert producer.flush(30) == 0
    producer.close()
    assert connector(test_env, *turnup_args("7=C7", client="200")).returncode == 0

    with (
        caplog.at_level(logging.WARNING, logger="streams.tenancy.directory"),
        TenantDirectory(kafka_bootstrap, KafkaSettings(), tenants_topic) as directory,
    ):
        directory.wait_until_current(30)
        assert [t.client_id for t in directory.all()] == ["200"]
    assert f"skipping undecodable tenant record at {tenants_topic}[0]@0" in caplog.text


def test_directory_on_a_missing_topic_says_how_to_create_it(
    kafka_bootstrap: str, unique: str
) -> None:
    directory = TenantDirectory(kafka_bootstrap, KafkaSettings(), f"t{unique}.absent")
    with pytest.raises(Exception, match="connector topics ensure"):
        directory.start(timeout=10)


def test_open_receiver_authenticates_with_the_resolved_secret() -> None:
    auth = ReferenceAuth(kind="basic", username="api", secret=SecretStr(SECRET))
    with run_in_thread(ReferenceConfig(auth=auth)) as served:
        receiver = served.receiver
        tenant = validate_turnup(
            client_id="100",
            receiver_client_id="C100",
            adapter="reference",
            clubs=[("7", "CL1")],
            host=receiver.host_port,
            scheme="http",
            username="api",
            secret_ref=SECRET_REF,
            base_path=receiver.config.base_path,
        )

        async def list_lead_sources(secret: str) -> int:
            resolver = SecretResolver(None, environ={SECRET_REF: secret})
            async with open_receiver(tenant, resolver) as client:
                return len(await client.list_lead_sources())

        assert asyncio.run(list_lead_sources(SECRET)) >= 0
        with pytest.raises(MisconfiguredError, match="401") as refused:
            asyncio.run(list_lead_sources("wrong-password"))
        assert "wrong-password" not in str(refused.value)
