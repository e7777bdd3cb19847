"""Every rule of the receiver guide, end to end: real Kafka, a real worker, real HTTP receivers."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from adapters.reference.server import ReceiverMode
from tests.integration.harness import (
    Pipeline,
    running_pipeline,
    staff_event,
    user_event,
)

CLIENTS = {
    "full": ReceiverMode.FULL,
    "save": ReceiverMode.SAVE_ONLY,
    "lslist": ReceiverMode.LEAD_SOURCES_LIST_ONLY,
    "lscreate": ReceiverMode.LEAD_SOURCES_CREATE_ONLY,
    "nostaff": ReceiverMode.NO_STAFF,
    "byemail": ReceiverMode.STAFF_BY_EMAIL_ONLY,
    "noupd": ReceiverMode.NO_LEAD_SOURCE_UPDATE,
}


@pytest.fixture(scope="module")
def pipeline(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pipeline]:
    """One worker for the module, one tenant (and reference receiver) per receiver mode."""
    with running_pipeline(kafka_bootstrap, tmp_path_factory.mktemp("pipeline")) as p:
        for client_id, mode in CLIENTS.items():
            p.add_receiver(client_id, mode)
        p.start_worker()
        yield p


def test_the_guides_staff_example_literally(pipeline: Pipeline) -> None:
    pipeline.seed_staff("full", "9999", "jstaff@club.com", "John Staff")
    pipeline.send("StaffChanged", staff_event("full", "1111", 1, email=" JStaff@Club.com "))
    linked = pipeline.wait_outcome("full", "1111", 1)
    assert (linked["status"], linked["receiver_id"]) == ("LINKED", "9999")

    pipeline.send("UserChanged", user_event("full", "5001", 1, staff_owner_id="1111"))
    pipeline.wait_outcome("full", "5001", 1)
    (pete,) = [p for p in pipeline.people("full") if p.get("externalId") == "5001"]
    assert (pete["firstName"], pete["lastName"]) == ("Pete", "Prospect")
    assert pete["staffOwnerId"] == "9999"
    staff = pipeline.receiver_state("full")["staff"]
    assert set(staff) == {"9999"}  # never creates or updates staff
    assert staff["9999"]["emailAddress"] == "jstaff@club.com"


def test_an_unmatched_staff_links_nothing_and_pete_arrives_without_owner(
    pipeline: Pipeline,
) -> None:
    pipeline.send("StaffChanged", staff_event("full", "1112", 1, email="nobody@club.com"))
    assert pipeline.wait_outcome("full", "1112", 1)["status"] == "UNLINKED"
    pipeline.send("UserChanged", user_event("full", "5002", 1, staff_owner_id="1112"))
    pipeline.wait_outcome("full", "5002", 1)
    (pete,) = [p for p in pipeline.people("full") if p.get("externalId") == "5002"]
    assert pete.get("staffOwnerId") is None
    assert len(pipeline.receiver_state("full")["staff"]) <= 1  # never creates staff
