"""Profiles and Python adapters from outside the package, used against a real receiver."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from adapters.registry import PROFILE_DIR

REPO = Path(__file__).resolve().parents[3]

# Run in a fresh interpreter: the registry reads its sources when it is first imported.
USE_PROFILE = """
import asyncio, json
from adapters.base import ClubRef, Person
from adapters.reference import ReferenceConfig, ReferenceReceiver
from adapters.registry import adapter_names, create_adapter

async def main():
    async with ReferenceReceiver(ReferenceConfig()) as receiver:
        config = receiver.receiver_config("C100")
        async with create_adapter("outside-test", config) as client:
            new_id = await client.save_prospect(ClubRef("1", "CL1"), Person("Ann", "Lee"), None)
        stored = receiver.store.as_json()["C100"]["clubs"]["CL1"]["prospects"]
        print(json.dumps({"names": adapter_names(), "stored": stored[new_id]["firstName"]}))

asyncio.run(main())
"""

TINY_ADAPTER = '''
"""A hand-written adapter shipped by another package, found through its entry point."""
from adapters.base import Capability, ReceiverClient, ReceiverLeadSource
from adapters.http import ReceiverHttp
from adapters.options import OptionSpec


class TinyAdapter(ReceiverClient):
    name = "tiny"
    options = (OptionSpec(name="prefix", required=True),)

    def __init__(self, config):
        self._config = config
        self._http = ReceiverHttp(config.base_url)

    @property
    def capabilities(self):
        return frozenset({Capability.LEAD_SOURCE_LIST})

    async def list_lead_sources(self):
        client = self._config.receiver_client_id
        answer = await self._http.request("GET", f"/clients/{client}/lead-sources")
        prefix = self._config.options["prefix"]
        return [
            ReceiverLeadSource(id=str(s["id"]), name=prefix + s["name"])
            for s in answer.json("list")["leadSources"]
        ]

    async def aclose(self):
        await self._http.aclose()
'''

USE_ENTRY_POINT = """
import asyncio, json
from adapters.reference import ReferenceConfig, ReferenceReceiver
from adapters.registry import create_adapter
from streams.exceptions import TurnupError
from streams.tenancy.receivers import open_receiver
from streams.tenancy.secrets import SecretResolver
from streams.tenancy.turnup import validate_turnup

async def main():
    async with ReferenceReceiver(ReferenceConfig()) as receiver:
        async with create_adapter("reference", receiver.receiver_config("C100")) as reference:
            await reference.create_lead_source("Newspaper")
        turnup = dict(
            client_id="100", receiver_client_id="C100", adapter="tiny", clubs=[("1", "CL1")],
            host=receiver.host_port, scheme="http", base_path="/api/v1",
        )
        try:
            validate_turnup(**turnup)
            missing = None
        except TurnupError as exc:
            missing = str(exc)
        tenant = validate_turnup(**turnup, options={"prefix": "tiny:"})
        async with open_receiver(tenant, SecretResolver(None)) as client:
            names = [s.name for s in await client.list_lead_sources()]
        print(json.dumps({"missing": missing, "names": names}))

asyncio.run(main())
"""


def run(script: str, *, pythonpath: list[Path], env: dict[str, str]) -> dict[str, object]:
    environ = {**os.environ, **env, "PYTHONPATH": os.pathsep.join(map(str, pythonpath))}
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=REPO,
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_a_profile_from_connector_profiles_dir_is_registered_and_works(tmp_path: Path) -> None:
    outside = tmp_path / "profiles"
    outside.mkdir()
    text = (PROFILE_DIR / "reference.yaml").read_text()
    (outside / "outside.yaml").write_text(text.replace("name: reference\n", "name: outside-test\n"))
    found = run(USE_PROFILE, pythonpath=[REPO], env={"CONNECTOR_PROFILES_DIR": str(outside)})
    assert "outside-test" in found["names"]  # type: ignore[operator]
    assert found["stored"] == "Ann"


def test_a_bad_profile_dir_fails_loudly(tmp_path: Path) -> None:
    environ = {**os.environ, "PYTHONPATH": str(REPO)}
    environ["CONNECTOR_PROFILES_DIR"] = str(tmp_path / "missing")
    done = subprocess.run(
        [sys.executable, "-c", "import adapters.registry"],
        cwd=REPO,
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode != 0
    assert "CONNECTOR_PROFILES_DIR" in done.stderr and "is not a folder" in done.stderr


def test_an_adapter_class_from_an_installed_package_entry_point(tmp_path: Path) -> None:
    site = tmp_path / "site"
    (site / "tiny_adapter").mkdir(parents=True)
    (site / "tiny_adapter" / "__init__.py").write_text(textwrap.dedent(TINY_ADAPTER))
    dist = site / "tiny_adapter-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: tiny-adapter\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(
        "[intouch_connector.adapters]\ntiny = tiny_adapter:TinyAdapter\n"
    )
    found = run(USE_ENTRY_POINT, pythonpath=[site, REPO], env={})
    assert "requires option(s) ['prefix']" in str(found["missing"])
    assert found["names"] == ["tiny:Newspaper"]
