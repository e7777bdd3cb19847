"""Dead letters: read, filter and explain them, and send them again through the replay topic."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from typing import Any

from streams.avro.codec import Codecs
from streams.core.model import Record
from streams.core.replay import (
    COMMAND_SUBJECT,
    REPLAY_DEAD_LETTER,
    REPLAY_ID,
    REPLAY_SUBJECT,
    Attempt,
    Headers,
    Position,
    ReplayMark,
    header,
    history_of,
    mark_headers,
    planned_from,
    replay_mark,
    without,
)
from streams.exceptions import ConfigurationError, RecordDecodeError
from streams.kafka.reader import read_one, read_to_end
from streams.ops.replay import flush, inbound_topics, produce
from streams.settings import KafkaSettings, TopicSettings

#: Headers of a parked command that a fresh try must not inherit (its park budget restarts).
PARKED_HEADER_PREFIX = "connector-parked-"


@dataclass(frozen=True)
class Replayed:
    """One time a dead letter was sent again: the replay, when, and where its copy went."""

    replay_id: str
    at: dt.datetime
    position: Position


@dataclass(frozen=True)
class DeadLetterEntry:
    """A dead letter as read from the DLQ, with what its key says and its replays."""

    record: Record
    position: Position
    key: Record | None
    replays: tuple[Replayed, ...] = ()

    @property
    def id(self) -> str:
        return str(self.record["dead_letter_id"])

    @property
    def headers(self) -> Headers:
        return [(h["key"], h["value"]) for h in self.record["headers"]]

    @property
    def client(self) -> str | None:
        found = self.record.get("client_id") or (self.key or {}).get("client_id")
        return None if found is None else str(found)

    @property
    def entity(self) -> str:
        return f"{self.key['entity']} {self.key['intouch_id']}" if self.key else "-"

    @property
    def source(self) -> Position:
        r = self.record
        return Position(r["source_topic"], r["source_partition"], r["source_offset"])


def _decode_key(codecs: Codecs, key: bytes | None) -> Record | None:
    try:
        return codecs["EntityKey"].decode(key)
    except RecordDecodeError:
        return None


def load_dead_letters(
    bootstrap: str, kafka: KafkaSettings, topics: TopicSettings, codecs: Codecs
) -> list[DeadLetterEntry]:
    """Every dead letter, oldest first, each with the replays that carried it again (found by
    their header naming it: the DLQ itself is append-only)."""
    replays: dict[str, list[Replayed]] = {}
    for message in read_to_end(bootstrap, kafka, [topics.name(topics.replay_topic)]):
        headers = list(message.headers() or [])
        dead_letter_id = header(headers, REPLAY_DEAD_LETTER)
        if dead_letter_id is None:
            continue
        _, ms = message.timestamp()
        replays.setdefault(dead_letter_id, []).append(
            Replayed(
                header(headers, REPLAY_ID) or "?",
                dt.datetime.fromtimestamp(ms / 1000, dt.UTC),
                Position(message.topic(), message.partition(), message.offset()),
            )
        )
    entries = []
    for message in read_to_end(bootstrap, kafka, [topics.name(topics.dlq_topic)]):
        try:
            record = codecs["DeadLetter"].decode(message.value())
        except RecordDecodeError:
            continue  # not ours to explain: the DLQ holds only DeadLetter records
        entries.append(
            DeadLetterEntry(
                record,
                Position(message.topic(), message.partition(), message.offset()),
                _decode_key(codecs, record["key"]),
                tuple(replays.get(str(record["dead_letter_id"]), ())),
            )
        )
    return sorted(entries, key=lambda e: (e.record["failed_at"], e.id))


def matches(
    entry: DeadLetterEntry,
    *,
    client: str | None = None,
    error: str | None = None,
    stage: str | None = None,
    since: dt.datetime | None = None,
    ids: Iterable[str] = (),
) -> bool:
    """Whether a dead letter passes every filter given (error classes match case-blind)."""
    wanted = tuple(ids)
    return (
        (client is None or entry.client == client)
        and (error is None or str(entry.record["error_class"]).lower() == error.lower())
        and (stage is None or entry.record["stage"] == stage)
        and (since is None or entry.record["failed_at"] >= since)
        and (not wanted or any(entry.id.startswith(i) for i in wanted))
    )


def subject_of(entry: DeadLetterEntry, topics: TopicSettings) -> str | None:
    """What the dead-lettered record is: an inbound change's subject, or a Command."""
    topic = entry.record["source_topic"]
    inbound = inbound_topics(topics)
    if topic in inbound:
        return inbound[topic]
    if topic in (topics.name(topics.commands_topic), topics.name(topics.parked_topic)):
        return COMMAND_SUBJECT
    if topic == topics.name(topics.replay_topic):
        return header(entry.headers, REPLAY_SUBJECT)
    return None


def find(entries: list[DeadLetterEntry], wanted: str) -> DeadLetterEntry:
    """The one dead letter whose ID is or starts with `wanted`."""
    found = [e for e in entries if e.id == wanted]
    found = found or [e for e in entries if e.id.startswith(wanted)]
    if not found:
        raise ConfigurationError(f"no dead letter {wanted}")
    if len(found) > 1:
        raise ConfigurationError(f"{wanted} names {len(found)} dead letters: give more of the ID")
    return found[0]


