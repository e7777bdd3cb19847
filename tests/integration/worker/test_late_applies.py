"""Creates that land after our timeout, end to end: the lookup after an unknown outcome waits
until such a create has landed, then links it instead of creating a second record."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from adapters.reference import FaultSpec, ReceiverMode
from tests.integration.harness import (
    Pipeline,
    final,
    records_of,
    running_pipeline,
    set_faults,
    user_event,
)

# The receiver applies a create 16 s after it arrived: past any caller's timeout (ours is 1 s
# here, 15 s by default). The worker is told such receivers exist: it looks only after its
# timeout and a grace that covers them.
LATE = 16.0
SLOW_RECEIVERS = {
    "CONNECTOR_RECEIVER_TIMEOUT": "1",
    "CONNECTOR_RECONCILE_GRACE": "17",
    "CONNECTOR_RETRY_MAX_ATTEMPTS": "30",
    "CONNECTOR_RETRY_MAX_ELAPSED": "60",
}


@pytest.fixture(scope="module")
def p(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pipeline]:
    workdir = tmp_path_factory.mktemp("late")
    with running_pipeline(kafka_bootstrap, workdir, **SLOW_RECEIVERS) as pipeline:
        pipeline.add_receiver("late", ReceiverMode.FULL)
        pipeline.add_receiver("noext", ReceiverMode.NO_EXTERNAL_ID)
        pipeline.start_worker()
        yield pipeline


def test_a_create_that_lands_after_our_timeout_is_not_made_twice(p: Pipeline) -> None:
    # The receiver applies the create 1.5 s after it arrived; we gave up after 1 s.
    set_faults(
        p, "late", create_prospect=FaultSpec(late_apply_rate=1.0, late_apply_s=LATE, limit=1)
    )
    p.send("UserChanged", user_event("late", "L1", 1, first_name="Lou"))
    linked = final(p, "late", "L1", 1)
    set_faults(p, "late")
    (lou,) = records_of(p, "late", externalId="L1")
    assert linked["status"] == "LINKED" and linked["receiver_id"] == lou["id"]
    statuses = [o["status"] for o in p.outcomes("late") if o["intouch_id"] == "L1"]
    assert "UNKNOWN" in statuses  # the timeout was recorded as an unknown outcome


def test_a_receiver_without_external_ids_links_only_the_unclaimed_record(p: Pipeline) -> None:
    p.send("UserChanged", user_event("noext", "Y2", 1, first_name="Yve", email="fam@x.com"))
    yve_id = final(p, "noext", "Y2", 1)["receiver_id"]
    # X's create lands late: the lookup by email then finds Yve's record and X's own.
    set_faults(
        p, "noext", create_prospect=FaultSpec(late_apply_rate=1.0, late_apply_s=LATE, limit=1)
    )
    p.send("UserChanged", user_event("noext", "X2", 1, first_name="Xan", email="fam@x.com"))
    xan_id = final(p, "noext", "X2", 1)["receiver_id"]
    set_faults(p, "noext")
    people = {r["id"]: r["firstName"] for r in p.people("noext")}
    assert people == {yve_id: "Yve", xan_id: "Xan"}
