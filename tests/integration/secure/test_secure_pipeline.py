"""The whole pipeline on a SASL_SSL broker, every command set up by KAFKA_* alone."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from adapters.reference import ReceiverMode
from demo.compare import compare
from demo.oracle import expected_receiver_state
from demo.scenario import build_scenario
from demo.worker import start_worker, stop_worker
from tests.integration.harness import connector, wait_for
from tests.integration.secure.conftest import SecureBroker

pytestmark = pytest.mark.integration

CLIENT, CLUBS = "100", {"7": "C7", "8": "C8"}
EVENTS, SEED = 200, 5


@contextmanager
def receiver_serving(env: dict[str, str], log: Path) -> Iterator[str]:
    """`connector receiver serve` on a free port; yields its API URL."""
    clubs = ",".join(CLUBS.values())
    with log.open("w") as err:
        process = subprocess.Popen(
            [sys.executable, "-m", "streams.cli", "receiver", "serve", "--port", "0",
             "--client", f"R-{CLIENT}:{clubs}"],
            env=env, stdout=subprocess.PIPE, stderr=err, text=True,
        )  # fmt: skip
    try:
        assert process.stdout is not None
        api_url = process.stdout.readline().strip()
        assert api_url.startswith("http://127.0.0.1:"), log.read_text()
        yield api_url
    finally:
        process.terminate()
        process.wait(timeout=20)
        if process.stdout is not None:
            process.stdout.close()


def test_the_pipeline_runs_on_a_sasl_ssl_broker(
    secure_kafka: SecureBroker, secure_env: dict[str, str], tmp_path: Path
) -> None:
    started = time.monotonic()
    outputs: list[str] = []

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        done = connector(secure_env, *args)
        outputs.extend([done.stdout, done.stderr])
        assert done.returncode == 0, f"connector {' '.join(args)}:\n{done.stderr[-3000:]}"
        return done

    run("topics", "ensure")
    scenario = build_scenario(SEED, EVENTS, CLIENT, list(CLUBS))
    with receiver_serving(secure_env, tmp_path / "receiver.log") as api_url:
        root, base_path = api_url.removesuffix("/api/v1"), "/api/v1"
        with httpx.Client(timeout=10) as http:
            for rid, email, name in scenario.receiver_staff:
                body = {"client_id": f"R-{CLIENT}", "id": rid, "email": email, "name": name}
                assert http.post(f"{root}/_admin/staff", json=body).status_code == 201
            for _, name in scenario.receiver_lead_sources:
                created = http.post(
                    f"{api_url}/clients/R-{CLIENT}/lead-sources", json={"name": name}
                )
                assert created.status_code == 201

            host = root.removeprefix("http://")
            clubs = [arg for i, r in CLUBS.items() for arg in ("--club", f"{i}={r}")]
            run("turnup", "--client", CLIENT, "--receiver-client", f"R-{CLIENT}",
                "--adapter", "reference", "--host", host, "--scheme", "http",
                "--base-path", base_path, *clubs)  # fmt: skip
            run("generate", "--client", CLIENT, "--clubs", ",".join(CLUBS),
                "--events", str(EVENTS), "--seed", str(SEED), "--no-progress")  # fmt: skip

            expected = expected_receiver_state(
                scenario, ReceiverMode.FULL, receiver_client_id=f"R-{CLIENT}", club_map=CLUBS
            )
            worker_log = tmp_path / "worker.log"
            worker = start_worker(secure_env, worker_log)
            try:

                def converged() -> bool:
                    assert worker.poll() is None, worker_log.read_text()[-3000:]
                    return not compare(expected, http.get(f"{root}/_admin/state").json())

                wait_for("the receiver to hold what the events imply", converged, timeout=240)
                converged_at = time.monotonic() - started

                lag = run("lag", "--json", "--samples", "1")
                assert json.loads(lag.stdout)["group"] == secure_env["CONNECTOR_APP_ID"]
                replayed = run("replay", "--topic", "intouch.users.v1", "--from-earliest",
                               "--client", CLIENT, "--dry-run")  # fmt: skip
                assert "dry run" in (replayed.stdout + replayed.stderr).lower()
                run("dlq", "list")
                listed = run("tenants", "list")
                assert CLIENT in listed.stdout.split()
            finally:
                stop_worker(worker)
    outputs.append(worker_log.read_text(errors="replace"))
    outputs.append((tmp_path / "receiver.log").read_text(errors="replace"))
    broker_log = secure_kafka.material.folder.parent / "kafka.log"
    outputs.append(broker_log.read_text(errors="replace"))
    leaked = [i for i, text in enumerate(outputs) if secure_kafka.password in text]
    assert not leaked, f"the SASL password appears in outputs {leaked}"
    print(
        f"\nsecure broker start {secure_kafka.start_seconds:.1f}s; pipeline converged "
        f"{converged_at:.1f}s; e2e {time.monotonic() - started:.1f}s"
    )