def reinjection(
    entry: DeadLetterEntry, replay_id: str, topics: TopicSettings
) -> tuple[bytes | None, bytes | None, Headers] | None:
    """The key, value and headers that send a dead letter again: its record as it was, with a
    replay mark naming it and the tries it had (None when its subject is unknown)."""
    subject = subject_of(entry, topics)
    if subject is None:
        return None
    r = entry.record
    this_try = Attempt(
        entry.id, r["failed_at"].isoformat(), r["stage"], r["error_class"], r["attempts"]
    )
    mark = ReplayMark(
        replay_id, subject, entry.source, entry.id, (*history_of(entry.headers), this_try)
    )
    headers = mark_headers(without(entry.headers, (PARKED_HEADER_PREFIX,)), mark)
    return r["key"], r["value"], headers


@dataclass
class DeadLetterReplay:
    """What `dlq replay` sent."""

    replay_id: str
    replayed: list[str]
    unknown: list[str]


def replay_dead_letters(
    bootstrap: str,
    kafka: KafkaSettings,
    topics: TopicSettings,
    entries: Iterable[DeadLetterEntry],
    *,
    dry_run: bool = False,
) -> DeadLetterReplay:
    """Send each dead letter again through the replay topic: the workers plan an inbound
    change, or put a command back on the commands topic."""
    from streams.kafka import clients

    result = DeadLetterReplay(f"replay-{uuid.uuid4().hex[:12]}", [], [])
    producer = None if dry_run else clients.producer(bootstrap, kafka)
    errors: list[str] = []
    target = topics.name(topics.replay_topic)
    for entry in entries:
        found = reinjection(entry, result.replay_id, topics)
        if found is None:
            result.unknown.append(entry.id)
            continue
        result.replayed.append(entry.id)
        if producer is not None:
            key, value, headers = found
            produce(producer, target, key, value, headers, errors)
    if producer is not None:
        flush(producer, errors)
    return result


def _text(value: bytes | None) -> str | None:
    if value is None:
        return None
    try:
        return value.decode()
    except UnicodeDecodeError:
        return "0x" + value.hex()


def _decoded(codecs: Codecs, subject: str | None, value: bytes | None) -> Any:
    if subject is None:
        return {"undecodable": "unknown subject", "bytes": len(value or b"")}
    try:
        return codecs[subject].decode(value)
    except RecordDecodeError as exc:
        return {"undecodable": str(exc), "bytes": len(value or b"")}


def explain(
    entry: DeadLetterEntry,
    codecs: Codecs,
    topics: TopicSettings,
    fetch: Callable[[Position], Any | None],
) -> dict[str, Any]:
    """Everything known about a dead letter: the decoded record, the error, its tries and
    replays, and for a command the InTouch event it came from (`fetch` reads one record)."""
    r = entry.record
    subject = subject_of(entry, topics)
    shown: dict[str, Any] = {
        "dead_letter_id": entry.id,
        "failed_at": r["failed_at"],
        "stage": r["stage"],
        "client_id": entry.client,
        "entity": entry.key,
        "error_class": r["error_class"],
        "error_message": r["error_message"],
        "attempts": r["attempts"],
        "dead_letter_position": str(entry.position),
        "source_position": str(entry.source),
        "subject": subject,
        "record": _decoded(codecs, subject, r["value"]),
        "headers": {k: _text(v) for k, v in entry.headers},
        "history": [asdict(a) for a in history_of(entry.headers)],
        "replays": [
            {"replay_id": x.replay_id, "at": x.at, "position": str(x.position)}
            for x in entry.replays
        ],
    }
    mark = replay_mark(entry.headers)
    if mark is not None:
        shown["replayed_from"] = {"replay_id": mark.replay_id, "source": str(mark.source)}
    if subject == COMMAND_SUBJECT and isinstance(shown["record"], dict):
        shown["intouch_event"] = _event_of_command(shown["record"], entry, codecs, topics, fetch)
    return shown


def _event_of_command(
    command: Record,
    entry: DeadLetterEntry,
    codecs: Codecs,
    topics: TopicSettings,
    fetch: Callable[[Position], Any],
) -> dict[str, Any]:
    """The InTouch change a command was planned from: the record at its source position when
    the command names one and it is still kept, else what the command carries of it."""
    carried = command.get("user") or command.get("staff") or command.get("lead_source")
    event: dict[str, Any] = {"cause_event_id": command.get("cause_event_id"), "carried": carried}
    origin = planned_from(entry.headers)
    if origin is None:
        event["note"] = (
            "the command names no source position (planned before commands carried one): "
            "the event is known by its ID and the copy the command carries"
        )
        return event
    event["planned_from"] = str(origin)
    message = fetch(origin)
    if message is None:
        event["note"] = f"{origin} is no longer kept (retention): shown as the command carries it"
        return event
    headers = list(message.headers() or [])
    mark = replay_mark(headers)
    subject = mark.subject if mark is not None else inbound_topics(topics).get(origin.topic)
    if mark is not None:
        event["replayed_from"] = str(mark.source)
    event["record"] = _decoded(codecs, subject, message.value())
    return event


def fetcher(bootstrap: str, kafka: KafkaSettings) -> Callable[[Position], Any | None]:
    """Reads the one record at a position (None when it is gone)."""
    return lambda at: read_one(bootstrap, kafka, at.topic, at.partition, at.offset)
