"""Replay marks: the headers a replayed record carries, and the tries it already had."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass

#: Headers of a record sent again through the replay topic.
REPLAY_ID = "connector-replay-id"
REPLAY_SUBJECT = "connector-replay-subject"
REPLAY_TOPIC = "connector-replay-topic"
REPLAY_PARTITION = "connector-replay-partition"
REPLAY_OFFSET = "connector-replay-offset"
#: Set when the replayed record is a dead letter's: the ID of that dead letter.
REPLAY_DEAD_LETTER = "connector-replay-dead-letter-id"
#: The earlier tries of a record that was dead-lettered and replayed (JSON list, oldest first).
DEAD_LETTER_HISTORY = "connector-dead-letter-history"
#: Where a command was planned from (an inbound record, or a replayed one).
SOURCE_TOPIC = "connector-source-topic"
SOURCE_PARTITION = "connector-source-partition"
SOURCE_OFFSET = "connector-source-offset"

#: The replay subject of a dead-lettered command: the worker forwards it to the commands topic.
COMMAND_SUBJECT = "Command"
INBOUND_SUBJECTS = ("UserChanged", "StaffChanged", "LeadSourceChanged")

Headers = list[tuple[str, bytes | None]]

_MARK_HEADERS = frozenset(
    {
        REPLAY_ID,
        REPLAY_SUBJECT,
        REPLAY_TOPIC,
        REPLAY_PARTITION,
        REPLAY_OFFSET,
        REPLAY_DEAD_LETTER,
        DEAD_LETTER_HISTORY,
    }
)
_SOURCE_HEADERS = frozenset({SOURCE_TOPIC, SOURCE_PARTITION, SOURCE_OFFSET})


@dataclass(frozen=True)
class Position:
    """One record's place in Kafka."""

    topic: str
    partition: int
    offset: int

    def __str__(self) -> str:
        return f"{self.topic}[{self.partition}]@{self.offset}"


@dataclass(frozen=True)
class Attempt:
    """One earlier try of a record that ended in the dead-letter topic."""

    dead_letter_id: str
    failed_at: str
    stage: str
    error_class: str
    attempts: int


@dataclass(frozen=True)
class ReplayMark:
    """What a replayed record says about itself."""

    replay_id: str
    subject: str
    source: Position | None
    dead_letter_id: str | None = None
    history: tuple[Attempt, ...] = ()


def header(headers: Iterable[tuple[str, bytes | None]], name: str) -> str | None:
    """The last value of header `name`, as text (None when absent or not UTF-8)."""
    found = None
    for key, value in headers:
        if key == name and value is not None:
            try:
                found = value.decode()
            except UnicodeDecodeError:
                found = None
    return found


def _position(headers: Headers, topic: str, partition: str, offset: str) -> Position | None:
    name, part, off = header(headers, topic), header(headers, partition), header(headers, offset)
    if name is None or part is None or off is None:
        return None
    try:
        return Position(name, int(part), int(off))
    except ValueError:
        return None


def history_of(headers: Headers) -> tuple[Attempt, ...]:
    """The earlier tries listed in a record's headers (none when absent or unreadable)."""
    text = header(headers, DEAD_LETTER_HISTORY)
    if not text:
        return ()
    try:
        return tuple(Attempt(**row) for row in json.loads(text))
    except (ValueError, TypeError):
        return ()


def replay_mark(headers: Headers) -> ReplayMark | None:
    """The replay mark of a record, or None when it is no replay."""
    replay_id, subject = header(headers, REPLAY_ID), header(headers, REPLAY_SUBJECT)
    if replay_id is None or subject is None:
        return None
    return ReplayMark(
        replay_id,
        subject,
        _position(headers, REPLAY_TOPIC, REPLAY_PARTITION, REPLAY_OFFSET),
        header(headers, REPLAY_DEAD_LETTER),
        history_of(headers),
    )


def mark_headers(original: Headers, mark: ReplayMark) -> Headers:
    """`original` without any earlier replay mark, plus `mark` (the history is the mark's)."""
    kept = [(k, v) for k, v in original if k not in _MARK_HEADERS]
    marks: Headers = [(REPLAY_ID, mark.replay_id.encode()), (REPLAY_SUBJECT, mark.subject.encode())]
    if mark.source is not None:
        marks += [
            (REPLAY_TOPIC, mark.source.topic.encode()),
            (REPLAY_PARTITION, str(mark.source.partition).encode()),
            (REPLAY_OFFSET, str(mark.source.offset).encode()),
        ]
    if mark.dead_letter_id is not None:
        marks.append((REPLAY_DEAD_LETTER, mark.dead_letter_id.encode()))
    if mark.history:
        rows = [asdict(attempt) for attempt in mark.history]
        marks.append((DEAD_LETTER_HISTORY, json.dumps(rows, separators=(",", ":")).encode()))
    return kept + marks


def command_headers(source: Position, headers: Headers) -> Headers:
    """Headers of a command planned from the record at `source`: where it came from, and the
    replay mark and history of that record, so a dead letter of the command keeps them."""
    carried = [(k, v) for k, v in headers if k in _MARK_HEADERS]
    return [
        (SOURCE_TOPIC, source.topic.encode()),
        (SOURCE_PARTITION, str(source.partition).encode()),
        (SOURCE_OFFSET, str(source.offset).encode()),
        *carried,
    ]


def planned_from(headers: Headers) -> Position | None:
    """The record a command was planned from, when its headers say so."""
    return _position(headers, SOURCE_TOPIC, SOURCE_PARTITION, SOURCE_OFFSET)


def without(headers: Headers, prefixes: Sequence[str]) -> Headers:
    """`headers` without those whose name starts with one of `prefixes`."""
    return [(k, v) for k, v in headers if not k.startswith(tuple(prefixes))]
