"""How rows are kept: JSON that reads back, and a store of an older format rebuilt, never read."""

from __future__ import annotations

import json
from pathlib import Path

from rocksdict import Rdict

from streams.avro.codec import default_codecs
from streams.core.model import Status
from streams.worker.links import LinkStore
from streams.worker.references import UserStates
from streams.worker.rows import FORMAT, dump_row, load_row
from tests.unit.worker.test_own_writes import outcome
from tests.unit.worker.test_state_rows import user_state
from tests.unit.worker.test_user_states import command

CODEC = default_codecs()["Command"]


def test_rows_round_trip_and_read_what_json_wrote() -> None:
    row = {"position": [3, 12], "pending": {"call": "create", "at": 1.5}, "name": "Åsa"}
    assert load_row(dump_row(row)) == row == load_row(json.dumps(row).encode())
    assert json.loads(dump_row({3: 13})) == {"3": 13}


def format_1(path: Path) -> None:
    """A data dir as format 1 left it: a rebuilt link store, the user's command and what it
    names kept apart."""
    old = Rdict(str(path / "links"))
    settled = {"position": [2, 10], "receiver_id": "M1", "version": 5, "fingerprint": "fp"}
    old["u/100/5001"] = json.dumps(settled | {"user_type": "MEMBER"}).encode()
    old["r/100/M1"] = b"5001"
    old["__link_offsets"] = json.dumps({2: 12}).encode()
    old["__rebuilt"] = b"1"
    old.close()
    users = Rdict(str(path / "users"))
    users["c/100/5001"] = CODEC.encode(command(2, staff_owner_id="S1"))
    users["v/100/5001"] = json.dumps({"latest": [2, 3, 10], "partition": 3, "refs": {}}).encode()
    users["i/STAFF/100/S1/5001"] = b""
    users["__partition_index"] = b"1"
    users["__command_offsets"] = json.dumps({3: 11}).encode()
    users.close()


def test_a_data_dir_of_an_older_format_is_rebuilt_not_read(tmp_path: Path) -> None:
    format_1(tmp_path)
    store, states = LinkStore(tmp_path), UserStates(tmp_path, CODEC)
    assert store.rebuilding  # as the worker does: rebuild both from the changelog
    states.rebuild()
    assert store.user("100", "5001") is None and store.owner_of("100", "M1") is None
    assert store.offsets() == {} and states.offsets() == {}
    assert states.get("100", "5001") is None and states.referencing("STAFF", "100", "S1") == []
    writer = LinkStore(tmp_path / "writer")
    row = writer.apply(outcome(1, Status.LINKED, "P1"), (0, 4), user_state(1, (3, 20)))
    assert row is not None
    store.on_state = states.keep
    assert store.store_row(*row)
    states.rebuilt()
    store.rebuilt()
    for opened in (store, states, writer):
        opened.close()
    # Rebuilt in this format: kept when opened again.
    store, states = LinkStore(tmp_path), UserStates(tmp_path, CODEC)
    assert not store.rebuilding
    with store._lock:
        assert store._db["__rebuilt"] == FORMAT
    link = store.user("100", "5001")
    assert link is not None and link.receiver_id == "P1"
    state = states.get("100", "5001")
    assert state is not None and state.command["version"] == 1 and state.partition == 3
    store.close()
    states.close()


def test_user_states_of_an_older_format_alone_are_started_over(tmp_path: Path) -> None:
    format_1(tmp_path)
    states = UserStates(tmp_path, CODEC)
    assert states.empty()
    assert states.get("100", "5001") is None and states.referencing("STAFF", "100", "S1") == []
    states.close()
