"""User states: the latest command per user, and who references which staff and lead source."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from streams.avro.codec import default_codecs
from streams.worker.references import UserStates
from tests.integration.harness import NOW, user_event

CODEC = default_codecs()["Command"]


def command(version: int, **user: Any) -> dict[str, Any]:
    return {
        "command_id": f"c{version}", "kind": "UPSERT_PROSPECT", "client_id": "100",
        "club_id": "7", "intouch_id": "5001", "version": version, "cause_event_id": "e",
        "issued_at": NOW, "fingerprint": f"fp{version}", "staff_owner_receiver_id": None,
        "lead_source_receiver_id": None, "user": user_event("100", "5001", version, **user),
        "staff": None, "lead_source": None, "replay_id": None,
    }  # fmt: skip


def keep(states: UserStates, cmd: dict[str, Any], position: tuple[int, int]) -> bool:
    return states.apply(CODEC.encode(cmd), cmd, position)


def test_the_latest_version_is_kept_and_the_index_follows_it(tmp_path: Path) -> None:
    states = UserStates(tmp_path, CODEC)
    assert keep(states, command(2, staff_owner_id="S1", lead_source_id="L1"), (3, 10))
    assert not keep(states, command(1, staff_owner_id="S9"), (3, 11))  # an older version
    assert states.referencing("STAFF", "100", "S1") == ["5001"]
    assert states.referencing("STAFF", "100", "S9") == []
    # The same version planned again later in the log replaces it; the owner moved.
    assert keep(states, command(2, staff_owner_id="S2", lead_source_id="L1"), (3, 12))
    assert states.referencing("STAFF", "100", "S1") == []
    assert states.referencing("STAFF", "100", "S2") == ["5001"]
    assert states.referencing("LEAD_SOURCE", "100", "L1") == ["5001"]
    state = states.get("100", "5001")
    assert state is not None and state.partition == 3
    assert state.user["staff_owner_id"] == "S2"
    assert list(states.users()) == [("100", "5001")]
    states.close()
    # Durable: a reopened store has it, and where the follower stopped.
    again = UserStates(tmp_path, CODEC)
    again.save_offsets({3: 13})
    assert again.referencing("STAFF", "100", "S2") == ["5001"]
    assert again.offsets() == {3: 13}
    again.close()


def test_states_kept_while_rebuilding_are_read_through_and_durable_once_rebuilt(
    tmp_path: Path,
) -> None:
    states = UserStates(tmp_path, CODEC)
    states.rebuild()
    assert keep(states, command(2, staff_owner_id="S1"), (3, 10))
    assert not keep(states, command(1, staff_owner_id="S9"), (3, 11))  # older than gathered
    with states._lock:
        assert states._db.get("v/100/5001") is None  # gathered, not written yet
    state = states.get("100", "5001")
    assert state is not None and state.user["staff_owner_id"] == "S1"
    assert keep(states, command(3, staff_owner_id="S2"), (3, 12))
    assert [i for _, i, _ in states.with_references(3)] == ["5001"]
    states.rebuilt()
    states.close()
    again = UserStates(tmp_path, CODEC)
    assert again.referencing("STAFF", "100", "S1") == []
    assert again.referencing("STAFF", "100", "S2") == ["5001"]
    again.close()


def entries(states: UserStates) -> dict[str, bytes]:
    """Every entry of the store but its marks (gathered ones written)."""
    with states._lock:
        states._write_gathered()
        return {k: bytes(v) for k, v in states._db.items() if not k.startswith("__")}


def test_a_state_is_one_entry_that_reads_back_as_it_was_kept(tmp_path: Path) -> None:
    from streams.worker.references import state_of

    cmd = command(4, staff_owner_id="S1", lead_source_id="L1", first_name="two\nlines")
    raw = CODEC.encode(cmd)
    assert b"\n" in raw  # the command's bytes may hold the separator of the entry's lines
    states = UserStates(tmp_path, CODEC)
    assert states.keep(state_of(raw, cmd, (3, 10)))  # as a link row carries it (base64)
    state = states.get("100", "5001")
    assert state is not None and state.partition == 3 and state.command == CODEC.decode(raw)
    assert states.state("100", "5001") == state_of(raw, cmd, (3, 10))
    assert sorted(entries(states)) == [
        "i/LEAD_SOURCE/100/L1/5001", "i/STAFF/100/S1/5001", "p/3/100/5001", "v/100/5001",
    ]  # fmt: skip
    (_, _, ref), *_ = states.with_references(3)
    assert ref.refs == {"STAFF": "S1", "LEAD_SOURCE": "L1"} and ref.carried == (None, None)
    # The same state from the commands topic (raw) is no newer: refused.
    assert not states.apply(raw, cmd, (3, 10))
    states.close()


def test_a_user_taken_twice_while_rebuilding_keeps_only_its_latest_entries(tmp_path: Path) -> None:
    """A rebuild from empty reads no key it has not written: a user seen a second time (an
    uncompacted changelog), in the same write or after it, moves its indexes all the same."""
    states = UserStates(tmp_path, CODEC)
    states.rebuild()
    assert keep(states, command(1, staff_owner_id="S1", lead_source_id="L1"), (2, 1))
    assert keep(states, command(2, staff_owner_id="S2"), (2, 2))  # same write
    first = entries(states)  # written
    assert keep(states, command(3, lead_source_id="L3"), (5, 3))  # after the write
    assert not keep(states, command(2, staff_owner_id="S9"), (2, 4))
    states.rebuilt()
    assert sorted(first) == ["i/STAFF/100/S2/5001", "p/2/100/5001", "v/100/5001"]
    assert sorted(entries(states)) == ["i/LEAD_SOURCE/100/L3/5001", "p/5/100/5001", "v/100/5001"]
    state = states.get("100", "5001")
    assert state is not None and state.partition == 5 and state.command["version"] == 3
    states.close()


def test_a_state_from_a_link_row_is_kept_as_the_same_one_from_the_commands_topic(
    tmp_path: Path,
) -> None:
    """A rebuilt worker holds the very entries of one that followed the commands."""
    from streams.worker.references import state_of

    cmd = command(2, staff_owner_id="S1", lead_source_id="L1")
    raw = CODEC.encode(cmd)
    from_row = UserStates(tmp_path / "row", CODEC)
    from_topic = UserStates(tmp_path / "topic", CODEC)
    assert from_row.keep(state_of(raw, cmd, (3, 11)))  # base64 in the row
    assert from_topic.apply(raw, cmd, (3, 11))
    assert entries(from_row) == entries(from_topic)
    for states in (from_row, from_topic):
        states.close()
