"""What a new user meets first: a bad setting is one line naming the variable and what is
allowed (exit 2, no traceback), and `--version` answers."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from streams.kafka.clients import RepeatFilter, TransientFilter
from streams.kafka.local import free_port


def connector(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "streams.cli", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("env", "command", "expected"),
    [
        (
            {"CONNECTOR_SINK_MAX_IN_FLIGHT": "abc"},
            ["worker"],
            "error: CONNECTOR_SINK_MAX_IN_FLIGHT='abc': Input should be a valid integer, unable to "
            "parse string as an integer",
        ),
        (
            # A revocation waits for a create under way: past the rebalance timeout it would
            # drop the worker from its group.
            {"CONNECTOR_RECEIVER_TIMEOUT": "90"},
            ["worker"],
            "error: CONNECTOR_RECEIVER_TIMEOUT='90': Input should be less than 60",
        ),
        (
            {"KAFKA_SECURITY_PROTOCOL": "BOGUS"},
            ["lag"],
            "error: KAFKA_SECURITY_PROTOCOL='BOGUS': Input should be 'PLAINTEXT', 'SSL', "
            "'SASL_PLAINTEXT' or 'SASL_SSL'",
        ),
    ],
)
def test_a_bad_setting_is_one_line_naming_the_variable(
    env: dict[str, str], command: list[str], expected: str, tmp_path: Path
) -> None:
    # As on a fresh machine: no cluster set and no local broker running, so a command
    # that would start one must fail on the setting first.
    fresh = {"KAFKA_BOOTSTRAP_SERVERS": "", "CONNECTOR_STATE_DIR": str(tmp_path)}
    done = connector(*command, **fresh, **env)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [expected]
    assert "Traceback" not in done.stdout + done.stderr


def test_version() -> None:
    done = connector("--version")
    assert done.returncode == 0
    assert done.stdout.startswith("connector, version ")


def test_topics_list_is_a_table_and_json_on_request() -> None:
    table = connector("topics", "list", CONNECTOR_TOPIC_PREFIX="t.")
    assert table.returncode == 0, table.stderr
    header, *rows = table.stdout.splitlines()
    assert header.split()[:4] == ["TOPIC", "PARTITIONS", "RETENTION", "CLEANUP"]
    outcomes = next(row for row in rows if row.startswith("t.connector.outcomes.v1 "))
    assert outcomes.split()[1:4] == ["6", "forever", "delete"]
    listed = json.loads(connector("topics", "list", "--json", CONNECTOR_TOPIC_PREFIX="t.").stdout)
    assert [r["topic"] for r in listed] == [row.split()[0] for row in rows]
    assert {"topic", "partitions", "config", "purpose"} == set(listed[0])


def test_tenants_list_gives_up_within_its_timeout_when_no_broker_answers() -> None:
    closed = f"127.0.0.1:{free_port()}"  # nothing listens there
    started = time.monotonic()
    done = connector("tenants", "list", "--timeout", "3", KAFKA_BOOTSTRAP_SERVERS=closed)
    assert done.returncode == 1
    assert f"no answer from Kafka at {closed} within 3s" in done.stderr
    assert time.monotonic() - started < 15
    # librdkafka's "Connection refused", repeated many times a second, is said once.
    refused = [line for line in done.stderr.splitlines() if "Connection refused" in line]
    assert len(refused) <= 2, len(refused)


def test_repeated_client_lines_are_held_back_and_counted() -> None:
    repeats = RepeatFilter(interval=60)

    def line(text: str) -> logging.LogRecord:
        return logging.LogRecord("librdkafka", logging.ERROR, __file__, 1, text, None, None)

    passed = [repeats.filter(line(f"Connect to 127.0.0.1:{port} failed")) for port in (9, 9, 10)]
    assert passed == [True, False, False]  # digits aside, the same line
    assert repeats.filter(line("Another failure"))
    held = RepeatFilter(interval=0)
    first, again = line("x 1"), line("x 2")
    assert held.filter(first) and held.filter(again)
    assert again.getMessage() == "x 2"  # nothing held back: no count


def test_a_line_librdkafka_retries_through_by_itself_shows_only_at_debug() -> None:
    transient = TransientFilter()
    text = "Failed to acquire idempotence PID from broker: Coordinator load in progress: retrying"
    record = logging.LogRecord("librdkafka.t", logging.WARNING, __file__, 1, text, None, None)
    other = logging.LogRecord(
        "librdkafka.t", logging.WARNING, __file__, 1, "SSL failed", None, None
    )
    logger = logging.getLogger("librdkafka.t")
    logger.setLevel(logging.WARNING)
    assert not transient.filter(record) and transient.filter(other)
    logger.setLevel(logging.DEBUG)
    assert transient.filter(record)
