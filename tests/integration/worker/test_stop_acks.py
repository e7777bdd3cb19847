"""A worker stopped while an event's commands are not written yet does not commit past it.

Faust acknowledges the events of a `take_events` batch (and an `events()` event) in a
`finally`, so an agent cancelled by a stopping worker would have its unfinished events
acknowledged, and the consumer's last commit on the way out would skip them: the changes
would never be planned. The planner holds each event until its commands are acknowledged.
"""

from __future__ import annotations

from pathlib import Path

from confluent_kafka.admin import (  # type: ignore[attr-defined]
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
)

from streams.kafka.reader import read_to_end
from tests.integration.harness import running_pipeline, user_event, wait_for

CLIENT = "stopping"


def limit(bootstrap: str, topic: str, max_bytes: str | None) -> None:
    """Make every record too large for `topic` (or lift that)."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    op = AlterConfigOpType.SET if max_bytes else AlterConfigOpType.DELETE
    entry = ConfigEntry("max.message.bytes", max_bytes or "", incremental_operation=op)
    resource = ConfigResource("TOPIC", topic, incremental_configs=[entry])
    for future in admin.incremental_alter_configs([resource]).values():
        future.result(timeout=30)


def test_a_worker_stopped_before_an_events_commands_are_written_does_not_commit_past_it(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    with running_pipeline(kafka_bootstrap, tmp_path) as p:
        p.add_receiver(CLIENT)
        p.start_worker()
        p.send("UserChanged", user_event(CLIENT, "U1", 1))
        assert p.wait_outcome(CLIENT, "U1", 1)["status"] == "LINKED"

        commands = p.topic(p.topics.commands_topic)
        limit(kafka_bootstrap, commands, "100")  # no command fits: the planner keeps trying
        p.send("UserChanged", user_event(CLIENT, "U2", 1))
        wait_for(
            "the planner to be trying to write U2's command",
            lambda: f"writing a Command to {commands} failed" in p.worker_log(),
        )
        p.stop_worker()  # SIGTERM while the command is not written

        (where,) = [
            (m.partition(), m.offset())
            for m in read_to_end(p.bootstrap, p.kafka, [p.topic(p.topics.users_topic)])
            if b"U2" in (m.value() or b"")
        ]
        committed = p.committed(p.topics.users_topic).get(where[0], 0)
        assert committed <= where[1], f"committed {committed} past U2's event at {where}"

        limit(kafka_bootstrap, commands, None)
        p.start_worker()
        assert p.wait_outcome(CLIENT, "U2", 1)["status"] == "LINKED"
