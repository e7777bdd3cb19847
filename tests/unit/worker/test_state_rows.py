"""User states carried by link rows, and the bounded check of an assignment's users."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

from streams.core.model import Status
from streams.worker.links import LinkStore
from streams.worker.references import UserStates, state_of
from streams.worker.replanner import Replanner
from tests.unit.worker.test_own_writes import outcome
from tests.unit.worker.test_user_states import CODEC, command


def user_state(version: int, position: tuple[int, int], intouch_id: str = "5001", **user: Any):  # type: ignore[no-untyped-def]
    cmd = command(version, **user) | {"intouch_id": intouch_id}
    cmd["user"] = cmd["user"] | {"intouch_id": intouch_id}
    return state_of(CODEC.encode(cmd), cmd, position)


def test_a_row_keeps_the_latest_command_whatever_order_outcomes_come_in(tmp_path: Path) -> None:
    writer, reader = LinkStore(tmp_path / "w"), LinkStore(tmp_path / "r")
    states = UserStates(tmp_path / "s", CODEC)
    reader.on_state = states.keep
    newer = writer.apply(outcome(3, Status.LINKED, "P1"), (0, 5), user_state(3, (1, 30)))
    # A stale command (older version) runs later: its outcome is newer, its state is not.
    stale = writer.apply(outcome(2, Status.SKIPPED), (0, 6), user_state(2, (1, 31)))
    assert newer and stale
    assert reader.store_row(*stale)
    kept = states.get("100", "5001")
    assert kept is not None and kept.command["version"] == 3 and kept.partition == 1
    assert not reader.store_row(*newer)  # older row: no state from it either
    assert states.get("100", "5001").command["version"] == 3  # type: ignore[union-attr]
    for store in (writer, reader):
        store.close()
    states.close()


def test_only_the_users_that_name_a_reference_are_indexed_by_partition(tmp_path: Path) -> None:
    states = UserStates(tmp_path, CODEC)
    for n in range(2500):  # more than one batch of the lazy read
        states.keep(user_state(1, (1, n), f"u{n}", staff_owner_id="S1" if n % 2 else None))
    states.keep(user_state(1, (2, 0), "other", lead_source_id="L1"))
    found = list(states.with_references(1))
    assert len(found) == 1250 and len({i for _, i, _ in found}) == 1250
    assert all(ref.refs == {"STAFF": "S1"} for _, _, ref in found)
    # A user that drops its owner leaves the index; one that moves partition moves with it.
    states.keep(user_state(2, (1, 9999), "u1"))
    states.keep(user_state(2, (2, 5), "u3", staff_owner_id="S1"))
    assert {i for _, i, _ in states.with_references(1)} == {i for _, i, _ in found} - {"u1", "u3"}
    assert {i for _, i, _ in states.with_references(2)} == {"other", "u3"}
    states.close()


def test_an_assignment_checks_only_users_behind_their_links(tmp_path: Path) -> None:
    links, states = LinkStore(tmp_path / "l"), UserStates(tmp_path / "s", CODEC)
    staff = outcome(1, Status.LINKED, "R9") | {"entity": "STAFF", "intouch_id": "S1"}
    links.apply(staff, (0, 1))
    carried_old = command(1, staff_owner_id="S1")
    carried_now = command(1, staff_owner_id="S1") | {"staff_owner_receiver_id": "R9"}
    users = (("behind", carried_old), ("current", carried_now), ("too", carried_old))
    for intouch_id, cmd in users:  # "too" has the same index entry as "behind"
        cmd = cmd | {"intouch_id": intouch_id}
        states.keep(state_of(CODEC.encode(cmd), cmd, (4, 1)))
    replanner = Replanner(
        SimpleNamespace(links=links),  # type: ignore[arg-type]
        states,
        owns=lambda _: True,
        is_open=lambda: False,
    )
    assert replanner.check_all([4]) == 2
    assert replanner._due == {("100", "behind"), ("100", "too")}
    assert replanner.check_all([3]) == 0  # not this partition's users
    links.close()
    states.close()
