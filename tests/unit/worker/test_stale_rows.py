"""A changelog row older than the stored one, read after it: the follower keeps its key until
a row at least as new follows (a repair, or a newer row); a repeat changes nothing."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from streams.core.model import Status
from streams.kafka.clients import PRODUCER_DEFAULTS
from streams.settings import KafkaSettings
from streams.worker.follower import LinkFollower
from streams.worker.links import LinkStore, Taken, entity_key, taken
from tests.unit.worker.test_own_writes import FakeTopic, outcome, publisher

KEY = "u/100/5001"


@pytest.mark.parametrize(
    ("stored", "position", "verdict"),
    [
        (None, [0, 5], Taken.STORED),  # nothing stored yet
        ([0, 5], [0, 9], Taken.STORED),
        ([0, 9], [0, 9], Taken.SAME),  # read twice, or a repair
        ([0, 9], [0, 5], Taken.STALE),  # written late, behind the newer one
    ],
)
def test_a_row_is_stored_only_when_newer_and_stale_only_when_older(
    stored: list[int] | None, position: list[int], verdict: Taken
) -> None:
    assert taken(stored, position) is verdict
    assert bool(verdict) is (verdict is Taken.STORED)  # `store_row` was a bool: it still reads so


def rows(tmp_path: Path) -> tuple[tuple[str, bytes], tuple[str, bytes]]:
    """The pending-create row (older) and the linked row (newer) of one user."""
    writer = LinkStore(tmp_path / "writer")
    pending = writer.apply(outcome(1, Status.PENDING_CREATE), (0, 5))
    linked = writer.apply(outcome(1, Status.LINKED, "P1"), (0, 6))
    writer.close()
    assert pending and linked
    return pending, linked


def follower(store: LinkStore) -> LinkFollower:
    """A follower fed by hand (`_take`): never started, so it reaches no broker."""
    return LinkFollower(store, "127.0.0.1:9", KafkaSettings(), "links")


def test_store_row_says_what_it_made_of_a_row_and_keeps_the_newest(tmp_path: Path) -> None:
    pending, linked = rows(tmp_path)
    store = LinkStore(tmp_path / "reader")
    assert store.store_row(*linked) is Taken.STORED
    assert store.store_row(*pending) is Taken.STALE
    assert store.store_row(*linked) is Taken.SAME
    assert store.row(KEY) == linked[1]  # what a repair writes: the stored row, as it came
    link = store.user("100", "5001")
    assert link is not None and (link.receiver_id, link.pending) == ("P1", None)
    store.close()


def test_a_late_older_row_is_kept_for_a_repair_and_the_repair_sets_off_nothing(
    tmp_path: Path,
) -> None:
    pending, linked = rows(tmp_path)
    store = LinkStore(tmp_path / "reader")
    reader = follower(store)
    reader._take(linked[0].encode(), linked[1], (2, 10))
    assert reader.behind() == {}
    reader._take(pending[0].encode(), pending[1], (2, 11))  # late, older
    assert reader.behind() == {KEY: 2}  # the stored row goes again on changelog partition 2
    reader.repairing(KEY)  # the owner writes the stored row again...
    reader._take(linked[0].encode(), linked[1], (2, 12))  # ...and reads it back: the same
    assert reader.behind() == {}
    reader._take(linked[0].encode(), linked[1], (2, 13))  # another worker's repair: the same
    assert reader.behind() == {}
    store.close()


def test_a_late_row_followed_by_a_repair_or_a_newer_row_needs_no_repair(tmp_path: Path) -> None:
    """A store rebuilt from the changelog meets late rows that were repaired already: only a
    key whose last row is the older one is left for a repair."""
    pending, linked = rows(tmp_path)
    writer = LinkStore(tmp_path / "w2")
    writer.apply(outcome(1, Status.LINKED, "P1"), (0, 6))
    updated = writer.apply(outcome(2, Status.LINKED, "P1"), (0, 8))
    writer.close()
    assert updated
    store = LinkStore(tmp_path / "reader")
    assert store.rebuilding
    reader = follower(store)
    for offset, (key, value) in enumerate([linked, pending, linked, pending, updated]):
        reader._take(key.encode(), value, (0, offset))
    assert reader.behind() == {}  # the last row of the key is the newest
    reader._take(pending[0].encode(), pending[1], (0, 5))
    assert reader.behind() == {KEY: 0}
    store.close()


def test_a_row_written_here_after_a_late_one_leaves_nothing_to_repair(tmp_path: Path) -> None:
    pending, _ = rows(tmp_path)
    store = LinkStore(tmp_path / "reader")
    reader = follower(store)
    own = store.apply_own(outcome(1, Status.LINKED, "P1"), (0, 6))
    assert own is not None
    reader._take(pending[0].encode(), pending[1], (1, 3))  # another worker's, late
    assert reader.behind() == {KEY: 1}
    store.mark_own((1, 4))  # this worker's newest row, written after it
    reader._take(own[0].encode(), own[1], (1, 4))
    assert reader.behind() == {}
    store.close()


def test_a_restart_reads_again_from_the_first_late_row_not_repaired(tmp_path: Path) -> None:
    pending, linked = rows(tmp_path)
    store = LinkStore(tmp_path / "reader")
    reader = follower(store)
    reader._take(linked[0].encode(), linked[1], (0, 10))
    reader._take(pending[0].encode(), pending[1], (0, 11))
    reader._positions = {0: 40, 1: 7}  # read on past it
    with reader._lock:
        assert reader._resume_at() == {0: 11, 1: 7}
    reader.repairing(KEY)
    with reader._lock:
        assert reader._resume_at() == {0: 40, 1: 7}
    store.close()


def test_a_store_key_names_the_entity_its_commands_are_keyed_by() -> None:
    assert entity_key("u/100/5001") == {"client_id": "100", "entity": "USER", "intouch_id": "5001"}
    assert entity_key("l/c1/a/b")["entity"] == "LEAD_SOURCE"
    assert entity_key("s/c1/9")["intouch_id"] == "9"


def test_the_owner_of_a_row_is_found_on_the_partition_the_producer_puts_its_commands(
    tmp_path: Path,
) -> None:
    """`Publisher.partition_of` against librdkafka's own partitioner (its mock cluster, in
    process: no broker), configured as every producer of ours."""
    from confluent_kafka import Producer

    producer = Producer({**PRODUCER_DEFAULTS, "test.mock.num.brokers": 1})
    pub = publisher(FakeTopic(None), tmp_path)
    placed: dict[str, int] = {}
    keys = [f"u/c{n % 3}/{n}" for n in range(60)] + ["s/c1/9", "l/c1/web"]
    for key in keys:
        producer.produce(
            "commands", key=pub.key_of(entity_key(key)),
            on_delivery=lambda _, message, key=key: placed.__setitem__(key, message.partition()),
        )  # fmt: skip
    assert producer.flush(30) == 0
    partitions = len(producer.list_topics("commands", timeout=10).topics["commands"].partitions)
    assert len(set(placed.values())) == partitions > 1
    assert {key: pub.partition_of(entity_key(key), partitions) for key in keys} == placed


def test_the_owner_repairs_at_once_and_another_worker_only_when_nobody_did(
    tmp_path: Path,
) -> None:
    pending, linked = rows(tmp_path)
    store = LinkStore(tmp_path / "reader")
    reader = follower(store)
    reader._take(linked[0].encode(), linked[1], (2, 10))
    reader._take(pending[0].encode(), pending[1], (2, 11))
    now = time.monotonic()
    assert reader.due_repairs(lambda key: key == KEY, now) == {KEY: 2}
    assert reader.due_repairs(lambda key: False, now) == {}  # not this worker's to repair
    later = now + LinkFollower.ORPHAN_AFTER + 1
    assert reader.due_repairs(lambda key: False, later) == {KEY: 2}  # nobody did
    reader._take(linked[0].encode(), linked[1], (2, 12))  # somebody did
    assert reader.due_repairs(lambda key: False, later) == {}
    store.close()
