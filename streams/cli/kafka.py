"""`connector kafka` and `connector topics`: the local broker and the design topics."""

from __future__ import annotations

import json
import sys
import time

import click

from streams.cli.common import fail, resolve_bootstrap, say
from streams.exceptions import ConnectorError, LocalKafkaError
from streams.kafka.jars import cache_size
from streams.kafka.local import LocalKafka
from streams.settings import Settings


# -- kafka -------------------------------------------------------------------
@click.group()
def kafka() -> None:
    """The local single-node Apache Kafka broker (KRaft, 127.0.0.1)."""


@kafka.command("up")
@click.option("--port", type=int, default=None, help="Broker port (default: a free one).")
@click.pass_obj
def kafka_up(settings: Settings, port: int | None) -> None:
    """Start the local broker (or reuse the running one); print its bootstrap address."""
    local = LocalKafka(settings.local_kafka)
    started = time.monotonic()
    try:
        info = local.up(port=port, progress=say)
    except LocalKafkaError as exc:
        fail(str(exc))
    say(
        f"Kafka {info.version} ready in {time.monotonic() - started:.1f}s "
        f"(state {local.state_dir}, log {local.log_file}, "
        f"jar cache {cache_size(settings.local_kafka) / 1e6:.0f} MB)"
    )
    click.echo(info.bootstrap)


@kafka.command("down")
@click.pass_obj
def kafka_down(settings: Settings) -> None:
    """Stop the broker that `kafka up` started (and only that one)."""
    stopped = LocalKafka(settings.local_kafka).down()
    say("stopped the local broker" if stopped else "no local broker was running")


@kafka.command("status")
@click.pass_obj
def kafka_status(settings: Settings) -> None:
    """Exit 0 and print the bootstrap address when the local broker runs, 1 otherwise."""
    info = LocalKafka(settings.local_kafka).running()
    if not info:
        say("the local broker is not running")
        sys.exit(1)
    click.echo(info.bootstrap)


# -- topics ------------------------------------------------------------------
@click.group()
def topics() -> None:
    """The connector's topics."""


@topics.command("ensure")
@click.pass_obj
def topics_ensure(settings: Settings) -> None:
    """Create every design topic that is missing; report partition-count mismatches."""
    from streams.kafka.topics import design_topics, ensure_topics

    try:
        bootstrap = resolve_bootstrap(settings)
        result = ensure_topics(bootstrap, settings.kafka, design_topics(settings.topics), say)
    except ConnectorError as exc:
        fail(str(exc))
    say(f"{len(result.created)} created, {len(result.existing)} already there on {bootstrap}")
    for problem in result.mismatched:
        click.secho(f"error: {problem} (left untouched)", fg="red", err=True)
    if result.mismatched:
        sys.exit(1)


@topics.command("list")
@click.pass_obj
def topics_list(settings: Settings) -> None:
    """Print the design topics with partitions and configs."""
    from streams.kafka.topics import design_topics

    for spec in design_topics(settings.topics):
        click.echo(f"{spec.name}\t{spec.partitions}\t{json.dumps(spec.config)}\t{spec.purpose}")
