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
