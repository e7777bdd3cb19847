"""Link state from the compacted links changelog: a worker with an empty data dir rebuilds
exactly what folding every outcome gives, without reading an outcome; an outcome whose row
never reached the changelog is run again by the next owner without a second create."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from confluent_kafka import OFFSET_END, TopicPartition
from confluent_kafka.admin import AdminClient  # type: ignore[attr-defined]

from adapters.reference import ReceiverMode
from demo.worker import stop_worker
from streams.avro.codec import default_codecs
from streams.core.model import FINAL_STATUSES, Status
from streams.kafka.local import free_port
from streams.kafka.reader import read_to_end
from streams.kafka.topics import delete_topics, design_topics, ensure_topics
from streams.worker.links import LinkStore
from streams.worker.references import UserStates
from tests.integration.harness import (
    Pipeline,
    connector,
    lead_source_event,
    records_of,
    running_pipeline,
    staff_event,
    user_event,
    wait_for,
)

CLIENT = "rows"


def ready(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/ready", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def store_items(path: Path) -> dict[str, Any]:
    """Every row and index entry of a link store (not where its reader stopped)."""
    store = LinkStore(path)
    try:
        with store._lock:
            return {
                k: json.loads(v) if k[:2] in ("u/", "s/", "l/") else v
                for k, v in store._db.items()
                if not k.startswith("__")
            }
    finally:
        store.close()


def without_state(row: Any) -> Any:
    return {k: v for k, v in row.items() if k != "state"} if isinstance(row, dict) else row


def user_states(path: Path) -> dict[str, Any]:
    """Every user state and index entry (not where the command follower stopped)."""
    states = UserStates(path, default_codecs()["Command"])
    try:
        with states._lock:
            return {k: v for k, v in states._db.items() if not k.startswith("__")}
    finally:
        states.close()


def truncate(p: Pipeline, base: str) -> int:
    """Delete every record of a topic (as retention would); return how many there were."""
    topic = p.topic(base)
    records = list(read_to_end(p.bootstrap, p.kafka, [topic]))
    admin = AdminClient({"bootstrap.servers": p.bootstrap})
    parts = {m.partition() for m in records}
    futures = admin.delete_records([TopicPartition(topic, n, OFFSET_END) for n in parts])
    for future in futures.values():
        future.result(timeout=30)
    assert list(read_to_end(p.bootstrap, p.kafka, [topic])) == []
    return len(records)


def outcome_of(command_id: str, intouch_id: str, status: Status, **more: Any) -> dict[str, Any]:
    return {
        "outcome_id": str(uuid.uuid4()), "command_id": command_id, "client_id": CLIENT,
        "club_id": "7", "entity": "USER", "intouch_id": intouch_id, "version": 1,
        "status": str(status), "receiver_id": None, "call": "create", "user_type": None,
        "fingerprint": None, "message": None, "attempts": 1,
        "occurred_at": dt.datetime.now(dt.UTC), "replay_id": None, **more,
    }  # fmt: skip


def write_outcome(p: Pipeline, outcome: dict[str, Any], *, with_row: bool) -> None:
    """An outcome as a worker writes it: the record, then (`with_row`) its changelog row on
    the same partition, folded by the worker's own code."""
    key = {"client_id": CLIENT, "entity": "USER", "intouch_id": outcome["intouch_id"]}
    p.producer.produce(
        p.topic(p.topics.outcomes_topic),
        key=p.codecs["EntityKey"].encode(key),
        value=p.codecs["Outcome"].encode(outcome),
        partition=0,
    )
    assert p.producer.flush(30) == 0
    if not with_row:
        return
    (last,) = [
        m for m in read_to_end(p.bootstrap, p.kafka, [p.topic(p.topics.outcomes_topic)])
        if p.codecs["Outcome"].decode(m.value())["outcome_id"] == outcome["outcome_id"]
    ]  # fmt: skip
    scratch = LinkStore(p.workdir / f"scratch-{uuid.uuid4().hex[:6]}")
    decoded = p.codecs["Outcome"].decode(last.value())  # as a rebuild from outcomes sees it
    row = scratch.apply(decoded, (last.partition(), last.offset()))
    scratch.close()
    assert row is not None
    p.producer.produce(
        p.topic(p.topics.links_topic), key=row[0].encode(), value=row[1], partition=0
    )
    assert p.producer.flush(30) == 0


