"""Whether every user's latest command carries the links the outcomes log ends with, and
how many the worker planned again."""

from __future__ import annotations

from streams.avro.codec import default_codecs
from streams.core.model import SETTLING_STATUSES
from streams.core.replay import SOURCE_TOPIC
from streams.kafka.reader import read_to_end
from streams.settings import KafkaSettings, TopicSettings

_USER_KINDS = frozenset({"UPSERT_PROSPECT", "UPSERT_MEMBER", "CONVERT_TO_MEMBER"})


def users_behind_their_links(
    bootstrap: str, kafka: KafkaSettings, topics: TopicSettings, *, staff_owner: bool
) -> int:
    """Users whose latest command names another staff owner or lead source than today's links
    (the worker is still to plan them again); `staff_owner`: the receiver takes owners."""
    codecs = default_codecs()
    links: dict[tuple[str, str], str | None] = {}
    for message in read_to_end(bootstrap, kafka, [topics.name(topics.outcomes_topic)]):
        row = codecs["Outcome"].decode(message.value())
        if row["entity"] != "USER" and row["status"] in SETTLING_STATUSES:
            links[(row["entity"], row["intouch_id"])] = row["receiver_id"]
    latest: dict[str, tuple[tuple[int, int], dict[str, object]]] = {}
    for message in read_to_end(bootstrap, kafka, [topics.name(topics.commands_topic)]):
        command = codecs["Command"].decode(message.value())
        if command["kind"] not in _USER_KINDS:
            continue
        rank = (command["version"], message.offset())  # one user: one partition, in order
        if command["intouch_id"] not in latest or rank > latest[command["intouch_id"]][0]:
            latest[command["intouch_id"]] = (rank, command)
    behind = 0
    for _, command in latest.values():
        user = command["user"]
        assert isinstance(user, dict)
        owner, source = user.get("staff_owner_id"), user.get("lead_source_id")
        want_owner = links.get(("STAFF", owner)) if owner and staff_owner else None
        want_source = links.get(("LEAD_SOURCE", source)) if source else None
        carried = (command["staff_owner_receiver_id"], command["lead_source_receiver_id"])
        behind += carried != (want_owner, want_source)
    return behind


def replanned_commands(bootstrap: str, kafka: KafkaSettings, topics: TopicSettings) -> int:
    """User commands the worker planned again on its own: from no inbound record."""
    count = 0
    for message in read_to_end(bootstrap, kafka, [topics.name(topics.commands_topic)]):
        names = {name for name, _ in message.headers() or []}
        count += SOURCE_TOPIC not in names
    return count
