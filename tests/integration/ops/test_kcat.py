"""The kcat one-liners of the README's "Operating it", run for real (Debian's kcat, installed
on first use) against a pipeline's topics."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.integration.harness import running_pipeline, wait_for
from tests.ops_tools import require_tool


def kcat(*args: str) -> str:
    done = subprocess.run(
        [str(require_tool("kcat")), *args], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_kcat_lists_topics_and_shows_a_dead_letters_key_and_headers(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    with running_pipeline(kafka_bootstrap, tmp_path) as p:
        p.add_receiver("kc")
        p.start_worker()
        p.send_raw(p.topics.users_topic, b"kcat-key", b"not avro", [("trace", b"t-42")])
        wait_for("the dead letter", lambda: p.dead_letters())
        dlq = p.topic(p.topics.dlq_topic)

        listing = kcat("-b", kafka_bootstrap, "-L", "-t", dlq)
        assert f'topic "{dlq}" with 3 partitions' in listing

        # The README's "what is in the DLQ" line: position, key and headers, no decoding.
        rows = kcat(
            "-b", kafka_bootstrap, "-C", "-t", dlq, "-o", "beginning", "-e", "-q",
            "-f", r"%p %o key=%k headers=%h\n",
        )  # fmt: skip
        (row,) = rows.splitlines()
        assert "key=kcat-key" in row
