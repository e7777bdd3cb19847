"""Receiver profiles: the packaged ones load, capabilities derive from calls, errors are clear."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from adapters.base import Capability
from adapters.config import ReceiverConfig
from adapters.errors import MisconfiguredError, ProfileError
from adapters.profile import load_profile, load_profile_dir
from adapters.reference import ReceiverMode
from adapters.registry import ADAPTERS, PROFILE_DIR, create_adapter, register_profile_dir
from adapters.rest import RestReceiverClient

MINIMAL = """\
name: tiny
auth: [bearer]
calls:
  save_prospect:
    method: POST
    path: /clients/{client_id}/people
    body: {first_name: given, last_name: family, receiver_id: id}
    id_path: id
"""


def write(tmp_path: Path, text: str, name: str = "tiny.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_every_packaged_profile_loads_and_is_registered() -> None:
    profiles = load_profile_dir(PROFILE_DIR)
    assert {p.name for p in profiles} == {m.profile_name for m in ReceiverMode}
    assert all(p.name in ADAPTERS for p in profiles)


def test_capabilities_follow_the_calls_present(tmp_path: Path) -> None:
    profile = load_profile(write(tmp_path, MINIMAL))
    assert profile.capabilities == {Capability.PROSPECT_SAVE}
    with_owner = MINIMAL.replace("receiver_id: id}", "receiver_id: id, staff_owner_receiver_id: o}")
    owned = load_profile(write(tmp_path, with_owner))
    assert owned.capabilities == {Capability.PROSPECT_SAVE, Capability.STAFF_OWNER}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (MINIMAL.replace("method: POST", "methd: POST"), "calls.save_prospect.methd: Extra inputs"),
        (
            MINIMAL.replace("method: POST", "method: YEET"),
            "calls.save_prospect.method: Input should be",
        ),
        (MINIMAL.replace("save_prospect:", "save_prospec:"), "calls.save_prospec: Extra inputs"),
        (
            MINIMAL.replace("{client_id}/people", "{tenant}/people"),
            "unknown placeholder(s) ['tenant']",
        ),
        (MINIMAL.replace("    id_path: id\n", ""), "calls.save_prospect.id_path: required"),
        (
            MINIMAL.replace("given,", "given, shoe_size: s,"),
            "calls.save_prospect.body: unknown field(s) ['shoe_size']",
        ),
        (MINIMAL.replace("auth: [bearer]", "auth: [kerberos]"), "auth.0: Input should be"),
        (MINIMAL.replace("path: /clients", "path: clients"), "path: must start with '/'"),
        ("- just\n- a list\n", "a profile is a mapping"),
        ("name: [unclosed\n", "not valid YAML"),
    ],
)
def test_profile_errors_name_the_file_and_the_key(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ProfileError) as caught:
        load_profile(path)
    assert str(caught.value).startswith(str(path))
    assert expected in str(caught.value)


def test_update_calls_must_send_the_receiver_id(tmp_path: Path) -> None:
    text = MINIMAL.replace("save_prospect:", "update_prospect:").replace("    id_path: id\n", "")
    text = text.replace(", receiver_id: id}", "}")
    with pytest.raises(ProfileError, match=r"calls.update_prospect: must send \{receiver_id\}"):
        load_profile(write(tmp_path, text))


def test_extends_merges_and_null_removes(tmp_path: Path) -> None:
    write(tmp_path, MINIMAL)
    child = write(
        tmp_path,
        "extends: tiny\nname: tiny-child\ncalls:\n  save_prospect: {body: {last_name: null}}\n",
        "tiny-child.yaml",
    )
    profile = load_profile(child)
    assert profile.calls.save_prospect is not None
    assert set(profile.calls.save_prospect.body) == {"first_name", "receiver_id"}
    gone = write(tmp_path, "extends: tiny\nname: empty\ncalls: {save_prospect: null}\n", "e.yaml")
    assert load_profile(gone).capabilities == frozenset()
    with pytest.raises(ProfileError, match="extends: no profile 'nope'"):
        load_profile(write(tmp_path, "extends: nope\nname: x\ncalls: {}\n", "x.yaml"))
    write(tmp_path, "extends: loop-b\nname: a\ncalls: {}\n", "loop-a.yaml")
    with pytest.raises(ProfileError, match="loops"):
        load_profile(write(tmp_path, "extends: loop-a\nname: b\ncalls: {}\n", "loop-b.yaml"))


def test_registry_builds_by_name_and_refuses_unknown_names(tmp_path: Path) -> None:
    write(tmp_path, MINIMAL)
    assert register_profile_dir(tmp_path, replace=True) == ["tiny"]
    config = ReceiverConfig(
        host="127.0.0.1:9", receiver_client_id="C1", auth={"kind": "bearer", "secret": "t"}
    )
    client = create_adapter("tiny", config)
    assert isinstance(client, RestReceiverClient)
    assert client.capabilities == {Capability.PROSPECT_SAVE}
    asyncio.run(client.aclose())
    with pytest.raises(MisconfiguredError, match="no receiver adapter named 'nope'"):
        create_adapter("nope", config)
    with pytest.raises(MisconfiguredError, match="already registered"):
        register_profile_dir(tmp_path)
    ADAPTERS.pop("tiny")


def test_receiver_config_builds_the_base_url_and_refuses_userinfo() -> None:
    config = ReceiverConfig(
        host="crm.example.com:8443", base_path="api/v2/", receiver_client_id="7"
    )
    assert config.base_url == "https://crm.example.com:8443/api/v2"
    assert config.verify is True
    with pytest.raises(ValueError, match="without scheme, path or user"):
        ReceiverConfig(host="user:pw@crm.example.com", receiver_client_id="7")
    with pytest.raises(ValueError, match="basic auth needs a username"):
        ReceiverConfig(host="h", receiver_client_id="7", auth={"kind": "basic", "secret": "s"})
