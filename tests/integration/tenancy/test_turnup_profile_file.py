"""A client turned up with a profile file of its own (`turnup --profile-file`): the profile
travels in its TenantConfigured record, so a worker that has never seen the file talks to the
receiver through it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from adapters.registry import ADAPTERS
from tests.integration.harness import running_pipeline, user_event

ROOT = Path(__file__).resolve().parents[3]


def test_a_profile_file_turned_up_with_a_client_reaches_the_worker(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    # A platform of our own: the reference receiver's API under another profile name that
    # no registry of any process knows.
    text = (ROOT / "adapters" / "profiles" / "reference.yaml").read_text()
    profile = tmp_path / "elsewhere" / "my-platform.yaml"
    profile.parent.mkdir()
    profile.write_text(text.replace("name: reference\n", "name: my-platform\n", 1))
    assert "my-platform" not in ADAPTERS
    with running_pipeline(kafka_bootstrap, tmp_path) as p:
        receiver = p.start_receiver("own")
        turnup = subprocess.run(
            [sys.executable, "-m", "streams.cli", "turnup", "--client", "own",
             "--receiver-client", "R-own", "--profile-file", str(profile),
             "--club", "7=C7", "--host", receiver.receiver.host_port, "--scheme", "http",
             "--base-path", "/api/v1", "--option", "auth=none"],
            env=p.env(), capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert turnup.returncode == 0, turnup.stderr
        (tenant,) = [
            t for t in p.read(p.topics.tenants_topic, "TenantConfigured") if t["client_id"] == "own"
        ]
        assert tenant["adapter"] == "my-platform.client-own"
        assert tenant["profile"] and '"my-platform.client-own"' in tenant["profile"]
        profile.unlink()  # the worker never reads the file
        p.start_worker()
        p.send("UserChanged", user_event("own", "P1", 1, first_name="Filed"))
        assert p.wait_outcome("own", "P1", 1)["status"] == "LINKED"
        assert [r["firstName"] for r in p.people("own")] == ["Filed"]


def test_a_profile_file_and_an_adapter_are_refused_together(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "streams.cli", "turnup", "--client", "x", "--receiver-client",
         "R", "--adapter", "reference", "--profile-file", str(ROOT / "adapters" / "profiles" /
         "reference.yaml"), "--club", "1=C1", "--host", "h", "--dry-run"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2
    assert "give --adapter or --profile-file, not both" in done.stderr
