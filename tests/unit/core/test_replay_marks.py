"""Replay marks: headers written and read back, earlier tries kept, nothing else lost."""

from __future__ import annotations

from streams.core.replay import (
    DEAD_LETTER_HISTORY,
    REPLAY_ID,
    Attempt,
    Position,
    ReplayMark,
    command_headers,
    header,
    history_of,
    mark_headers,
    planned_from,
    replay_mark,
)

TRIED = Attempt("dl-1", "2026-11-27T12:00:00+00:00", "sink", "PermanentError", 1)


def test_a_mark_reads_back_as_written_and_keeps_the_records_own_headers() -> None:
    mark = ReplayMark("replay-1", "UserChanged", Position("t.users", 2, 41), "dl-1", (TRIED,))
    headers = mark_headers([("traceparent", b"00-ab")], mark)
    assert ("traceparent", b"00-ab") in headers
    assert replay_mark(headers) == mark


def test_a_second_replay_replaces_the_first_mark_instead_of_stacking_it() -> None:
    first = mark_headers([], ReplayMark("replay-1", "UserChanged", Position("t", 0, 1)))
    second = mark_headers(first, ReplayMark("replay-2", "UserChanged", Position("t", 0, 1)))
    assert [v for k, v in second if k == REPLAY_ID] == [b"replay-2"]
    assert replay_mark(second) == ReplayMark("replay-2", "UserChanged", Position("t", 0, 1))


def test_a_record_without_a_mark_is_no_replay_and_bad_history_reads_as_none() -> None:
    assert replay_mark([("traceparent", b"x")]) is None
    assert history_of([(DEAD_LETTER_HISTORY, b"not json")]) == ()
    assert header([("a", b"\xff")], "a") is None


def test_a_command_names_its_source_and_carries_the_replay_mark_and_history() -> None:
    marked = mark_headers(
        [("traceparent", b"x")],
        ReplayMark("replay-1", "UserChanged", Position("t.users", 0, 5), "dl-1", (TRIED,)),
    )
    headers = command_headers(Position("t.replay", 3, 9), marked)
    assert planned_from(headers) == Position("t.replay", 3, 9)
    assert replay_mark(headers) == replay_mark(marked)
    assert ("traceparent", b"x") not in headers
    assert planned_from([]) is None
