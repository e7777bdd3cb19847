"""Creates on a receiver that cannot be asked what they did (no lookup for a user without
email, no idempotency keys): a create is never cut off by our own hand, and a refusal that
proves nothing was made does not leave the user in doubt for ever.

Before, a revocation or a stop cancelled the call after its pending marker: the receiver
still made the record, no outcome said so, and every later change of the user failed with
"an earlier creating call may have made a record". A 429 or a 400 after the marker did the
same, though the receiver had made nothing.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from adapters.reference import FaultSpec, ReceiverMode
from streams.core.decisions import SkipReason
from tests.integration.harness import (
    Pipeline,
    final,
    records_of,
    running_pipeline,
    set_faults,
    settled,
    user_event,
    wait_for,
)

CLIENT = "blindrx"
#: A create held this long by the receiver, so a rebalance or a stop lands in the middle of
#: it (a second worker takes a few seconds to start and join, more on a loaded machine).
SLOW_CREATE_S = 20.0


@pytest.fixture(scope="module")
def p(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pipeline]:
    workdir = tmp_path_factory.mktemp("cut")
    # The receiver timeout outlasts the slow create: the call is never ours to give up on.
    with running_pipeline(kafka_bootstrap, workdir, CONNECTOR_RECEIVER_TIMEOUT="30") as pipeline:
        pipeline.add_receiver(CLIENT, ReceiverMode.NO_EXTERNAL_ID)
        pipeline.start_worker()
        yield pipeline


def statuses(p: Pipeline, intouch_id: str) -> list[str]:
    return [o["status"] for o in p.outcomes(CLIENT) if o["intouch_id"] == intouch_id]


def creates(p: Pipeline) -> int:
    return p.calls(CLIENT).get("create_prospect", 0)


def only_record(p: Pipeline, intouch_id: str, first_name: str) -> dict[str, Any]:
    records = records_of(p, CLIENT, firstName=first_name)
    assert len(records) == 1, f"{intouch_id}: {records}"
    return records[0]


def in_flight(p: Pipeline) -> int:
    receiver = p.receivers[CLIENT]
    return int(receiver.call(lambda: receiver.receiver.in_flight))


def test_a_create_answered_429_is_made_again_and_linked(p: Pipeline) -> None:
    set_faults(p, CLIENT, create_prospect=FaultSpec(throttle_rate=1.0, retry_after_s=0.2, limit=1))
    p.send("UserChanged", user_event(CLIENT, "T1", 1, first_name="Tess"))
    linked = final(p, CLIENT, "T1", 1)
    set_faults(p, CLIENT)
    assert linked["status"] == "LINKED", linked
    assert linked["receiver_id"] == only_record(p, "T1", "Tess")["id"]
    assert "NOT_APPLIED" in statuses(p, "T1") and "FAILED" not in statuses(p, "T1")


def test_a_create_refused_with_400_does_not_block_the_users_next_version(p: Pipeline) -> None:
    set_faults(p, CLIENT, create_prospect=FaultSpec(error_rate=1.0, error_status=400, limit=1))
    p.send("UserChanged", user_event(CLIENT, "B1", 1, first_name="Bea"))
    assert final(p, CLIENT, "B1", 1)["status"] == "FAILED"  # the receiver's 400
    set_faults(p, CLIENT)
    p.send("UserChanged", user_event(CLIENT, "B1", 2, first_name="Bea"))
    linked = final(p, CLIENT, "B1", 2)
    assert linked["status"] == "LINKED", linked
    assert linked["receiver_id"] == only_record(p, "B1", "Bea")["id"]


def test_a_create_in_flight_when_a_rebalance_revokes_its_partition_is_recorded(
    p: Pipeline,
) -> None:
    set_faults(p, CLIENT, create_prospect=FaultSpec(latency_ms=SLOW_CREATE_S * 1000))
    before = creates(p)
    p.send("UserChanged", user_event(CLIENT, "R1", 1, first_name="Rae"))
    wait_for("the create to be under way", lambda: in_flight(p) > 0 or None)
    rebalancing = "because it is rebalancing"  # the first worker's heartbeat, refused
    seen_before = p.worker_log().count(rebalancing)
    started = time.monotonic()
    p.start_more_workers(1)  # joins the group: the first worker's partitions are revoked
    wait_for(
        "the first worker to be told of the rebalance",
        lambda: p.worker_log().count(rebalancing) > seen_before or None,
        timeout=SLOW_CREATE_S,
    )
    assert in_flight(p) > 0, "the rebalance came only after the create: nothing was tested"
    assert time.monotonic() - started < SLOW_CREATE_S
    final(p, CLIENT, "R1", 1)
    set_faults(p, CLIENT)
    record = only_record(p, "R1", "Rae")
    linked = [o for o in p.outcomes(CLIENT) if o["intouch_id"] == "R1" and o["status"] == "LINKED"]
    assert [o["receiver_id"] for o in linked] == [record["id"]], statuses(p, "R1")
    assert "FAILED" not in statuses(p, "R1")
    assert creates(p) - before == 1


def test_a_create_in_flight_when_the_worker_stops_is_recorded_before_it_exits(
    p: Pipeline,
) -> None:
    for process in p.more_workers:  # one worker again, so it owns every partition
        process.terminate()
        process.wait(timeout=60)
    # 6 s: the call ends within the worker's 10 s to stop.
    set_faults(p, CLIENT, create_prospect=FaultSpec(latency_ms=6000))
    p.send("UserChanged", user_event(CLIENT, "S1", 1, first_name="Sol"))
    wait_for("the create to be under way", lambda: in_flight(p) > 0 or None, timeout=90)
    p.stop_worker()  # SIGTERM while the receiver holds the create
    assert settled(p, CLIENT)
    linked = [o for o in p.outcomes(CLIENT) if o["intouch_id"] == "S1" and o["status"] == "LINKED"]
    set_faults(p, CLIENT)
    record = only_record(p, "S1", "Sol")
    assert [o["receiver_id"] for o in linked] == [record["id"]], statuses(p, "S1")
    p.start_worker()
    p.send("UserChanged", user_event(CLIENT, "S1", 2, first_name="Sol", last_name="Lee"))
    updated = final(p, CLIENT, "S1", 2)
    assert (updated["status"], updated["receiver_id"]) == ("LINKED", record["id"])
    assert only_record(p, "S1", "Sol")["lastName"] == "Lee"


def test_creates_in_flight_across_a_worker_joining_and_leaving_are_each_made_once(
    p: Pipeline,
) -> None:
    """Many creates at once (16 a tenant in flight) while a second worker joins and then
    stops: each user linked to exactly one record, none in doubt, none made twice."""
    set_faults(p, CLIENT, create_prospect=FaultSpec(latency_ms=3000))
    before = creates(p)
    users = [f"M{n:02d}" for n in range(48)]
    for intouch_id in users:
        p.send("UserChanged", user_event(CLIENT, intouch_id, 1, first_name=f"Mo{intouch_id}"))
    wait_for("creates to be under way", lambda: in_flight(p) > 0 or None, timeout=90)
    rebalancing = "because it is rebalancing"
    seen = p.worker_log().count(rebalancing)
    (joined,) = p.start_more_workers(1)
    wait_for(
        "the first worker to be told of the rebalance",
        lambda: p.worker_log().count(rebalancing) > seen or None,
        timeout=60,
    )
    assert in_flight(p) > 0, "the worker joined after the last create: nothing was tested"
    last = p.wait_outcome(CLIENT, users[-1], 1, timeout=120)  # some ran on the joined one
    joined.terminate()  # SIGTERM: it lets its creates end, then leaves (another rebalance)
    joined.wait(timeout=60)
    found = p.wait_outcomes(CLIENT, users, 1, timeout=120)
    set_faults(p, CLIENT)
    wait_for(f"{CLIENT}'s receiver to settle", lambda: settled(p, CLIENT), timeout=30)
    assert last["status"] == "LINKED"
    by_name = {r["firstName"]: r["id"] for r in p.people(CLIENT)}
    outcomes = [o for o in p.outcomes(CLIENT) if o["intouch_id"] in found]
    linked = {(o["intouch_id"], o["receiver_id"]) for o in outcomes if o["status"] == "LINKED"}
    assert linked == {(i, by_name.get(f"Mo{i}")) for i in users}
    # A command a revoked lane had not acknowledged runs again on the next owner: the
    # link is there already, so it is skipped, never made twice or failed.
    assert {o["status"] for o in found.values()} <= {"LINKED", "SKIPPED"}
    assert {o["message"] for o in found.values() if o["status"] == "SKIPPED"} <= {SkipReason.STALE}
    assert not [o for o in outcomes if o["status"] == "FAILED"]
    made = [r for r in p.people(CLIENT) if str(r["firstName"]).startswith("MoM")]
    assert len(made) == len(users), sorted(r["firstName"] for r in made)
    assert creates(p) - before == len(users)
