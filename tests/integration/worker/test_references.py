"""Convergent references: users follow their staff owner's and lead source's links, whenever
those links appear, move or go. Real Kafka, a real worker, a real reference receiver."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from adapters.reference import ReceiverMode
from streams.kafka.local import free_port
from tests.integration.harness import (
    Pipeline,
    lead_source_event,
    running_pipeline,
    staff_event,
    user_event,
    wait_for,
)

CLIENT = "refs"


@pytest.fixture(scope="module")
def pipeline(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pipeline]:
    workdir = tmp_path_factory.mktemp("references")
    with running_pipeline(kafka_bootstrap, workdir, CONNECTOR_METRICS_PORT=str(free_port())) as p:
        p.add_receiver(CLIENT, ReceiverMode.FULL)
        p.start_worker()
        yield p


def person(pipeline: Pipeline, intouch_id: str) -> dict[str, Any] | None:
    found = [p for p in pipeline.people(CLIENT) if p.get("externalId") == intouch_id]
    assert len(found) <= 1, found
    return found[0] if found else None


def wait_person(pipeline: Pipeline, intouch_id: str, what: str, **values: Any) -> dict[str, Any]:
    """The receiver's record of the user, once it has `values`."""

    def check() -> dict[str, Any] | None:
        found = person(pipeline, intouch_id)
        if found is not None and all(found.get(k) == v for k, v in values.items()):
            return found
        return None

    return wait_for(f"user {intouch_id} {what} ({values})", check, timeout=60)


def user_commands(pipeline: Pipeline, intouch_id: str) -> list[dict[str, Any]]:
    return [
        c
        for c in pipeline.read(pipeline.topics.commands_topic, "Command")
        if c["client_id"] == CLIENT and c["intouch_id"] == intouch_id and c["user"] is not None
    ]


def test_a_prospect_planned_before_its_staff_link_gets_its_owner(pipeline: Pipeline) -> None:
    pipeline.seed_staff(CLIENT, "9001", "anna@club.com", "Anna Staff")
    # The user first: its staff is not linked yet, so it goes out with no owner (the guide).
    pipeline.send("UserChanged", user_event(CLIENT, "7001", 1, staff_owner_id="3001"))
    assert pipeline.wait_outcome(CLIENT, "7001", 1)["status"] == "LINKED"
    assert wait_person(pipeline, "7001", "sent", staffOwnerId=None)
    pipeline.send("StaffChanged", staff_event(CLIENT, "3001", 1, email="anna@club.com"))
    assert pipeline.wait_outcome(CLIENT, "3001", 1)["receiver_id"] == "9001"
    wait_person(pipeline, "7001", "owned once the staff is linked", staffOwnerId="9001")
    replanned = user_commands(pipeline, "7001")[-1]
    assert (replanned["version"], replanned["staff_owner_receiver_id"]) == (1, "9001")
    # The re-plan is a command like any other: it has its own outcome.
    wait_for(
        "the re-plan's outcome",
        lambda: [
            o
            for o in pipeline.outcomes(CLIENT)
            if o["command_id"] == replanned["command_id"] and o["status"] == "LINKED"
        ],
    )


def test_a_prospect_planned_before_its_lead_source_link_gets_it(pipeline: Pipeline) -> None:
    pipeline.send(
        "UserChanged", user_event(CLIENT, "7002", 1, first_name="Lea", lead_source_id="4001")
    )
    pipeline.wait_outcome(CLIENT, "7002", 1)
    assert wait_person(pipeline, "7002", "sent", leadSourceId=None)
    pipeline.send("LeadSourceChanged", lead_source_event(CLIENT, "4001", 1, "Radio"))
    created = pipeline.wait_outcome(CLIENT, "4001", 1)
    assert created["status"] == "LINKED" and created["receiver_id"]
    found = wait_person(
        pipeline, "7002", "given its lead source", leadSourceId=created["receiver_id"]
    )
    assert found["firstName"] == "Lea"


