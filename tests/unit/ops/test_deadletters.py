"""Dead letters: filters, where each goes when replayed, and the tries it carries along."""

from __future__ import annotations

import datetime as dt
from typing import Any

from streams.core.replay import (
    COMMAND_SUBJECT,
    Attempt,
    Position,
    ReplayMark,
    history_of,
    mark_headers,
    replay_mark,
)
from streams.ops.deadletters import DeadLetterEntry, matches, reinjection, subject_of
from streams.settings import TopicSettings

TOPICS = TopicSettings(topic_prefix="p.")
FAILED_AT = dt.datetime(2026, 11, 27, 12, 0, tzinfo=dt.UTC)


def entry(
    topic: str, headers: list[tuple[str, bytes | None]] | None = None, **fields: Any
) -> DeadLetterEntry:
    record = {
        "dead_letter_id": "dl-2", "failed_at": FAILED_AT, "stage": "sink",
        "source_topic": topic, "source_partition": 1, "source_offset": 7, "key": b"k",
        "value": b"v", "headers": [{"key": k, "value": v} for k, v in headers or []],
        "error_class": "PermanentError", "error_message": "400", "attempts": 1,
        "client_id": "acme",
    }  # fmt: skip
    record.update(fields)
    key = {"client_id": "acme", "entity": "USER", "intouch_id": "42"}
    return DeadLetterEntry(record, Position("p.connector.dlq.v1", 0, 3), key)


def test_filters_match_client_error_case_blind_stage_since_and_id_prefix() -> None:
    e = entry("p.connector.commands.v1")
    assert matches(e, client="acme", error="permanenterror", stage="sink", ids=["dl-"])
    assert matches(e, since=FAILED_AT) and not matches(e, since=FAILED_AT + dt.timedelta(1))
    assert not matches(e, client="other")
    assert not matches(e, stage="decode")
    assert not matches(e, ids=["dl-3"])
    assert e.entity == "USER 42"


def test_the_subject_follows_the_source_topic_and_a_replayed_records_own_mark() -> None:
    assert subject_of(entry("p.intouch.staff.v1"), TOPICS) == "StaffChanged"
    assert subject_of(entry("p.connector.parked.v1"), TOPICS) == COMMAND_SUBJECT
    replayed = mark_headers([], ReplayMark("r-1", "LeadSourceChanged", None))
    assert subject_of(entry("p.connector.replay.v1", replayed), TOPICS) == "LeadSourceChanged"
    assert subject_of(entry("somebody.elses.topic"), TOPICS) is None
    assert reinjection(entry("somebody.elses.topic"), "r-2", TOPICS) is None


def test_a_reinjected_dead_letter_is_marked_and_lists_every_earlier_try() -> None:
    earlier = Attempt("dl-1", "2026-11-26T12:00:00+00:00", "sink", "PermanentError", 1)
    headers = mark_headers(
        [("connector-parked-at", b"1.0"), ("traceparent", b"t")],
        ReplayMark("r-1", COMMAND_SUBJECT, Position("p.connector.commands.v1", 1, 2), "dl-1",
                   (earlier,)),
    )  # fmt: skip
    found = reinjection(entry("p.connector.commands.v1", headers), "r-2", TOPICS)
    assert found is not None
    key, value, sent = found
    assert (key, value) == (b"k", b"v")
    mark = replay_mark(sent)
    assert mark is not None
    assert (mark.replay_id, mark.subject, mark.dead_letter_id) == ("r-2", COMMAND_SUBJECT, "dl-2")
    assert mark.source == Position("p.connector.commands.v1", 1, 7)
    assert [a.dead_letter_id for a in history_of(sent)] == ["dl-1", "dl-2"]
    assert ("traceparent", b"t") in sent
    assert not [k for k, _ in sent if k.startswith("connector-parked-")]
