"""Link rows from the changelog: late, repeated or older rows never regress a link."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from rocksdict import Rdict

from streams.core.model import Status
from streams.worker.links import LinkStore
from streams.worker.rocks import Writes
from tests.unit.worker.test_own_writes import outcome


def staff(version: int, status: Status, receiver_id: str | None) -> dict[str, Any]:
    return outcome(version, status, receiver_id) | {"entity": "STAFF", "intouch_id": "3001"}


def rows(store: LinkStore) -> dict[str, Any]:
    """Every row and index entry of the store (not the offsets), gathered ones written."""
    with store._lock:
        store._write_gathered()
        return {k: v for k, v in store._db.items() if not k.startswith("__")}


def test_a_row_folded_by_one_store_is_the_same_row_in_another(tmp_path: Path) -> None:
    writer, reader = LinkStore(tmp_path / "w"), LinkStore(tmp_path / "r")
    for n, (version, status, rid) in enumerate(
        [(1, Status.PENDING_CREATE, None), (1, Status.LINKED, "P1"), (2, Status.LINKED, "P2")]
    ):
        row = writer.apply_own(outcome(version, status, rid), (3, 10 + n))
        assert row is not None
        assert reader.store_row(*row)
    assert rows(reader) == rows(writer)
    assert reader.owner_of("100", "P2") == "5001" and reader.owner_of("100", "P1") is None
    writer.close()
    reader.close()


def test_older_repeated_and_out_of_order_rows_do_not_regress(tmp_path: Path) -> None:
    writer, reader = LinkStore(tmp_path / "w"), LinkStore(tmp_path / "r")
    pending = writer.apply(outcome(1, Status.PENDING_CREATE), (0, 5))
    linked = writer.apply(outcome(1, Status.LINKED, "P1"), (0, 6))
    moved = writer.apply(outcome(2, Status.LINKED, "P2"), (0, 9))
    assert pending and linked and moved
    assert reader.store_row(*moved)
    assert not reader.store_row(*linked)  # older, after the newer one
    assert not reader.store_row(*pending)
    assert not reader.store_row(*moved)  # twice
    link = reader.user("100", "5001")
    assert link is not None
    assert (link.receiver_id, link.version, link.pending) == ("P2", 2, None)
    assert reader.owner_of("100", "P2") == "5001" and reader.owner_of("100", "P1") is None
    # The outcome itself, folded again or late, changes nothing either.
    assert reader.apply(outcome(1, Status.LINKED, "P1"), (0, 6)) is None
    writer.close()
    reader.close()


def test_a_not_applied_outcome_voids_the_marker_before_it(tmp_path: Path) -> None:
    store = LinkStore(tmp_path)
    store.apply(outcome(1, Status.LINKED, "P1"), (0, 5))
    store.apply(outcome(2, Status.PENDING_CREATE), (0, 6))
    marked = store.user("100", "5001")
    assert marked is not None and marked.pending is not None
    store.apply(outcome(2, Status.NOT_APPLIED), (0, 7))
    link = store.user("100", "5001")
    assert link is not None and link.pending is None
    assert (link.receiver_id, link.version) == ("P1", 1)  # the applied version, as before
    store.close()


def test_a_marker_counts_from_when_this_store_took_it(tmp_path: Path) -> None:
    writer = LinkStore(tmp_path / "w")
    marked = writer.apply(outcome(1, Status.PENDING_CREATE), (0, 5))
    assert marked is not None
    reader = LinkStore(tmp_path / "r")
    opened = time.monotonic()
    while time.monotonic() == opened:  # the clock moves on past the store's opening
        pass
    assert reader.store_row(*marked)
    taken = time.monotonic()
    link = reader.user("100", "5001")
    assert link is not None and link.pending is not None and link.pending.noticed is not None
    assert opened < link.pending.noticed <= taken  # when taken, not the marker's own time
    settled = writer.apply(outcome(1, Status.LINKED, "P1"), (0, 6))
    assert settled is not None and reader.store_row(*settled)
    assert reader._noticed == {}
    reader.close()
    writer.close()
    # A marker found stored when the store opens counts from the opening.
    kept = LinkStore(tmp_path / "k")
    kept.apply(outcome(1, Status.PENDING_CREATE), (0, 5))
    kept.rebuilt()
    kept.close()
    again = LinkStore(tmp_path / "k")
    found = again.user("100", "5001")
    assert found is not None and found.pending is not None
    assert found.pending.noticed == again._opened
    again.close()


def test_a_marker_repeating_a_call_in_doubt_keeps_the_first_command(tmp_path: Path) -> None:
    store = LinkStore(tmp_path)

    def marker(version: int, call: str, position: int) -> Any:
        store.apply(outcome(version, Status.PENDING_CREATE) | {"call": call}, (0, position))
        link = store.user("100", "5001")
        assert link is not None and link.pending is not None
        return link.pending

    assert marker(1, "create_prospect", 5).command_id == "c1"
    repeated = marker(2, "create_prospect", 6)  # v2 repeats it blind: v1's key again
    assert (repeated.command_id, repeated.call) == ("c1", "create_prospect")
    assert marker(3, "create_member", 7).command_id == "c3"  # another call: its own
    store.apply(outcome(3, Status.NOT_APPLIED), (0, 8))
    assert marker(4, "create_member", 9).command_id == "c4"  # no doubt left before it
    store.close()


def test_a_staff_row_that_moves_the_link_plans_its_users_again(tmp_path: Path) -> None:
    writer, reader = LinkStore(tmp_path / "w"), LinkStore(tmp_path / "r")
    reader.rebuilt()  # caught up with the changelog once
    told: list[tuple[str, str, str]] = []
    reader.on_reference_change = lambda *ref: told.append(ref)
    first = writer.apply(staff(1, Status.LINKED, "S1"), (1, 1))
    same = writer.apply(staff(2, Status.LINKED, "S1"), (1, 2))
    gone = writer.apply(staff(3, Status.UNLINKED, None), (1, 3))
    assert first and same and gone
    for row in (first, same, gone):
        reader.store_row(*row)
    assert told == [("STAFF", "100", "3001"), ("STAFF", "100", "3001")]  # linked, unlinked
    assert reader.staff("100", "3001") is not None
    assert reader.staff("100", "3001").receiver_id is None  # type: ignore[union-attr]
    writer.close()
    reader.close()


def test_a_store_being_rebuilt_plans_no_user_again(tmp_path: Path) -> None:
    """Until `rebuilt`, nothing is owned yet: the first assignment checks every user."""
    writer, reader = LinkStore(tmp_path / "w"), LinkStore(tmp_path / "r")
    assert reader.rebuilding
    told: list[tuple[str, str, str]] = []
    reader.on_reference_change = lambda *ref: told.append(ref)
    linked = writer.apply(staff(1, Status.LINKED, "S1"), (1, 1))
    moved = writer.apply(staff(2, Status.LINKED, "S2"), (1, 2))
    assert linked and moved
    reader.store_row(*linked)
    assert told == []
    assert reader.staff("100", "3001").receiver_id == "S1"  # type: ignore[union-attr]
    reader.rebuilt()
    reader.store_row(*moved)
    assert told == [("STAFF", "100", "3001")]
    writer.close()
    reader.close()


def test_a_store_being_rebuilt_gathers_rows_and_reads_through_them(tmp_path: Path) -> None:
    """Rows taken while rebuilding are written together: until then the store answers from
    them, an older row still changes nothing, and `rebuilt` makes them durable."""
    writer, reader = LinkStore(tmp_path / "w"), LinkStore(tmp_path / "r")
    writer.rebuilt()
    pending = writer.apply(outcome(1, Status.PENDING_CREATE), (0, 5))
    linked = writer.apply(outcome(1, Status.LINKED, "P1"), (0, 6))
    moved = writer.apply(outcome(2, Status.LINKED, "P2"), (0, 9))
    assert pending and linked and moved
    assert reader.store_row(*pending) and reader.store_row(*moved)
    assert not reader.store_row(*linked)  # older than the gathered one
    with reader._lock:
        assert reader._db.get("u/100/5001") is None  # not written yet
    link = reader.user("100", "5001")
    assert link is not None and (link.receiver_id, link.version) == ("P2", 2)
    assert reader.owner_of("100", "P2") == "5001"
    reader.rebuilt()
    reader.close()
    again = LinkStore(tmp_path / "r")
    assert not again.rebuilding
    assert rows(again) == rows(writer)
    assert again.owner_of("100", "P2") == "5001" and again.owner_of("100", "P1") is None
    again.close()
    writer.close()


def test_a_rebuilding_store_writes_its_rows_with_the_offsets_and_when_full(
    tmp_path: Path,
) -> None:
    store, writer = LinkStore(tmp_path / "r"), LinkStore(tmp_path / "w")
    row = writer.apply(outcome(1, Status.LINKED, "P1"), (0, 1))
    assert row is not None and store.store_row(*row)
    store.save_offsets({0: 2})
    with store._lock:
        assert store._db.get(row[0]) == row[1]  # the offsets never run ahead of the rows
    for n in range(Writes.LIMIT // 2):  # two entries a user: the row and its owner
        other = writer.apply({**outcome(1, Status.LINKED, f"Q{n}"), "intouch_id": f"u{n}"}, (1, n))
        assert other is not None and store.store_row(*other)
    with store._lock:
        assert store._db.get("u/100/u0") is not None  # written once LIMIT entries gathered
    store.close()
    writer.close()


def test_an_unreadable_row_is_refused(tmp_path: Path) -> None:
    store = LinkStore(tmp_path)
    for key, value in (("u/1/2", b"not json"), ("r/1/P1", b'{"position": [0, 1]}')):
        try:
            store.store_row(key, value)
        except ValueError:
            continue
        raise AssertionError(f"{key} {value!r} was taken")
    assert rows(store) == {}
    store.close()


def test_a_store_made_from_the_outcomes_topic_is_rebuilt(tmp_path: Path) -> None:
    old = Rdict(str(tmp_path / "links"))
    old["u/100/5001"] = json.dumps({"receiver_id": "P1", "position": [0, 3]}).encode()
    old["__outcome_offsets"] = json.dumps({"0": 4}).encode()
    old.close()
    store = LinkStore(tmp_path)
    assert store.user("100", "5001") is None and store.offsets() == {}
    store.save_offsets({0: 1})
    store.close()
    unfinished = LinkStore(tmp_path)  # never caught up: rebuilt again
    assert unfinished.offsets() == {} and unfinished.rebuilding
    unfinished.save_offsets({0: 1})
    unfinished.rebuilt()
    unfinished.close()
    again = LinkStore(tmp_path)  # caught up once: kept
    assert again.offsets() == {0: 1} and not again.rebuilding
    again.close()


def test_writes_from_an_empty_store_read_only_the_keys_they_were_given(tmp_path: Path) -> None:
    db = Rdict(str(tmp_path / "db"))
    writes = Writes(db, from_empty=True)
    db["behind-its-back"] = b"x"  # not through `writes`: it does not ask RocksDB for it
    assert writes.get("behind-its-back") is None
    writes.put("u/1/2", b"row")
    assert writes.get("u/1/2") == b"row"  # gathered
    writes.write()
    assert writes.get("u/1/2") == b"row"  # written, and read back from RocksDB
    writes.delete("u/1/2")
    writes.write()
    assert writes.get("u/1/2") is None
    assert Writes(db).get("behind-its-back") == b"x"  # the everyday kind reads everything
    db.close()


def test_an_older_row_after_the_gathered_rows_were_written_changes_nothing(
    tmp_path: Path,
) -> None:
    writer, reader = LinkStore(tmp_path / "w"), LinkStore(tmp_path / "r")
    linked = writer.apply(outcome(1, Status.LINKED, "P1"), (0, 6))
    moved = writer.apply(outcome(2, Status.LINKED, "P2"), (0, 9))
    assert linked and moved and reader.store_row(*moved)
    reader.save_offsets({0: 10})  # writes the gathered rows
    assert not reader.store_row(*linked)
    assert reader.user("100", "5001").receiver_id == "P2"  # type: ignore[union-attr]
    writer.close()
    reader.close()


def test_a_store_being_rebuilt_compacts_only_once_rebuilt(tmp_path: Path) -> None:
    def level0_files() -> int:
        with store._lock:
            return int(store._db.property_int_value("rocksdb.num-files-at-level0") or 0)

    store, writer = LinkStore(tmp_path / "r"), LinkStore(tmp_path / "w")
    for n in range(6):  # six level-0 files: past the trigger (4) of a compaction
        row = writer.apply({**outcome(1, Status.LINKED, f"P{n}"), "intouch_id": f"u{n}"}, (0, n))
        assert row is not None and store.store_row(*row)
        with store._lock:
            store._write_gathered()
            store._db.flush()
    assert level0_files() == 6
    store.rebuilt()
    deadline = time.monotonic() + 30
    while level0_files() >= 4 and time.monotonic() < deadline:
        time.sleep(0.05)  # waiting on RocksDB's background compaction, with a deadline
    assert level0_files() < 4
    assert store.user("100", "u5").receiver_id == "P5"  # type: ignore[union-attr]
    store.close()
    writer.close()


def test_writes_of_a_store_rebuilt_from_empty_read_back_only_what_they_were_given(
    tmp_path: Path,
) -> None:
    db = Rdict(str(tmp_path / "db"))
    db["before"] = b"not seen by these writes"  # a store rebuilt from empty has no such key
    writes = Writes(db, from_empty=True)
    writes.put("row", b"1")
    writes.put("index", b"", read=False)
    assert writes.get("row") == b"1"
    writes.write()
    assert db.get("index") == b"" and writes.get("row") == b"1"  # written: read from RocksDB
    assert writes.get("before") is None  # never given: RocksDB not asked
    writes.put("row", b"2")
    writes.delete("row")
    assert writes.get("row") is None and not writes.full()
    for n in range(Writes.LIMIT - 2):
        writes.put(f"i/{n}", b"", read=False)
    assert writes.full()  # index entries count, though not gathered for reading
    writes.write()
    assert db.get("row") is None and db.get(f"i/{Writes.LIMIT - 3}") == b""
    db.close()
