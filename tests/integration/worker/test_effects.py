"""Effects exactly once on the receiver, end to end: real Kafka, a real worker, real HTTP.

Each test makes a creating call's outcome unknown (a 503, a timeout after the receiver applied
it, a create that lands after our timeout, a lost conversion) or puts a lookup in front of the
wrong person, and checks that no record is duplicated, overwritten or lost.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from adapters.reference import FaultSpec, ReceiverMode
from tests.integration.harness import (
    Pipeline,
    final,
    lead_source_event,
    records_of,
    running_pipeline,
    set_faults,
    user_event,
    wait_for,
)

CLIENTS = {
    "family": ReceiverMode.FULL,
    "noconv": ReceiverMode.NO_CONVERT,
    "conv": ReceiverMode.FULL,
    "lsco": ReceiverMode.LEAD_SOURCES_CREATE_ONLY,
    "idem": ReceiverMode.IDEMPOTENT,
}

# Applied, then held far past any caller's timeout (ours is 1 s here, 15 s by default).
HANG = 20.0

# Receiver calls time out after 1 s; an unknown outcome is looked up 1 s after that.
FAST = {
    "CONNECTOR_RECEIVER_TIMEOUT": "1",
    "CONNECTOR_RECONCILE_GRACE": "1",
    "CONNECTOR_RETRY_MAX_ATTEMPTS": "30",
    "CONNECTOR_RETRY_MAX_ELAPSED": "40",
}


@pytest.fixture(scope="module")
def pipeline(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pipeline]:
    workdir = tmp_path_factory.mktemp("effects")
    with running_pipeline(kafka_bootstrap, workdir, **FAST) as p:
        for client_id, mode in CLIENTS.items():
            p.add_receiver(client_id, mode)
        p.start_worker()
        yield p


def test_a_family_member_sharing_an_email_is_never_linked_or_overwritten(p: Pipeline) -> None:
    p.send("UserChanged", user_event("family", "Y1", 1, first_name="Yve", email="fam@x.com"))
    assert final(p, "family", "Y1", 1)["status"] == "LINKED"
    # X's create fails with a 503; the retry's lookup by email finds Yve's record first.
    set_faults(p, "family", create_prospect=FaultSpec(error_rate=1.0, error_status=503, limit=1))
    p.send("UserChanged", user_event("family", "X1", 1, first_name="Xan", email="fam@x.com"))
    linked = final(p, "family", "X1", 1)
    (yve,) = records_of(p, "family", externalId="Y1")
    (xan,) = records_of(p, "family", externalId="X1")
    assert linked["status"] == "LINKED" and linked["receiver_id"] == xan["id"] != yve["id"]
    assert yve["firstName"] == "Yve"  # not overwritten with Xan's data


def test_a_member_created_beside_its_prospect_after_a_timeout_is_made_once(p: Pipeline) -> None:
    p.send("UserChanged", user_event("noconv", "N1", 1, first_name="Nia"))
    assert final(p, "noconv", "N1", 1)["status"] == "LINKED"
    # No convert call: the member is a new record; the receiver applies it and times out.
    set_faults(
        p, "noconv", create_member=FaultSpec(apply_then_timeout_rate=1.0, hang_s=HANG, limit=1)
    )
    p.send("UserChanged", user_event("noconv", "N1", 2, first_name="Nia", user_type="MEMBER"))
    linked = final(p, "noconv", "N1", 2)
    set_faults(p, "noconv")
    (member,) = records_of(p, "noconv", externalId="N1", _kind="member")
    assert linked["status"] == "LINKED" and linked["receiver_id"] == member["id"]


def test_a_conversion_that_timed_out_after_succeeding_is_linked_not_dead_lettered(
    p: Pipeline,
) -> None:
    p.send("UserChanged", user_event("conv", "C1", 1, first_name="Cai"))
    assert final(p, "conv", "C1", 1)["status"] == "LINKED"
    set_faults(
        p, "conv", convert_prospect=FaultSpec(apply_then_timeout_rate=1.0, hang_s=HANG, limit=1)
    )
    p.send("UserChanged", user_event("conv", "C1", 2, first_name="Cai", user_type="MEMBER"))
    linked = final(p, "conv", "C1", 2)
    set_faults(p, "conv")
    (member,) = records_of(p, "conv", externalId="C1")
    assert member["_kind"] == "member"
    assert linked["status"] == "LINKED" and linked["receiver_id"] == member["id"]
    # Later changes to the member still reach it.
    p.send("UserChanged", user_event("conv", "C1", 3, first_name="Caius", user_type="MEMBER"))
    assert final(p, "conv", "C1", 3)["status"] == "LINKED"
    (member,) = records_of(p, "conv", externalId="C1")
    assert member["firstName"] == "Caius"
    assert not [d for d in p.dead_letters() if d["client_id"] == "conv"]


def test_a_create_only_lead_source_that_timed_out_is_linked_on_the_conflict(p: Pipeline) -> None:
    set_faults(
        p, "lsco", create_lead_source=FaultSpec(apply_then_timeout_rate=1.0, hang_s=HANG, limit=1)
    )
    p.send("LeadSourceChanged", lead_source_event("lsco", "LS1", 1, "Radio"))
    linked = final(p, "lsco", "LS1", 1)
    set_faults(p, "lsco")
    sources = p.receiver_state("lsco")["lead_sources"]
    assert [s["name"] for s in sources.values()] == ["Radio"]
    assert linked["status"] == "LINKED" and linked["receiver_id"] in sources
    # Prospects go out with it.
    p.send("UserChanged", user_event("lsco", "U9", 1, lead_source_id="LS1"))
    assert final(p, "lsco", "U9", 1)["status"] == "LINKED"
    (prospect,) = records_of(p, "lsco", externalId="U9")
    assert prospect["leadSourceId"] == linked["receiver_id"]


def test_an_idempotency_key_makes_a_repeat_after_a_timeout_harmless(p: Pipeline) -> None:
    # This receiver has no lookup: only the key keeps the retried create from duplicating.
    set_faults(
        p, "idem", create_prospect=FaultSpec(apply_then_timeout_rate=1.0, hang_s=HANG, limit=1)
    )
    p.send("UserChanged", user_event("idem", "I1", 1, first_name="Ida"))
    wait_for("the create to be repeated", lambda: p.calls("idem").get("create_prospect", 0) >= 2)
    set_faults(p, "idem")
    linked = final(p, "idem", "I1", 1)
    (ida,) = records_of(p, "idem", externalId="I1")
    assert linked["status"] == "LINKED" and linked["receiver_id"] == ida["id"]


def test_no_receiver_record_is_linked_to_two_users(p: Pipeline) -> None:
    links: Counter[tuple[str, str]] = Counter()
    latest: dict[tuple[str, str], str | None] = {}
    for outcome in p.outcomes():
        if outcome["entity"] == "USER" and outcome["status"] == "LINKED":
            latest[(outcome["client_id"], outcome["intouch_id"])] = outcome["receiver_id"]
    for (client_id, _), receiver_id in latest.items():
        links[(client_id, str(receiver_id))] += 1
    assert latest and all(n == 1 for n in links.values()), links


@pytest.fixture
def p(pipeline: Pipeline) -> Pipeline:
    return pipeline


def test_outcome_and_dead_letter_writes_that_fail_stop_the_worker_and_lose_nothing(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    from confluent_kafka.admin import (  # type: ignore[attr-defined]
        AdminClient,
        AlterConfigOpType,
        ConfigEntry,
        ConfigResource,
    )

    def limit(topics: list[str], max_bytes: str | None) -> None:
        admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
        op = AlterConfigOpType.SET if max_bytes else AlterConfigOpType.DELETE
        entry = ConfigEntry("max.message.bytes", max_bytes or "", incremental_operation=op)
        resources = [ConfigResource("TOPIC", t, incremental_configs=[entry]) for t in topics]
        for future in admin.incremental_alter_configs(resources).values():
            future.result(timeout=30)

    with running_pipeline(kafka_bootstrap, tmp_path, CONNECTOR_PUBLISH_TIMEOUT="3") as p:
        p.add_receiver("stuck")
        p.start_worker()
        p.send("UserChanged", user_event("stuck", "S0", 1))
        assert p.wait_outcome("stuck", "S0", 1)["status"] == "LINKED"
        written = [p.topic(p.topics.outcomes_topic), p.topic(p.topics.dlq_topic)]
        limit(written, "100")  # no outcome or dead letter fits any more
        for n in range(1, 6):
            p.send("UserChanged", user_event("stuck", f"S{n}", 1))
        worker = p.worker
        assert worker is not None
        wait_for("the worker to stop", lambda: worker.poll() is not None, timeout=60)
        assert worker.returncode == 75, p.worker_log()[-3000:]
        assert "the worker stops (exit 75)" in p.worker_log()
        assert len(records_of(p, "stuck")) == 1  # the marker comes first: nothing was called
        limit(written, None)
        p.start_worker()
        for n in range(1, 6):
            assert p.wait_outcome("stuck", f"S{n}", 1, timeout=90)["status"] == "LINKED"
        ids = Counter(r["externalId"] for r in records_of(p, "stuck"))
        assert ids == Counter(f"S{n}" for n in range(6))
