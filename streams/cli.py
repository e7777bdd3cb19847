"""The `connector` command line."""

from __future__ import annotations

import importlib
import json
import sys
import time
from typing import NoReturn

import click

from streams.exceptions import ConnectorError, LocalKafkaError
from streams.kafka_local import LocalKafka, cache_size
from streams.settings import Settings


def fail(message: str, code: int = 1) -> NoReturn:
    click.secho(f"error: {message}", fg="red", err=True)
    sys.exit(code)


def say(message: str) -> None:
    click.echo(message, err=True)


def resolve_bootstrap(settings: Settings, *, start: bool = False) -> str:
    """KAFKA_BOOTSTRAP_SERVERS when set, else the local broker (started when `start`)."""
    if settings.kafka.bootstrap_servers:
        return settings.kafka.bootstrap_servers
    local = LocalKafka(settings.local_kafka)
    info = local.running()
    if info:
        return info.bootstrap
    if start:
        return local.up(progress=say).bootstrap
    raise ConnectorError(
        "no Kafka to talk to: run `connector kafka up`, or set KAFKA_BOOTSTRAP_SERVERS"
    )


# Commands that live beside their subject, imported only when called (keeps `kafka status` fast).
LAZY_COMMANDS = {
    "receiver": "adapters.reference.cli:receiver",
    "turnup": "streams.turnup:turnup",
    "tenants": "streams.turnup:tenants",
    "generate": "streams.generate:generate",
    "worker": "streams.worker:worker",
    "demo": "streams.demo:demo",
}


class LazyGroup(click.Group):
    """A group whose extra commands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *LAZY_COMMANDS])

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in LAZY_COMMANDS:
            module_name, attr = LAZY_COMMANDS[cmd_name].split(":")
            try:
                module = importlib.import_module(module_name)
            except ModuleNotFoundError as exc:
                if exc.name != module_name:
                    raise
                return None
            command: click.Command = getattr(module, attr)
            return command
        return super().get_command(ctx, cmd_name)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.pass_context
def main(ctx: click.Context) -> None:
    """Keep club-management platforms in sync with InTouch, on Apache Kafka."""
    ctx.obj = Settings()


# -- kafka -------------------------------------------------------------------
@main.group()
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
@main.group()
def topics() -> None:
    """The connector's topics."""


@topics.command("ensure")
@click.pass_obj
def topics_ensure(settings: Settings) -> None:
    """Create every design topic that is missing; report partition-count mismatches."""
    from streams.topics import design_topics, ensure_topics

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
    from streams.topics import design_topics

    for spec in design_topics(settings.topics):
        click.echo(f"{spec.name}\t{spec.partitions}\t{json.dumps(spec.config)}\t{spec.purpose}")


# -- schemas -----------------------------------------------------------------
@main.group()
def schemas() -> None:
    """Avro contracts in schemas/."""


@schemas.command("register")
def schemas_register() -> None:
    """Freeze changed .avsc files as new registry versions, after a compatibility check."""
    from streams.codec import FileRegistry, load_current_schemas
    from streams.compat import incompatibilities

    registry = FileRegistry()
    for subject, schema in load_current_schemas().items():
        problems = incompatibilities(registry, subject, schema)
        if problems:
            fail(f"{subject}: " + "; ".join(problems))
        click.echo(f"{subject}\tid {registry.register(subject, schema)}")


if __name__ == "__main__":
    main()
