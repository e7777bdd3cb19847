"""`connector generate`: produce a seeded InTouch scenario onto the inbound topics."""

from __future__ import annotations

import contextlib
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from typing import Any, get_args

import click

from demo.scenario import Entity, InboundEvent, PhaseChoice, Scenario, build_scenario
from streams.avro.codec import Codecs, default_codecs
from streams.exceptions import ConnectorError
from streams.kafka import clients
from streams.settings import KafkaSettings, Settings, TopicSettings

DEFAULT_FLUSH_TIMEOUT = 60.0

__all__ = ["Scenario", "build_scenario", "generate", "produce_scenario", "topic_for"]


def topic_for(entity: Entity, topics: TopicSettings) -> str:
    """The inbound topic of an entity kind."""
    base = {
        "USER": topics.users_topic,
        "STAFF": topics.staff_topic,
        "LEAD_SOURCE": topics.lead_sources_topic,
    }[entity]
    return topics.name(base)


#: Batching for a bulk load; the client factory makes every producer idempotent and murmur2.
GENERATOR_PRODUCER = {"linger.ms": 5, "compression.type": "lz4"}


class _Pace:
    """Spreads sends evenly at `rate` events/s; no rate means as fast as the broker takes them."""

    def __init__(self, rate: float | None) -> None:
        if rate is not None and rate <= 0:
            raise ValueError(f"rate must be positive, not {rate}")
        self.interval = None if rate is None else 1.0 / rate
        self.started = time.monotonic()

    def wait_for(self, index: int, idle: Callable[[float], Any]) -> None:
        if self.interval is None:
            return
        due = self.started + index * self.interval
        while (left := due - time.monotonic()) > 0:
            idle(min(left, 0.1))  # serve delivery reports while waiting


def produce_scenario(
    bootstrap: str,
    kafka_settings: KafkaSettings,
    topics: TopicSettings,
    events: Sequence[InboundEvent],
    rate: float | None = None,
    progress: bool = False,
    *,
    codecs: Codecs | None = None,
    flush_timeout: float = DEFAULT_FLUSH_TIMEOUT,
) -> dict[str, int]:
    """Produce `events` in order, keyed by entity; return the count per topic name.

    Raises `ConnectorError` when any message was not delivered.
    """
    from confluent_kafka import KafkaError, Message

    codecs = codecs or default_codecs()
    key_codec = codecs["EntityKey"]
    failures: list[str] = []

    def delivered(err: KafkaError | None, msg: Message) -> None:
        if err is not None:
            failures.append(f"{msg.topic()}: {err.str()}")

    producer = clients.producer(bootstrap, kafka_settings, GENERATOR_PRODUCER)
    for topic in {topic_for(e.entity, topics) for e in events}:
        # A missing topic fails now, saying what to run, not after the flush timeout.
        clients.partition_count(producer, topic, bootstrap, flush_timeout)
    counts: Counter[str] = Counter()
    pace = _Pace(rate)
    with _progress_bar(len(events), progress) as advance:
        for index, event in enumerate(events):
            pace.wait_for(index, producer.poll)
            topic = topic_for(event.entity, topics)
            key = key_codec.encode(event.key)
            value = codecs[event.subject].encode(event.value)
            while True:
                try:
                    producer.produce(topic, key=key, value=value, on_delivery=delivered)
                    break
                except BufferError:
                    producer.poll(0.1)  # local queue full: let deliveries drain it
            producer.poll(0)
            counts[topic] += 1
            advance()
            if failures:
                break
        left = producer.flush(flush_timeout)
    if failures:
        raise ConnectorError(f"{len(failures)} message(s) not delivered, first: {failures[0]}")
    if left:
        raise ConnectorError(f"{left} message(s) still undelivered after {flush_timeout:g}s")
    return dict(counts)


@contextlib.contextmanager
def _progress_bar(total: int, enabled: bool) -> Iterator[Callable[[], None]]:
    """A rich progress bar on stderr, advanced by the yielded callable; or nothing."""
    if not enabled:
        yield lambda: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (TextColumn("producing"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("events", total=total)
        yield lambda: bar.advance(task)


def _client(_ctx: click.Context, _param: click.Parameter, value: str) -> str:
    if not value.strip():
        raise click.BadParameter("give the InTouch client ID, e.g. 100")
    return value.strip()


def _clubs(_ctx: click.Context, _param: click.Parameter, value: str) -> list[str]:
    clubs = [c.strip() for c in value.split(",") if c.strip()]
    if not clubs:
        raise click.BadParameter("give at least one club ID, e.g. 7,8,9")
    return clubs


@click.command("generate")
@click.option(
    "--client", "client_id", default="100", show_default=True, callback=_client,
    help="InTouch client.",
)  # fmt: skip
@click.option(
    "--clubs", default="7,8,9", show_default=True, callback=_clubs, help="InTouch club IDs."
)
@click.option("--events", default=5000, show_default=True, type=click.IntRange(min=10))
@click.option("--seed", default=42, show_default=True, type=int)
@click.option("--rate", type=click.FloatRange(min=0, min_open=True), help="Events/s (default max).")
@click.option(
    "--phase",
    type=click.Choice(list(get_args(PhaseChoice))),
    default="all",
    show_default=True,
    help="reference = staff and lead sources only, users = user changes only (--events "
    "counts both: a phase produces its part of them).",
)
@click.option("--no-progress", is_flag=True, help="No progress bar.")
@click.pass_obj
def generate(
    settings: Settings,
    client_id: str,
    clubs: list[str],
    events: int,
    seed: int,
    rate: float | None,
    phase: PhaseChoice,
    no_progress: bool,
) -> None:
    """Produce a seeded, realistic InTouch event stream for one client."""
    from streams.cli.common import fail, resolve_bootstrap, say

    scenario = build_scenario(seed, events, client_id, clubs)
    chosen = scenario.phase(phase)
    try:
        bootstrap = resolve_bootstrap(settings)
        started = time.monotonic()
        counts = produce_scenario(
            bootstrap, settings.kafka, settings.topics, chosen, rate, progress=not no_progress
        )
    except ConnectorError as exc:
        fail(str(exc))
    seconds = time.monotonic() - started
    say(f"client {client_id}, clubs {','.join(clubs)}, seed {seed}, phase {phase} -> {bootstrap}")
    for topic, count in sorted(counts.items()):
        click.echo(f"{topic}\t{count}")
    total = sum(counts.values())
    click.echo(f"total\t{total}\t{seconds:.2f}s\t{total / max(seconds, 1e-9):.0f} events/s")
    if phase != "all":
        say(f"{total} of the scenario's {events} events are in phase {phase}")
