"""A link row written late, behind a newer row of its entity, is followed by the newest row
again, so that compaction keeps the newest.

Kafka compaction keeps the LAST-WRITTEN record per key, not the one with the newest position.
Forcing a real compaction in a test is slow and unreliable (the cleaner works on rolled
segments, on its own schedule), so these tests read what compaction would keep instead: the
last record of each key in the changelog topic. That is the decisive observable; the rebuild
check then gives a worker with an empty data dir a changelog holding only those records.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
from confluent_kafka.admin import AdminClient  # type: ignore[attr-defined]

from adapters.reference import ReceiverMode
from demo.worker import start_worker, stop_worker
from streams.kafka.local import free_port
from streams.kafka.reader import read_to_end
from streams.kafka.topics import delete_topics, design_topics, ensure_topics
from streams.worker.links import LinkStore
from tests.integration.harness import Pipeline, running_pipeline, user_event, wait_for
from tests.integration.worker.test_ownership import owners_of

CLIENT = "late"

#: One changelog record: (partition, offset, key, value).
Record = tuple[int, int, str, bytes]


def changelog(p: Pipeline) -> list[Record]:
    """Every record of the links changelog, in offset order per partition."""
    records = [
        (m.partition(), m.offset(), m.key().decode(), m.value())
        for m in read_to_end(p.bootstrap, p.kafka, [p.topic(p.topics.links_topic)])
        if m.key() is not None and m.value() is not None
    ]
    return sorted(records, key=lambda r: (r[0], r[1]))


def position(record: Record) -> list[int]:
    return list(json.loads(record[3])["position"])


def last_per_key(records: list[Record]) -> dict[str, Record]:
    """What compaction keeps: the last record written for each key."""
    return {record[2]: record for record in records}


def both_own(p: Pipeline) -> bool:
    """Two workers own commands partitions (a slow answer from the group is asked again)."""
    try:
        return owners_of(p) is not None
    except TimeoutError:
        return False


def ready(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/ready", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def compact(p: Pipeline) -> int:
    """Make the changelog hold only the last record per key, on its partition (the topic is
    made again: a compacted topic takes no DeleteRecords); return how many were kept."""
    kept = last_per_key(changelog(p))
    name = p.topic(p.topics.links_topic)
    assert delete_topics(p.bootstrap, p.kafka, [name]) == [name]
    admin = AdminClient({"bootstrap.servers": p.bootstrap})
    wait_for("the changelog to go", lambda: name not in admin.list_topics(timeout=10).topics)
    ensure_topics(p.bootstrap, p.kafka, design_topics(p.topics))
    for partition, _, key, value in sorted(kept.values(), key=lambda r: (r[0], r[1])):
        p.producer.produce(name, key=key.encode(), value=value, partition=partition)
    assert p.producer.flush(30) == 0
    return len(kept)


def rebuilt_rows(p: Pipeline, data: str, keys: list[str]) -> dict[str, dict[str, Any]]:
    """The rows a worker with the empty data dir `data` rebuilds from the changelog."""
    port = free_port()
    env = {**p.env(data), "CONNECTOR_METRICS_PORT": str(port)}
    fresh = start_worker(env, p.workdir / f"{data}.log")
    try:
        wait_for("the fresh worker to be ready", lambda: ready(port), timeout=120)
    finally:
        stop_worker(fresh)
    store = LinkStore(p.workdir / data / p.app_id)
    try:
        return {key: store._get(key) or {} for key in keys}
    finally:
        store.close()


def test_a_row_written_late_behind_a_newer_one_is_followed_by_the_newest_again(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    with running_pipeline(kafka_bootstrap, tmp_path) as p:
        p.add_receiver(CLIENT, ReceiverMode.FULL)
        p.start_worker()
        p.start_more_workers(1)
        wait_for("both workers to own commands partitions", lambda: both_own(p), timeout=120)
        users = [str(7501 + n) for n in range(12)]  # over all six partitions: both owners
        for user in users:
            p.send("UserChanged", user_event(CLIENT, user, 1, first_name="Pat"))
        linked = {user: p.wait_outcome(CLIENT, user, 1)["receiver_id"] for user in users}
        keys = [f"u/{CLIENT}/{user}" for user in users]
        records = changelog(p)
        newest = last_per_key(records)
        # The late writer: a worker that lost the partition delivers each user's pending-create
        # row (an older position) after the LINKED row the new owner wrote.
        late: dict[str, int] = {}
        for key in keys:
            (pending,) = [r for r in records if r[2] == key and "pending" in json.loads(r[3])]
            assert position(pending) < position(newest[key])
            p.producer.produce(
                p.topic(p.topics.links_topic), key=key.encode(), value=pending[3],
                partition=pending[0],
                on_delivery=lambda err, msg, key=key: late.__setitem__(key, msg.offset()),
            )  # fmt: skip
        assert p.producer.flush(30) == 0 and len(late) == len(keys)

        def repaired() -> bool:
            last = last_per_key(changelog(p))
            return all(position(last[key]) == position(newest[key]) for key in keys)

        # Sooner than `LinkFollower.ORPHAN_AFTER`: by the owners, not by the fallback.
        wait_for("the newest row of every user to be the last one again", repaired, timeout=25)
        # Exactly one repair per late row: not one per worker, and a repair (a row at the
        # stored position) never sets off another.
        after = changelog(p)
        for key in keys:
            again = [r for r in after if r[2] == key and r[1] > late[key]]
            assert [position(r) for r in again] == [position(newest[key])], (key, again)
        p.stop_worker()
        for process in p.more_workers:  # every worker stopped before the changelog is remade
            stop_worker(process)

        # What compaction keeps, given to a worker with an empty data dir.
        assert compact(p) >= len(keys)
        rows = rebuilt_rows(p, "fresh", keys)
        for user, key in zip(users, keys, strict=True):
            assert rows[key].get("receiver_id") == linked[user], rows[key]
            assert "pending" not in rows[key] and rows[key]["version"] == 1
