"""Helpers every command shares: messages, failing with an exit code, finding the broker."""

from __future__ import annotations

import sys
from typing import NoReturn

import click

from streams.exceptions import ConnectorError
from streams.kafka.local import LocalKafka
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
    if info and info.secure:
        raise ConnectorError(
            f"the local broker on {info.bootstrap} is secured: export the KAFKA_* settings "
            "that `connector kafka up --secure` prints"
        )
    if info:
        return info.bootstrap
    if start:
        return local.up(progress=say).bootstrap
    raise ConnectorError(
        "no Kafka to talk to: run `connector kafka up`, or set KAFKA_BOOTSTRAP_SERVERS"
    )