def test_an_owner_relinked_or_unlinked_is_followed(pipeline: Pipeline) -> None:
    pipeline.seed_staff(CLIENT, "9002", "bob@club.com", "Bob Staff")
    pipeline.seed_staff(CLIENT, "9003", "bobby@club.com", "Bobby Staff")
    pipeline.send("StaffChanged", staff_event(CLIENT, "3002", 1, email="bob@club.com"))
    assert pipeline.wait_outcome(CLIENT, "3002", 1)["receiver_id"] == "9002"
    pipeline.send("UserChanged", user_event(CLIENT, "7003", 1, staff_owner_id="3002"))
    pipeline.send("UserChanged", user_event(CLIENT, "7003", 2, staff_owner_id="3002", city="Oslo"))
    pipeline.wait_outcome(CLIENT, "7003", 2)
    wait_person(pipeline, "7003", "owned", staffOwnerId="9002")
    # The staff's email now matches another receiver staff: the user moves with it.
    pipeline.send("StaffChanged", staff_event(CLIENT, "3002", 2, email="bobby@club.com"))
    assert pipeline.wait_outcome(CLIENT, "3002", 2)["receiver_id"] == "9003"
    moved = wait_person(pipeline, "7003", "re-owned", staffOwnerId="9003")
    assert moved["address"]["city"] == "Oslo"  # the latest version, not an older one
    # No receiver staff matches any more: the user is owned by nobody.
    pipeline.send("StaffChanged", staff_event(CLIENT, "3002", 3, email="gone@club.com"))
    assert pipeline.wait_outcome(CLIENT, "3002", 3)["status"] == "UNLINKED"
    wait_person(pipeline, "7003", "without owner", staffOwnerId=None)
    assert {c["version"] for c in user_commands(pipeline, "7003")} == {1, 2}


def replans(pipeline: Pipeline) -> dict[str, float]:
    url = f"http://127.0.0.1:{pipeline.extra_env['CONNECTOR_METRICS_PORT']}/metrics"
    try:
        text = httpx.get(url, timeout=5).text
    except httpx.TransportError:
        return {}  # the restarted worker is not serving yet
    found = {}
    for line in text.splitlines():
        if line.startswith("connector_replans_total{"):
            labels, value = line.rsplit(" ", 1)
            found[labels.split('result="')[1].split('"')[0]] = float(value)
    return found


def test_a_user_whose_values_would_not_change_is_not_sent_again(pipeline: Pipeline) -> None:
    pipeline.seed_staff(CLIENT, "9004", "cleo@club.com", "Cleo Staff")
    pipeline.send("StaffChanged", staff_event(CLIENT, "3004", 1, email="cleo@club.com"))
    pipeline.send("LeadSourceChanged", lead_source_event(CLIENT, "4004", 1, "Flyer"))
    assert pipeline.wait_outcome(CLIENT, "3004", 1)["receiver_id"] == "9004"
    source = pipeline.wait_outcome(CLIENT, "4004", 1)["receiver_id"]
    pipeline.send(
        "UserChanged",
        user_event(CLIENT, "7004", 1, staff_owner_id="3004", lead_source_id="4004"),
    )
    pipeline.wait_outcome(CLIENT, "7004", 1)
    wait_person(pipeline, "7004", "sent", staffOwnerId="9004", leadSourceId=source)
    # Links re-made to the same receiver records: nothing the receiver sees changes.
    pipeline.send("StaffChanged", staff_event(CLIENT, "3004", 2, email="CLEO@club.com"))
    pipeline.send("LeadSourceChanged", lead_source_event(CLIENT, "4004", 2, "Flyers"))
    pipeline.wait_outcome(CLIENT, "3004", 2)
    pipeline.wait_outcome(CLIENT, "4004", 2)
    # A restart checks the users it owns that name a staff owner or lead source against
    # today's links (what their commands carried); this one is up to date.
    users = {c["intouch_id"] for c in pipeline.read(pipeline.topics.commands_topic, "Command")
             if c["client_id"] == CLIENT and c["user"] is not None}  # fmt: skip
    pipeline.stop_worker()
    pipeline.start_worker()
    port = pipeline.extra_env["CONNECTOR_METRICS_PORT"]

    def ready() -> bool:
        try:
            return httpx.get(f"http://127.0.0.1:{port}/ready", timeout=5).status_code == 200
        except httpx.TransportError:
            return False

    wait_for("the restarted worker to be ready (its users checked)", ready)
    # A change made after the restart: by its outcome the re-plan loop has run many times.
    pipeline.send("UserChanged", user_event(CLIENT, "7005", 1))
    pipeline.wait_outcome(CLIENT, "7005", 1)
    assert replans(pipeline).get("sent", 0) == 0
    assert len(user_commands(pipeline, "7004")) == 1
    users.add("7005")
    calls = pipeline.calls(CLIENT)
    assert calls.get("create_prospect") == len(users)


