"""`connector links backfill`: write the links changelog once from the outcomes topic."""

from __future__ import annotations

import click

from streams.cli.common import fail, resolve_bootstrap, say
from streams.exceptions import ConnectorError
from streams.settings import Settings


@click.group("links")
def links() -> None:
    """The link tables' changelog (connector.links.v1)."""


@links.command("backfill")
@click.pass_obj
def backfill(settings: Settings) -> None:
    """Fold every outcome into link rows and write them to the empty changelog (once, on a
    deployment from before the changelog; stop the workers first)."""
    from streams.kafka.topics import design_topics, ensure_topics
    from streams.worker.backfill import backfill_links

    try:
        bootstrap = resolve_bootstrap(settings)
        ensure_topics(bootstrap, settings.kafka, design_topics(settings.topics), say)
        backfill_links(bootstrap, settings.kafka, settings.topics, say)
    except ConnectorError as exc:
        fail(str(exc))
