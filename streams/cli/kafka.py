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
@click.option(
    "--secure",
    is_flag=True,
    help="Serve SASL_SSL only (SCRAM-SHA-512, a private CA); print the KAFKA_* to export.",
)
@click.pass_obj
def kafka_up(settings: Settings, port: int | None, secure: bool) -> None:
    """Start the local broker (or reuse the running one); print its bootstrap address,
    or with --secure the `export KAFKA_...` lines of a client."""
    local = LocalKafka(settings.local_kafka)
    started = time.monotonic()
    try:
        info = local.up(port=port, progress=say, secure=secure)
    except LocalKafkaError as exc:
        fail(str(exc))
    say(
        f"Kafka {info.version} ready in {time.monotonic() - started:.1f}s "
        f"(state {local.state_dir}, log {local.log_file}, "
        f"jar cache {cache_size(settings.local_kafka) / 1e6:.0f} MB)"
    )
    if not info.secure:
        click.echo(info.bootstrap)
        return
    say(
        f"SASL_SSL on {info.bootstrap}, user connector; the password is in "
        f"{local.material.password_file} (mode 0600), never printed. Export:"
    )
    for line in local.material.exports(info.bootstrap):
        click.echo(line)


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
    if info.secure:
        say(f"secured: SASL_SSL, CA {LocalKafka(settings.local_kafka).material.ca_pem}")
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
@click.option("--json", "as_json", is_flag=True, help="A JSON array instead of a table.")
@click.pass_obj
def topics_list(settings: Settings, as_json: bool) -> None:
    """Print the design topics with partitions, configs and purpose."""
    from streams.kafka.topics import design_topics

    specs = design_topics(settings.topics)
    if as_json:
        rows = [
            {"topic": s.name, "partitions": s.partitions, "config": dict(s.config),
             "purpose": s.purpose}
            for s in specs
        ]  # fmt: skip
        click.echo(json.dumps(rows, indent=2))
        return
    table = [("TOPIC", "PARTITIONS", "RETENTION", "CLEANUP", "PURPOSE")]
    for spec in specs:
        retention = spec.config.get("retention.ms")
        table.append(
            (
                spec.name,
                str(spec.partitions),
                _retention(retention),
                spec.config.get("cleanup.policy", "delete"),
                spec.purpose,
            )
        )
    widths = [max(len(row[i]) for row in table) for i in range(4)]
    for row in table:
        click.echo(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False))
            + "  "
            + row[4]
        )


def _retention(value: str | None) -> str:
    """A topic's retention for people: 7d, 30d, forever."""
    if value is None:
        return "default"
    millis = int(value)
    if millis < 0:
        return "forever"
    days, rest = divmod(millis, 86_400_000)
    return f"{days}d" if rest == 0 else f"{millis / 3_600_000:g}h"
