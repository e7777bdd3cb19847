"""The links changelog written once from the outcomes and commands topics, for a deployment
whose links lived only in its outcomes (before the changelog existed)."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from pathlib import Path

from streams.avro.codec import default_codecs
from streams.exceptions import ConnectorError, RecordDecodeError
from streams.kafka import clients
from streams.kafka.reader import read_to_end
from streams.settings import KafkaSettings, TopicSettings
from streams.worker.links import LinkStore
from streams.worker.references import USER_KINDS, UserStates


def record_counts(bootstrap: str, kafka: KafkaSettings, topic: str) -> int:
    """Records a topic holds now (high minus low watermark, summed over partitions)."""

    probe = clients.consumer(bootstrap, kafka, "links-backfill-probe")
    try:
        with clients.kafka_errors(f"no offsets of {topic} from {bootstrap}"):
            count = clients.partition_count(probe, topic, bootstrap, 30)
            marks = clients.watermarks(probe, topic, count, 30)
    finally:
        probe.close()
    return sum(high - low for low, high in marks.values())


def changelog_missing(bootstrap: str, kafka: KafkaSettings, topics: TopicSettings) -> bool:
    """Whether outcomes exist but the links changelog is empty: a worker would start with no
    links (and create again what is linked) until `backfill_links` wrote it."""
    links = record_counts(bootstrap, kafka, topics.name(topics.links_topic))
    return links == 0 and record_counts(bootstrap, kafka, topics.name(topics.outcomes_topic)) > 0


def backfill_links(
    bootstrap: str,
    kafka: KafkaSettings,
    topics: TopicSettings,
    progress: Callable[[str], None] = lambda _: None,
) -> int:
    """Fold every outcome into rows (`LinkStore.apply`, as the workers did), give each user
    row its latest command (from the commands topic, as far as retention kept it), and write
    the rows to the empty changelog on their outcomes' partitions; return how many."""
    links_topic = topics.name(topics.links_topic)
    if record_counts(bootstrap, kafka, links_topic):
        raise ConnectorError(f"{links_topic} has rows already: nothing to backfill")
    codecs = default_codecs()
    with tempfile.TemporaryDirectory(prefix="links-backfill-") as scratch:
        store = LinkStore(Path(scratch))
        states = UserStates(Path(scratch), codecs["Command"])
        try:
            for message in read_to_end(bootstrap, kafka, [topics.name(topics.commands_topic)]):
                try:
                    command = codecs["Command"].decode(message.value())
                except RecordDecodeError:
                    continue
                if command["kind"] in USER_KINDS and command.get("user") is not None:
                    states.apply(message.value(), command, (message.partition(), message.offset()))
            progress("user states read from the commands")
            for message in read_to_end(bootstrap, kafka, [topics.name(topics.outcomes_topic)]):
                try:
                    outcome = codecs["Outcome"].decode(message.value())
                except RecordDecodeError:
                    continue
                store.apply(outcome, (message.partition(), message.offset()))
            progress("outcomes folded")
            producer = clients.producer(bootstrap, kafka)
            written = 0
            for key, value in store.rows():
                row = json.loads(value)
                if key.startswith("u/"):
                    client_id, intouch_id = key[2:].split("/", 1)
                    state = states.state(client_id, intouch_id)
                    if state is not None:
                        row["state"] = state
                producer.produce(
                    links_topic,
                    key=key.encode(),
                    value=json.dumps(row).encode(),
                    partition=row["position"][0],
                )
                producer.poll(0)
                written += 1
            if producer.flush(120):
                raise ConnectorError(f"not every row reached {links_topic}")
        finally:
            store.close()
            states.close()
    progress(f"{written} rows written to {links_topic}")
    return written
