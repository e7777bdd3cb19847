"""A receiver that answers a byte at a time, each byte within the read timeout: only a bound
on the whole call ends it (`CONNECTOR_RECEIVER_TIMEOUT`).

Before, the read timeout was the only bound. A trickled answer held its call for as long as
the receiver liked: its tenant's commands filled the worker's queue and every tenant behind
them waited; a create held so kept its worker's revocation waiting for it (revocation waits
for creating calls), and that worker took no partition again for as long as it trickled.
"""

from __future__ import annotations

from pathlib import Path

from adapters.reference import FaultSpec
from tests.integration.harness import (
    Pipeline,
    final,
    records_of,
    running_pipeline,
    seconds_to_link,
    set_faults,
    user_event,
    wait_for,
)

#: Longer than any test here runs: the answer never ends by itself.
FOREVER_S = 3600.0
TIMEOUT_S = 2.0


def made(p: Pipeline, client_id: str) -> int:
    """Records the receiver holds (a trickled create makes its record first)."""
    return len(p.people(client_id))


def test_a_trickling_receiver_does_not_hold_the_queue_of_every_tenant(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    settings = {
        "CONNECTOR_SINK_MAX_IN_FLIGHT": "4",
        "CONNECTOR_SINK_TENANT_MAX_IN_FLIGHT": "2",
        # Room for a few commands: the trickling tenant's fill it unless they end.
        "CONNECTOR_SINK_MAX_QUEUED": "6",
        "CONNECTOR_RECEIVER_TIMEOUT": str(TIMEOUT_S),
        "CONNECTOR_RECONCILE_GRACE": "1",
        "CONNECTOR_BREAKER_FAILURES": "3",
        "CONNECTOR_RETRY_MAX_ELAPSED": "3600",
        "CONNECTOR_RETRY_MAX_ATTEMPTS": "100000",
    }
    with running_pipeline(kafka_bootstrap, tmp_path, **settings) as p:
        p.add_receiver("drip", faults=FaultSpec(apply_then_trickle_rate=1.0, hang_s=FOREVER_S))
        p.add_receiver("ok")
        p.start_worker()
        p.send("UserChanged", user_event("ok", "W0", 1))
        assert p.wait_outcome("ok", "W0", 1)["status"] == "LINKED"  # the worker is up
        for n in range(12):
            p.send("UserChanged", user_event("drip", f"D{n}", 1))
        wait_for("trickled creates to be under way", lambda: made(p, "drip") >= 2 or None)
        took = seconds_to_link(p, "ok", [f"K{n}" for n in range(6)])
        # Cut at the receiver timeout, the trickling calls fail, open the tenant's breaker
        # and its commands park: the queue has room again.
        assert took < 40, f"another tenant waited {took:.1f}s behind a trickling receiver"
        cut = [o for o in p.outcomes("drip") if o["status"] == "UNKNOWN"]
        assert cut and "no complete answer" in cut[0]["message"], cut[:1]


def test_a_trickled_create_does_not_hold_a_rebalance_and_is_linked_once(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    settings = {
        "CONNECTOR_RECEIVER_TIMEOUT": str(TIMEOUT_S),
        "CONNECTOR_RECONCILE_GRACE": "1",
    }
    with running_pipeline(kafka_bootstrap, tmp_path, **settings) as p:
        p.add_receiver("drip")
        p.add_receiver("ok")
        p.start_worker()
        p.send("UserChanged", user_event("ok", "W0", 1))
        assert p.wait_outcome("ok", "W0", 1)["status"] == "LINKED"  # the worker is up
        # The receiver makes the record, then trickles its answer for ever.
        trickle = FaultSpec(apply_then_trickle_rate=1.0, hang_s=FOREVER_S, limit=1)
        set_faults(p, "drip", create_prospect=trickle)
        p.send("UserChanged", user_event("drip", "T1", 1, first_name="Tam"))
        wait_for("the create to be under way", lambda: made(p, "drip") >= 1 or None)
        (second,) = p.start_more_workers(1)  # joins: the first worker's partitions are revoked
        p.send("UserChanged", user_event("ok", "K1", 1))
        assert p.wait_outcome("ok", "K1", 1, timeout=90)["status"] == "LINKED"
        linked = final(p, "drip", "T1", 1)
        records = records_of(p, "drip", firstName="Tam")
        assert len(records) == 1, records  # made once: the cut create was looked up
        assert (linked["status"], linked["receiver_id"]) == ("LINKED", records[0]["id"])
        cut = [o for o in p.outcomes("drip") if o["status"] == "UNKNOWN"]
        assert cut and "no complete answer within 2s" in cut[0]["message"], cut
        # The first worker came through the revocation: with the second gone, it takes every
        # partition again. Had it waited for the trickled create, it would be waiting still.
        # (Gone by kill -9: what is tested is the first worker, not the second one's stop.)
        second.kill()
        second.wait(timeout=60)
        p.send("UserChanged", user_event("ok", "K2", 1))
        assert p.wait_outcome("ok", "K2", 1, timeout=90)["status"] == "LINKED"
