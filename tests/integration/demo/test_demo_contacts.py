"""`connector demo --mode contacts`: the second bundled profile (a platform shaped unlike the
reference receiver) converges like the reference one."""

from __future__ import annotations

import json
import re
from pathlib import Path

from confluent_kafka.admin import AdminClient

from demo.worker import clean_env
from streams.kafka.topics import design_topics
from streams.settings import TopicSettings
from tests.integration.harness import connector


def test_the_demo_on_the_contacts_platform_ends_with_no_mismatch(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    env = clean_env()
    env.update(KAFKA_BOOTSTRAP_SERVERS=kafka_bootstrap, CONNECTOR_STATE_DIR=str(tmp_path))
    args = ("demo", "--events", "800", "--seed", "5", "--mode", "contacts")
    result = connector(env, *args, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert (summary["mismatches"], summary["dlq"], summary["events"]) == (0, 0, 800)
    assert summary["calls"] >= summary["links"] > 0
    # A clean run leaves nothing behind (--keep keeps its topics and work dir).
    prefix = re.search(r"topics (demo-\S+)\.\*", result.stderr)
    assert prefix is not None, result.stderr[-2000:]
    names = AdminClient({"bootstrap.servers": kafka_bootstrap}).list_topics(timeout=10).topics
    assert not [n for n in names if n.startswith(prefix.group(1) + ".")]
    design = len(design_topics(TopicSettings()))
    assert f"deleted {design} topics and the work dir" in result.stderr
