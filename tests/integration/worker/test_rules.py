"""Every rule of the receiver guide, end to end: real Kafka, a real worker, real HTTP receivers."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from confluent_kafka import Producer

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
from tests.secret_values import PIPELINE_RECEIVER_SECRET

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
    workdir = tmp_path_factory.mktemp("pipeline")
    metrics = str(free_port())
    with running_pipeline(kafka_bootstrap, workdir, CONNECTOR_METRICS_PORT=metrics) as p:
        for client_id, mode in CLIENTS.items():
            # The main receiver wants a password, as real ones do.
            secret = PIPELINE_RECEIVER_SECRET if client_id == "full" else None
            p.add_receiver(client_id, mode, secret=secret)
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


def person(pipeline: Pipeline, client_id: str, intouch_id: str) -> dict[str, Any]:
    (found,) = [p for p in pipeline.people(client_id) if p.get("externalId") == intouch_id]
    return found


def test_prospects_are_created_then_updated_and_two_quick_changes_create_once(
    pipeline: Pipeline,
) -> None:
    before = pipeline.calls("full")
    pipeline.send("UserChanged", user_event("full", "6001", 1, first_name="Ann"))
    pipeline.send("UserChanged", user_event("full", "6001", 2, first_name="Anna"))
    pipeline.wait_outcome("full", "6001", 2)
    after = pipeline.calls("full")
    assert after.get("create_prospect", 0) - before.get("create_prospect", 0) == 1
    assert after.get("update_prospect", 0) - before.get("update_prospect", 0) == 1
    assert after.get("save_prospect", 0) == before.get("save_prospect", 0)
    assert person(pipeline, "full", "6001")["firstName"] == "Anna"


def test_save_only_receivers_get_save_for_prospects_and_members(pipeline: Pipeline) -> None:
    pipeline.send("UserChanged", user_event("save", "6101", 1, first_name="Sam"))
    pipeline.send("UserChanged", user_event("save", "6101", 2, first_name="Samuel"))
    pipeline.send("UserChanged", user_event("save", "6102", 1, user_type="MEMBER"))
    pipeline.wait_outcome("save", "6101", 2)
    pipeline.wait_outcome("save", "6102", 1)
    calls = pipeline.calls("save")
    assert calls.get("save_prospect") == 2
    assert calls.get("save_member") == 1
    assert not any(calls.get(c) for c in ("create_prospect", "update_prospect", "create_member"))
    assert person(pipeline, "save", "6101")["firstName"] == "Samuel"
    assert person(pipeline, "save", "6102")["_kind"] == "member"


def test_members_are_created_and_updated_and_prospects_convert(pipeline: Pipeline) -> None:
    pipeline.send("UserChanged", user_event("full", "6201", 1, user_type="MEMBER", city="Oslo"))
    pipeline.send("UserChanged", user_event("full", "6201", 2, user_type="MEMBER", city="Bergen"))
    pipeline.send("UserChanged", user_event("full", "6202", 1, first_name="Paul"))
    pipeline.wait_outcome("full", "6202", 1)
    pipeline.send(
        "UserChanged", user_event("full", "6202", 2, first_name="Paul", user_type="MEMBER")
    )
    converted = pipeline.wait_outcome("full", "6202", 2)
    assert converted["call"] == "convert_prospect"
    assert pipeline.wait_outcome("full", "6201", 2)["call"] == "update_member"
    assert person(pipeline, "full", "6201")["address"]["city"] == "Bergen"
    paul = [p for p in pipeline.people("full") if p.get("externalId") == "6202"]
    assert [p["_kind"] for p in paul] == ["member"]


def test_all_sixteen_fields_and_inactive_status_arrive(pipeline: Pipeline) -> None:
    fields = {
        "first_name": "Ida", "last_name": "Field", "status": "INACTIVE",
        "birthdate": dt.date(1991, 2, 3), "gender": "F", "address1": "1 Main St",
        "address2": None, "city": "Springfield", "zipcode": "12345", "state": "IL",
        "country": "US", "mobile_phone": "555-0100", "home_phone": "555-0101",
        "work_phone": "555-0102", "company": "Acme", "email": "ida@example.com",
    }  # fmt: skip
    pipeline.send("UserChanged", user_event("full", "6301", 1, **fields))
    pipeline.wait_outcome("full", "6301", 1)
    ida = person(pipeline, "full", "6301")
    assert (ida["firstName"], ida["lastName"], ida["status"]) == ("Ida", "Field", "inactive")
    assert ida["birthDate"] == "1991-02-03"
    assert (ida["gender"], ida["company"], ida["email"]) == ("F", "Acme", "ida@example.com")
    assert ida["address"] == {
        "line1": "1 Main St", "city": "Springfield", "postalCode": "12345",
        "region": "IL", "country": "US",
    } or ida["address"].get("line2") is None  # fmt: skip
    assert ida["address"]["line1"] == "1 Main St"
    assert ida["address"]["postalCode"] == "12345"
    assert ida["address"]["region"] == "IL"
    assert ida["address"]["country"] == "US"
    assert ida["phones"] == {"mobile": "555-0100", "home": "555-0101", "work": "555-0102"}


def test_a_receiver_without_staff_owner_support_gets_users_without_owner(
    pipeline: Pipeline,
) -> None:
    pipeline.send("StaffChanged", staff_event("nostaff", "1111", 1, email="jstaff@club.com"))
    pipeline.send("UserChanged", user_event("nostaff", "6401", 1, staff_owner_id="1111"))
    assert pipeline.wait_outcome("nostaff", "6401", 1)["status"] == "LINKED"
    assert person(pipeline, "nostaff", "6401").get("staffOwnerId") is None
    assert not pipeline.calls("nostaff").get("list_staff")


def test_staff_by_email_receivers_are_asked_by_email(pipeline: Pipeline) -> None:
    pipeline.seed_staff("byemail", "9999", "jstaff@club.com", "John Staff")
    pipeline.send("StaffChanged", staff_event("byemail", "1111", 1, email="JSTAFF@club.com"))
    assert pipeline.wait_outcome("byemail", "1111", 1)["receiver_id"] == "9999"
    assert pipeline.calls("byemail").get("staff_by_email") == 1
    assert not pipeline.calls("byemail").get("list_staff")


def test_the_guides_newspaper_example_in_list_and_create_mode(pipeline: Pipeline) -> None:
    pipeline.send("LeadSourceChanged", lead_source_event("full", "2222", 1, "Newspaper"))
    created = pipeline.wait_outcome("full", "2222", 1)
    assert created["status"] == "LINKED" and created["call"] == "create_lead_source"
    sources = pipeline.receiver_state("full")["lead_sources"]
    assert [s["name"] for s in sources.values()] == ["Newspaper"]
    # A second InTouch source with the same name, other case, matches instead of creating.
    pipeline.send("LeadSourceChanged", lead_source_event("full", "2223", 1, "NEWSPAPER"))
    matched = pipeline.wait_outcome("full", "2223", 1)
    assert (matched["call"], matched["receiver_id"]) == (
        "list_lead_sources",
        created["receiver_id"],
    )
    pipeline.send("UserChanged", user_event("full", "6501", 1, lead_source_id="2222"))
    pipeline.wait_outcome("full", "6501", 1)
    assert person(pipeline, "full", "6501")["leadSourceId"] == created["receiver_id"]
    # Rename: the receiver has an update call, so the name follows.
    pipeline.send("LeadSourceChanged", lead_source_event("full", "2222", 2, "Newspaper Ads"))
    assert pipeline.wait_outcome("full", "2222", 2)["call"] == "update_lead_source"
    assert pipeline.receiver_state("full")["lead_sources"][created["receiver_id"]]["name"] == (
        "Newspaper Ads"
    )


def test_list_only_lead_sources_match_or_fail_visibly(pipeline: Pipeline) -> None:
    existing = pipeline.seed_lead_source("lslist", "Radio")
    pipeline.send("LeadSourceChanged", lead_source_event("lslist", "2301", 1, "radio"))
    pipeline.send("LeadSourceChanged", lead_source_event("lslist", "2302", 1, "Billboard"))
    assert pipeline.wait_outcome("lslist", "2301", 1)["receiver_id"] == existing
    failed = pipeline.wait_outcome("lslist", "2302", 1)
    assert failed["status"] == "FAILED" and "Billboard" in failed["message"]
    assert len(pipeline.receiver_state("lslist")["lead_sources"]) == 1


def test_create_only_lead_sources_are_created(pipeline: Pipeline) -> None:
    pipeline.send("LeadSourceChanged", lead_source_event("lscreate", "2401", 1, "Walk-in"))
    created = pipeline.wait_outcome("lscreate", "2401", 1)
    assert (created["status"], created["call"]) == ("LINKED", "create_lead_source")
    assert not pipeline.calls("lscreate").get("list_lead_sources")


def test_a_rename_without_an_update_call_changes_nothing(pipeline: Pipeline) -> None:
    pipeline.send("LeadSourceChanged", lead_source_event("noupd", "2501", 1, "Flyer"))
    linked = pipeline.wait_outcome("noupd", "2501", 1)
    pipeline.send("LeadSourceChanged", lead_source_event("noupd", "2501", 2, "Flyers"))
    pipeline.send("UserChanged", user_event("noupd", "6601", 1, lead_source_id="2501"))
    pipeline.wait_outcome("noupd", "6601", 1)  # the rename was planned before this user
    names = [s["name"] for s in pipeline.receiver_state("noupd")["lead_sources"].values()]
    assert names == ["Flyer"]
    assert not pipeline.calls("noupd").get("update_lead_source")
    assert person(pipeline, "noupd", "6601")["leadSourceId"] == linked["receiver_id"]


def test_bad_input_goes_to_the_dlq_with_its_reason_and_the_pipeline_goes_on(
    pipeline: Pipeline,
) -> None:
    trace = [("traceparent", b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")]
    pipeline.send_raw(
        pipeline.topics.users_topic, b"k", b"\x00\x00\x00\x00\x02garbage", headers=trace
    )
    pipeline.send("UserChanged", user_event("nobody", "7001", 1))
    pipeline.send("UserChanged", user_event("full", "7002", 1, email="not-an-email"))
    # A 1 MB field: its command would be too large for Kafka, and so would a dead letter
    # keeping it whole (the worker stopped on it again and again).
    huge = user_event("full", "7004", 1, first_name="x" * 1_000_000)
    big = Producer(
        {
            "bootstrap.servers": pipeline.bootstrap,
            "compression.type": "lz4",
            "message.max.bytes": 2_000_000,
        }
    )
    key = {"client_id": "full", "entity": "USER", "intouch_id": "7004"}
    big.produce(
        pipeline.topic(pipeline.topics.users_topic),
        key=pipeline.codecs["EntityKey"].encode(key),
        value=pipeline.codecs["UserChanged"].encode(huge),
    )
    assert big.flush(30) == 0
    pipeline.send("UserChanged", user_event("full", "7003", 1, first_name="After"))
    pipeline.wait_outcome("full", "7003", 1)

    def four() -> list[dict[str, Any]] | None:
        rows = [
            r for r in pipeline.dead_letters()
            if r["value"] and (b"garbage" in r["value"] or b"7001" in r["value"]
                               or b"7002" in r["value"] or b"7004" in r["value"])
        ]  # fmt: skip
        return rows if len(rows) >= 4 else None

    rows = wait_for("four dead letters", four)
    by_class = {r["error_class"]: r for r in rows if b"7004" not in (r["value"] or b"")}
    (too_big,) = [r for r in rows if b"7004" in r["value"]]
    assert too_big["stage"] == "planner"
    assert "first_name is 1,000,000 characters" in too_big["error_message"]
    assert "kept cut to its first" in too_big["error_message"]
    assert by_class["RecordDecodeError"]["stage"] == "decode"
    assert by_class["RecordDecodeError"]["value"] == b"\x00\x00\x00\x00\x02garbage"
    assert by_class["RecordDecodeError"]["key"] == b"k"
    assert [(h["key"], h["value"]) for h in by_class["RecordDecodeError"]["headers"]] == trace
    assert by_class["RecordDecodeError"]["source_topic"] == pipeline.topic(
        pipeline.topics.users_topic
    )
    assert by_class["UnknownTenantError"]["stage"] == "planner"
    assert "'nobody'" in by_class["UnknownTenantError"]["error_message"]
    # An invalid email is refused before any receiver call, naming the field.
    rejected = by_class["InvalidEventError"]
    assert rejected["stage"] == "planner" and "not an email address" in rejected["error_message"]
    assert rejected["source_topic"] == pipeline.topic(pipeline.topics.users_topic)
    assert rejected["source_offset"] >= 0
    assert person(pipeline, "full", "7003")["firstName"] == "After"


def test_retryable_errors_are_retried_until_the_receiver_recovers(pipeline: Pipeline) -> None:
    receiver = pipeline.receivers["full"]
    receiver.call(lambda: receiver.receiver.faults.start_outage(1.5))
    pipeline.send("UserChanged", user_event("full", "7101", 1, first_name="Patient"))
    done = pipeline.wait_outcome("full", "7101", 1)
    assert done["status"] == "LINKED" and done["attempts"] > 1
    assert person(pipeline, "full", "7101")["firstName"] == "Patient"


def test_a_stale_replayed_command_never_overwrites_newer_data(pipeline: Pipeline) -> None:
    pipeline.send("UserChanged", user_event("full", "7201", 1, first_name="Old"))
    pipeline.send("UserChanged", user_event("full", "7201", 2, first_name="New"))
    pipeline.wait_outcome("full", "7201", 2)
    pipeline.send("UserChanged", user_event("full", "7201", 1, first_name="Old"))
    pipeline.send("UserChanged", user_event("full", "7201", 3, first_name="Newest"))
    pipeline.wait_outcome("full", "7201", 3)
    assert person(pipeline, "full", "7201")["firstName"] == "Newest"


def test_the_worker_counts_every_outcome_for_prometheus(pipeline: Pipeline) -> None:
    pipeline.send_raw(pipeline.topics.users_topic, b"k", b"not avro")
    pipeline.send("UserChanged", user_event("full", "7301", 1, first_name="Counted"))
    pipeline.wait_outcome("full", "7301", 1)
    url = f"http://127.0.0.1:{pipeline.extra_env['CONNECTOR_METRICS_PORT']}/metrics"

    def scrape() -> dict[str, float] | None:
        values = {}
        for line in httpx.get(url, timeout=5).text.splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                values[name] = float(value)
        dead = (
            'connector_dead_letters_total{client="unknown",error="RecordDecodeError",'
            'stage="decode"}'
        )
        return values if values.get(dead, 0) >= 1 else None

    values = wait_for("the dead letter to be counted", scrape)
    assert values['connector_outcomes_total{client="full",entity="USER",status="LINKED"}'] >= 1
    assert (
        values['connector_outcomes_total{client="full",entity="USER",status="PENDING_CREATE"}'] >= 1
    )
    assert values['connector_commands_total{kind="UPSERT_PROSPECT"}'] >= 1
    calls = (
        'connector_receiver_call_seconds_count{call="create_prospect",client="full",result="ok"}'
    )
    assert values[calls] >= 1
    assert values['connector_breaker_open{client="full"}'] == 0
    assert values["connector_link_table_keys"] >= 1
    assert values["process_resident_memory_bytes"] > 0
    assert (
        values[
            'connector_events_total{topic="' + pipeline.topic(pipeline.topics.users_topic) + '"}'
        ]
        >= 2
    )


def test_the_worker_keeps_its_files_in_its_data_dir(pipeline: Pipeline) -> None:
    pipeline.send("UserChanged", user_event("full", "7401", 1))
    pipeline.wait_outcome("full", "7401", 1)
    assert (pipeline.workdir / "data" / pipeline.app_id / "links").is_dir()
    assert (pipeline.workdir / "data" / pipeline.app_id / "faust").is_dir()
    assert not list(Path.cwd().glob(f"{pipeline.app_id}*")), "nothing in the working directory"
