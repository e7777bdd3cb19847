"""`connector kafka up|down|status` and `connector topics ensure` against a real broker."""

from __future__ import annotations

import os
import time
from pathlib import Path

from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic

from streams.kafka.topics import design_topics
from streams.settings import TopicSettings
from tests.integration.harness import connector


def test_up_is_idempotent_status_reports_and_down_stops_only_its_broker(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "KAFKA_BOOTSTRAP_SERVERS"}
    env["CONNECTOR_STATE_DIR"] = str(tmp_path / "state")
    assert connector(env, "kafka", "status").returncode == 1

    started = time.monotonic()
    first = connector(env, "kafka", "up")
    assert first.returncode == 0, first.stderr
    elapsed = time.monotonic() - started
    bootstrap = first.stdout.strip().splitlines()[-1]
    assert bootstrap.startswith("127.0.0.1:")
    print(f"kafka up to ready: {elapsed:.1f}s")
    try:
        pid = int((tmp_path / "state" / "broker.pid").read_text())
        second = connector(env, "kafka", "up")
        assert second.returncode == 0, second.stderr
        assert second.stdout.strip().splitlines()[-1] == bootstrap
        assert "reusing" in second.stderr
        assert int((tmp_path / "state" / "broker.pid").read_text()) == pid

        status = connector(env, "kafka", "status")
        assert status.returncode == 0
        assert status.stdout.strip() == bootstrap
        admin = AdminClient({"bootstrap.servers": bootstrap})
        assert admin.list_topics(timeout=10).brokers
    finally:
        down = connector(env, "kafka", "down")
    assert down.returncode == 0
    assert "stopped" in down.stderr
    assert (
        not Path(f"/proc/{pid}").exists()
        or b"kafka.Kafka" not in Path(f"/proc/{pid}/cmdline").read_bytes()
    )
    assert connector(env, "kafka", "status").returncode == 1
    again = connector(env, "kafka", "down")
    assert again.returncode == 0 and "no local broker" in again.stderr


def test_topics_ensure_creates_every_design_topic_once(
    test_env: dict[str, str], kafka_bootstrap: str, unique: str
) -> None:
    env = {**test_env, "CONNECTOR_INBOUND_PARTITIONS": "4", "CONNECTOR_COMMANDS_PARTITIONS": "5"}
    design = len(design_topics(TopicSettings()))
    first = connector(env, "topics", "ensure")
    assert first.returncode == 0, first.stderr
    assert f"{design} created, 0 already there" in first.stderr

    os.environ["CONNECTOR_TOPIC_PREFIX"] = f"t{unique}."
    try:
        specs = design_topics(TopicSettings(inbound_partitions=4, commands_partitions=5))
    finally:
        del os.environ["CONNECTOR_TOPIC_PREFIX"]
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    metadata = admin.list_topics(timeout=10).topics
    for spec in specs:
        assert spec.name.startswith(f"t{unique}.")
        assert len(metadata[spec.name].partitions) == spec.partitions, spec.name
    by_name = {spec.name: spec for spec in specs}
    tenants = f"t{unique}.connector.tenants.v1"
    dlq = f"t{unique}.connector.dlq.v1"
    users = f"t{unique}.intouch.users.v1"
    assert len(metadata[users].partitions) == 4
    assert len(metadata[f"t{unique}.connector.commands.v1"].partitions) == 5
    # Parked commands keep their partition: the parking topic is partitioned like commands.
    assert len(metadata[f"t{unique}.connector.parked.v1"].partitions) == 5
    # Replays are keyed like inbound records, on as many partitions.
    assert len(metadata[f"t{unique}.connector.replay.v1"].partitions) == 4
    resources = [ConfigResource(ConfigResource.Type.TOPIC, n) for n in (tenants, dlq, users)]
    configs = {r.name: f.result() for r, f in admin.describe_configs(resources).items()}
    assert configs[tenants]["cleanup.policy"].value == "compact"
    assert configs[dlq]["retention.ms"].value == by_name[dlq].config["retention.ms"]
    assert configs[users]["retention.ms"].value == by_name[users].config["retention.ms"]

    second = connector(env, "topics", "ensure")
    assert second.returncode == 0, second.stderr
    assert f"0 created, {design} already there" in second.stderr


def test_topics_ensure_reports_a_partition_mismatch_and_leaves_it(
    test_env: dict[str, str], kafka_bootstrap: str, unique: str
) -> None:
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    wrong = f"t{unique}.connector.dlq.v1"
    admin.create_topics([NewTopic(wrong, 1, 1)])[wrong].result()
    result = connector(test_env, "topics", "ensure")
    assert result.returncode == 1
    assert f"{wrong} has 1 partitions, the design wants 3" in result.stderr
    assert "left untouched" in result.stderr
    assert len(admin.list_topics(timeout=10).topics[wrong].partitions) == 1
    # The others were still created.
    assert f"{len(design_topics(TopicSettings())) - 1} created" in result.stderr


def test_topics_ensure_without_a_broker_says_what_to_do(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "KAFKA_BOOTSTRAP_SERVERS"}
    env["CONNECTOR_STATE_DIR"] = str(tmp_path / "nothing-here")
    result = connector(env, "topics", "ensure")
    assert result.returncode == 1
    assert "connector kafka up" in result.stderr
    assert "KAFKA_BOOTSTRAP_SERVERS" in result.stderr
