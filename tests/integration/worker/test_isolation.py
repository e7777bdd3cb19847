"""Tenant isolation, end to end: one client's hanging receiver never holds every sink slot."""

from __future__ import annotations

import time
from pathlib import Path

from adapters.reference import FaultSpec
from tests.integration.harness import running_pipeline, seconds_to_link, user_event, wait_for


def test_a_hanging_tenant_does_not_delay_another_tenants_commands(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    settings = {
        "CONNECTOR_SINK_MAX_IN_FLIGHT": "4",
        "CONNECTOR_SINK_TENANT_MAX_IN_FLIGHT": "2",
        "CONNECTOR_RECEIVER_TIMEOUT": "5",
        # The hanging tenant's commands are retried for as long as the test runs.
        "CONNECTOR_RETRY_MAX_ELAPSED": "3600",
        "CONNECTOR_RETRY_MAX_ATTEMPTS": "100000",
    }
    with running_pipeline(kafka_bootstrap, tmp_path, **settings) as p:
        p.add_receiver("hang", faults=FaultSpec(timeout_rate=1.0, hang_s=3600))
        p.add_receiver("ok")
        p.start_worker()
        p.send("UserChanged", user_event("ok", "W0", 1))
        assert p.wait_outcome("ok", "W0", 1)["status"] == "LINKED"  # the worker is up
        for n in range(8):
            p.send("UserChanged", user_event("hang", f"H{n}", 1))
        wait_for(
            "hanging creates to be in flight",
            lambda: len({o["intouch_id"] for o in p.outcomes("hang")}) >= 2,
        )
        took = seconds_to_link(p, "ok", [f"K{n}" for n in range(6)])
        # Eight commands hang at a receiver, but they may hold only two of the four slots.
        assert took < 10, f"another tenant waited {took:.1f}s behind a hanging receiver"


def test_a_tenants_rate_limit_paces_its_calls_and_no_one_elses(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    with running_pipeline(kafka_bootstrap, tmp_path) as p:
        p.add_receiver("slow", options={"rate_limit": "4"})
        p.add_receiver("fast")
        p.start_worker()
        p.send("UserChanged", user_event("fast", "W0", 1))
        assert p.wait_outcome("fast", "W0", 1)["status"] == "LINKED"  # the worker is up
        started = time.monotonic()
        for n in range(16):
            p.send("UserChanged", user_event("slow", f"S{n}", 1))
            p.send("UserChanged", user_event("fast", f"F{n}", 1))
        fast = p.wait_outcomes("fast", [f"F{n}" for n in range(16)], 1)
        assert {o["status"] for o in fast.values()} == {"LINKED"}
        fast_took = time.monotonic() - started
        slow = p.wait_outcomes("slow", [f"S{n}" for n in range(16)], 1)
        assert {o["status"] for o in slow.values()} == {"LINKED"}
        slow_took = time.monotonic() - started
        # 16 creates at 4 a second, a burst of 4 first: at least 3 s for the limited tenant.
        assert slow_took >= 3.0, f"16 calls at 4/s took only {slow_took:.1f}s"
        assert fast_took < slow_took, (fast_took, slow_took)
