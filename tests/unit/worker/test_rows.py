"""Rows written with json.dumps (stores from before orjson) still load, and new rows read back."""

from __future__ import annotations

import json
from pathlib import Path

from rocksdict import Rdict

from streams.avro.codec import default_codecs
from streams.worker.links import LinkStore
from streams.worker.references import UserStates
from streams.worker.rows import dump_row, load_row

CODEC = default_codecs()["Command"]


def test_rows_round_trip_and_read_what_json_wrote() -> None:
    row = {"position": [3, 12], "pending": {"call": "create", "at": 1.5}, "name": "Åsa"}
    assert load_row(dump_row(row)) == row == load_row(json.dumps(row).encode())
    assert json.loads(dump_row({3: 13})) == {"3": 13}


def test_a_link_store_written_with_json_still_loads(tmp_path: Path) -> None:
    old = Rdict(str(tmp_path / "links"))
    settled = {"position": [2, 10], "receiver_id": "M1", "version": 5, "fingerprint": "fp"}
    old["u/100/5001"] = json.dumps(settled | {"user_type": "MEMBER"}).encode()
    old["u/100/5002"] = json.dumps({"position": [2, 11], "pending_create": True}).encode()
    # A store rebuilt from the links changelog (older ones are rebuilt again on open).
    old["__link_offsets"] = json.dumps({2: 12}).encode()
    old["__rebuilt"] = b"1"
    old.close()
    store = LinkStore(tmp_path)
    link = store.user("100", "5001")
    assert link is not None
    assert (link.receiver_id, link.user_type, link.version, link.fingerprint) == (
        "M1", "MEMBER", 5, "fp",
    )  # fmt: skip
    pending = store.user("100", "5002")
    assert pending is not None and pending.pending is not None
    assert store.offsets() == {2: 12}
    assert store.counts()["users"] == 1
    store.save_offsets({2: 13, 4: 1})
    assert store.offsets() == {2: 13, 4: 1}
    store.close()


def test_user_states_written_with_json_still_load(tmp_path: Path) -> None:
    from tests.unit.worker.test_user_states import command

    cmd = command(2, staff_owner_id="S1")
    old = Rdict(str(tmp_path / "users"))
    old["c/100/5001"] = CODEC.encode(cmd)
    meta = {"latest": [2, 3, 10], "partition": 3, "refs": {"STAFF": "S1"}}
    old["v/100/5001"] = json.dumps(meta).encode()
    old["i/STAFF/100/S1/5001"] = b""
    old["__command_offsets"] = json.dumps({3: 11}).encode()
    old.close()
    states = UserStates(tmp_path, CODEC)
    state = states.get("100", "5001")
    assert state is not None and state.partition == 3
    assert states.offsets() == {3: 11}
    # An older version is still refused against the old row; a newer one moves the index.
    assert not states.apply(CODEC.encode(command(1)), command(1), (3, 12))
    newer = command(3, staff_owner_id="S2")
    assert states.apply(CODEC.encode(newer), newer, (3, 13))
    assert states.referencing("STAFF", "100", "S1") == []
    assert states.referencing("STAFF", "100", "S2") == ["5001"]
    states.close()