def test_with_two_workers_each_user_is_planned_again_once(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """Both workers see the link move; only the owner of each user's partition re-plans it."""
    with running_pipeline(kafka_bootstrap, tmp_path) as p:
        p.add_receiver(CLIENT, ReceiverMode.FULL)
        p.start_worker()
        p.start_more_workers(1)
        p.seed_staff(CLIENT, "9101", "dora@club.com", "Dora Staff")
        users = [f"71{i:02d}" for i in range(12)]
        for user in users:
            p.send("UserChanged", user_event(CLIENT, user, 1, staff_owner_id="3101"))
        p.wait_outcomes(CLIENT, users, 1, timeout=120)
        p.send("StaffChanged", staff_event(CLIENT, "3101", 1, email="dora@club.com"))
        # The link's outcome, not the last one: a rebalance between the call and the commit
        # runs the command again on the next owner, which answers SKIPPED (already applied).
        linked = wait_for(
            "the staff linked",
            lambda: next(
                (
                    o
                    for o in p.outcomes(CLIENT)
                    if o["intouch_id"] == "3101" and o["status"] == "LINKED"
                ),
                None,
            ),
        )
        assert linked["receiver_id"] == "9101"
        wait_for(
            "every user owned",
            lambda: all((person(p, u) or {}).get("staffOwnerId") == "9101" for u in users),
        )
        replanned = {u: user_commands(p, u)[1:] for u in users}
        assert all(len(commands) == 1 for commands in replanned.values()), replanned
        wait_for(
            "an outcome for every re-plan",
            lambda: (
                {o["command_id"] for o in p.outcomes(CLIENT) if o["status"] == "LINKED"}
                >= {c["command_id"] for (c,) in replanned.values()}
            ),
        )


def test_a_worker_with_an_empty_data_dir_rebuilds_user_states(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    with running_pipeline(kafka_bootstrap, tmp_path) as p:
        p.add_receiver(CLIENT, ReceiverMode.FULL)
        p.seed_staff(CLIENT, "9201", "eve@club.com", "Eve Staff")
        p.seed_staff(CLIENT, "9202", "evelyn@club.com", "Evelyn Staff")
        p.start_worker()
        p.send("StaffChanged", staff_event(CLIENT, "3201", 1, email="eve@club.com"))
        assert p.wait_outcome(CLIENT, "3201", 1)["receiver_id"] == "9201"
        p.send("UserChanged", user_event(CLIENT, "7201", 1, staff_owner_id="3201"))
        p.wait_outcome(CLIENT, "7201", 1)
        wait_person(p, "7201", "owned", staffOwnerId="9201")
        p.stop_worker()
        (fresh,) = p.start_more_workers(1)  # a data dir of its own, empty
        p.send("StaffChanged", staff_event(CLIENT, "3201", 2, email="evelyn@club.com"))
        assert p.wait_outcome(CLIENT, "3201", 2, timeout=120)["receiver_id"] == "9202"
        wait_person(p, "7201", "re-owned by the new worker", staffOwnerId="9202")
        assert fresh.poll() is None