def test_a_worker_with_an_empty_data_dir_rebuilds_the_links_without_the_outcomes(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    port = free_port()
    with running_pipeline(kafka_bootstrap, tmp_path, CONNECTOR_METRICS_PORT=str(port)) as p:
        p.add_receiver(CLIENT, ReceiverMode.FULL)
        p.seed_staff(CLIENT, "9201", "eve@club.com", "Eve Staff")
        p.seed_staff(CLIENT, "9202", "evelyn@club.com", "Evelyn Staff")
        p.start_worker()
        # History: several outcomes per entity (links made, moved, renamed, updated).
        p.send("StaffChanged", staff_event(CLIENT, "3201", 1, email="eve@club.com"))
        p.send("LeadSourceChanged", lead_source_event(CLIENT, "4201", 1, "Web"))
        assert p.wait_outcome(CLIENT, "3201", 1)["receiver_id"] == "9201"
        p.wait_outcome(CLIENT, "4201", 1)
        users = [str(7201 + n) for n in range(6)]
        for version in (1, 2, 3):
            for user in users:
                p.send(
                    "UserChanged",
                    user_event(
                        CLIENT, user, version, first_name=f"V{version}",
                        staff_owner_id="3201", lead_source_id="4201",
                    ),
                )  # fmt: skip
        p.send("StaffChanged", staff_event(CLIENT, "3201", 2, email="evelyn@club.com"))
        p.send("LeadSourceChanged", lead_source_event(CLIENT, "4201", 2, "Web site"))
        for user in users:
            p.wait_outcome(CLIENT, user, 3)
        assert p.wait_outcome(CLIENT, "3201", 2)["receiver_id"] == "9202"
        p.wait_outcome(CLIENT, "4201", 2)
        # A create whose pending marker is the entity's last word.
        write_outcome(p, outcome_of("c-7299", "7299", Status.PENDING_CREATE), with_row=True)
        wait_for("the worker to be ready", lambda: ready(port))
        commands = list(read_to_end(p.bootstrap, p.kafka, [p.topic(p.topics.commands_topic)]))
        ends: dict[int, int] = {}
        for message in commands:
            ends[message.partition()] = message.offset() + 1
        wait_for(
            "every command to be committed",
            lambda: p.committed(p.topics.commands_topic) == ends,
        )
        p.stop_worker()
        first = store_items(tmp_path / "data" / p.app_id)
        states = user_states(tmp_path / "data" / p.app_id)
        assert sum(k.startswith("v/") for k in states) == len(users)
        assert sum(k.startswith("p/") for k in states) == len(users)  # all name an owner

        # The old way: every outcome folded in, from the start of the outcomes topic.
        outcomes = list(read_to_end(p.bootstrap, p.kafka, [p.topic(p.topics.outcomes_topic)]))
        assert len(outcomes) > 3 * len(users) + 4
        folded = LinkStore(tmp_path / "folded")
        for message in outcomes:
            outcome = p.codecs["Outcome"].decode(message.value())
            folded.apply(outcome, (message.partition(), message.offset()))
        folded.rebuilt()  # kept when opened again
        folded.close()
        expected = store_items(tmp_path / "folded")
        assert expected["u/rows/7299"]["pending"]["call"] == "create"
        assert expected["s/rows/3201"]["receiver_id"] == "9202"
        assert sum(k.startswith("r/") for k in expected) == len(users)
        # The same rows, but for the user states rows carry (outcomes do not).
        assert all("state" in first[f"u/{CLIENT}/{user}"] for user in users)
        assert {k: without_state(v) for k, v in first.items()} == expected

        # No outcome and no command left to read: the new worker has only the changelog.
        assert truncate(p, p.topics.outcomes_topic) == len(outcomes)
        assert truncate(p, p.topics.commands_topic) == len(commands)
        (fresh,) = p.start_more_workers(1)
        wait_for("the fresh worker to be ready", lambda: ready(port), timeout=120)
        stop_worker(fresh)
        assert store_items(tmp_path / "worker-1" / p.app_id) == first
        assert user_states(tmp_path / "worker-1" / p.app_id) == states


def linked_without_row(p: Pipeline, intouch_id: str, body: dict[str, Any]) -> str:
    """What a worker that died between the LINKED outcome's ack and its row's leaves: the
    pending marker (with its row), the receiver's record, the LINKED outcome without a row
    (its command never acknowledged). Returns the record's receiver ID."""
    command_id = f"c-{intouch_id}"
    write_outcome(p, outcome_of(command_id, intouch_id, Status.PENDING_CREATE), with_row=True)
    receiver = p.receivers[CLIENT]
    store = receiver.receiver.store
    made = receiver.call(lambda: store.create_person(f"R-{CLIENT}", "C7", "prospect", dict(body)))
    linked = outcome_of(command_id, intouch_id, Status.LINKED, receiver_id=str(made["id"]))
    write_outcome(p, linked, with_row=False)
    return str(made["id"])


def worker_outcome(p: Pipeline, intouch_id: str) -> dict[str, Any]:
    """The final outcome of the command the worker runs again (not the ones written above)."""

    def found() -> dict[str, Any] | None:
        for o in reversed(p.outcomes(CLIENT)):
            if (
                o["intouch_id"] == intouch_id
                and o["command_id"] != f"c-{intouch_id}"
                and o["status"] in FINAL_STATUSES
            ):
                return o
        return None

    return wait_for(f"the worker's outcome for {intouch_id}", found, timeout=90)


def test_an_outcome_whose_row_was_never_written_is_run_again_without_a_second_create(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    fast = {"CONNECTOR_RECEIVER_TIMEOUT": "1", "CONNECTOR_RECONCILE_GRACE": "1"}
    with running_pipeline(kafka_bootstrap, tmp_path, **fast) as p:
        p.add_receiver(CLIENT, ReceiverMode.FULL)
        body = {"externalId": "7301", "firstName": "Pete", "lastName": "Prospect"}
        made = linked_without_row(p, "7301", body)
        p.start_worker()
        # The command again (as planned from the same change).
        p.send("UserChanged", user_event(CLIENT, "7301", 1))
        final = worker_outcome(p, "7301")
        assert final["status"] != "FAILED" and final["receiver_id"] == made, final
        assert len(records_of(p, CLIENT, externalId="7301")) == 1
        calls = p.calls(CLIENT)
        assert calls.get("create_prospect", 0) == 0 and calls.get("save_prospect", 0) == 0, calls


def test_an_outcome_whose_row_was_never_written_is_found_in_the_outcomes_without_a_lookup(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """As above, on a receiver with no person lookup: the pending marker cannot be checked
    with the receiver, so the next owner takes the LINKED outcome from the outcomes topic
    instead of failing the command as unknown (found by the soak: a rebalance between the
    outcome's ack and its row's left such a user failing for good)."""
    fast = {"CONNECTOR_RECEIVER_TIMEOUT": "1", "CONNECTOR_RECONCILE_GRACE": "1"}
    with running_pipeline(kafka_bootstrap, tmp_path, **fast) as p:
        # It keeps no InTouch ID and the user has no email: nothing to look the person up by.
        p.add_receiver(CLIENT, ReceiverMode.NO_EXTERNAL_ID)
        made = linked_without_row(p, "7302", {"firstName": "Pia", "lastName": "Prospect"})
        p.start_worker()
        p.send("UserChanged", user_event(CLIENT, "7302", 1, first_name="Pia"))
        final = worker_outcome(p, "7302")
        assert final["status"] != "FAILED" and final["receiver_id"] == made, final
        assert len(records_of(p, CLIENT, firstName="Pia")) == 1
        calls = p.calls(CLIENT)
        assert calls.get("create_prospect", 0) == 0 and calls.get("save_prospect", 0) == 0, calls


def test_a_marker_whose_writer_ran_an_hour_behind_is_waited_for_all_the_same(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """A worker whose clock ran an hour behind wrote a create's pending marker and died with
    the create under way. By the marker's own time the call is long settled; by when this
    worker noticed the marker, it may still land. Before, the next owner looked at once,
    found nothing and made the record a second time when the create landed after that."""
    window = 30.0  # receiver timeout + grace: the create lands well within it
    settings = {"CONNECTOR_RECEIVER_TIMEOUT": "15", "CONNECTOR_RECONCILE_GRACE": "15"}
    with running_pipeline(kafka_bootstrap, tmp_path, **settings) as p:
        p.add_receiver(CLIENT, ReceiverMode.FULL)
        hour_behind = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
        marker = outcome_of("c-7501", "7501", Status.PENDING_CREATE, occurred_at=hour_behind)
        write_outcome(p, marker, with_row=True)
        written = time.monotonic()
        p.start_worker()
        p.send("UserChanged", user_event(CLIENT, "7500", 1))
        assert p.wait_outcome(CLIENT, "7500", 1)["status"] == "LINKED"  # the worker is up
        # The dead worker's create lands 4 s from now; the user's next change comes now.
        receiver = p.receivers[CLIENT]
        store = receiver.receiver.store
        body = {"externalId": "7501", "firstName": "Lou", "lastName": "Late"}
        landed: list[float] = []

        def land() -> None:
            receiver.call(lambda: store.create_person(f"R-{CLIENT}", "C7", "prospect", dict(body)))
            landed.append(time.monotonic())

        landing = threading.Timer(4.0, land)
        landing.start()
        p.send("UserChanged", user_event(CLIENT, "7501", 2, first_name="Lou"))
        linked = p.wait_outcome(CLIENT, "7501", 2, timeout=90)
        landing.join()
        assert landed[0] - written < window, "the create landed past the window: no test"
        records = records_of(p, CLIENT, externalId="7501")
        assert len(records) == 1, records
        assert (linked["status"], linked["receiver_id"]) == ("LINKED", records[0]["id"])


def test_a_deployment_from_before_the_changelog_is_backfilled_before_a_worker_starts(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    port = free_port()
    with running_pipeline(kafka_bootstrap, tmp_path, CONNECTOR_METRICS_PORT=str(port)) as p:
        p.add_receiver(CLIENT, ReceiverMode.FULL)
        p.seed_staff(CLIENT, "9201", "eve@club.com", "Eve Staff")
        p.start_worker()
        p.send("StaffChanged", staff_event(CLIENT, "3201", 1, email="eve@club.com"))
        p.wait_outcome(CLIENT, "3201", 1)
        users = [str(7401 + n) for n in range(4)]
        for version in (1, 2):
            for user in users:
                p.send("UserChanged", user_event(CLIENT, user, version, staff_owner_id="3201"))
        for user in users:
            p.wait_outcome(CLIENT, user, 2)
        p.stop_worker()
        # Links only in the outcomes, as before the changelog existed (a compacted topic
        # takes no DeleteRecords: it is made again, empty).
        name = p.topic(p.topics.links_topic)
        assert delete_topics(p.bootstrap, p.kafka, [name]) == [name]
        admin = AdminClient({"bootstrap.servers": p.bootstrap})
        wait_for("the changelog to go", lambda: name not in admin.list_topics(timeout=10).topics)
        ensure_topics(p.bootstrap, p.kafka, design_topics(p.topics))
        refused = connector(p.env("refused"), "worker", timeout=120)
        assert refused.returncode != 0 and "connector links backfill" in refused.stderr
        assert not (tmp_path / "refused").exists()  # refused before any state was made
        filled = connector(p.env(), "links", "backfill", timeout=300)
        assert filled.returncode == 0, filled.stderr
        again = connector(p.env(), "links", "backfill", timeout=120)
        assert again.returncode != 0 and "rows already" in again.stderr

        folded = LinkStore(tmp_path / "folded")
        for message in read_to_end(p.bootstrap, p.kafka, [p.topic(p.topics.outcomes_topic)]):
            outcome = p.codecs["Outcome"].decode(message.value())
            folded.apply(outcome, (message.partition(), message.offset()))
        folded.rebuilt()  # kept when opened again
        folded.close()
        (fresh,) = p.start_more_workers(1)
        wait_for("the fresh worker to be ready", lambda: ready(port), timeout=120)
        stop_worker(fresh)
        rebuilt = store_items(tmp_path / "worker-1" / p.app_id)
        assert {k: without_state(v) for k, v in rebuilt.items()} == store_items(tmp_path / "folded")
        states = user_states(tmp_path / "worker-1" / p.app_id)
        assert {k for k in states if k.startswith("p/")} == {
            f"p/{rebuilt[f'u/{CLIENT}/{u}']['state']['latest'][1]}/{CLIENT}/{u}" for u in users
        }
        assert states == user_states(tmp_path / "data" / p.app_id)
