"""`connector dlq`: list, show and replay dead letters."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import click

from streams.cli.common import fail, resolve_bootstrap, say
from streams.exceptions import ConnectorError
from streams.settings import Settings

if TYPE_CHECKING:  # the commands import the ops modules when they run
    from streams.ops.deadletters import DeadLetterEntry

F = TypeVar("F", bound=Callable[..., Any])


def _filters(command: F) -> F:
    for option in reversed(
        [
            click.option("--client", help="Only this InTouch client's dead letters."),
            click.option("--error", help="Only this error class, e.g. PermanentError."),
            click.option(
                "--stage", type=click.Choice(["decode", "planner", "sink"]), help="Only this stage."
            ),
            click.option("--since", help="Failed since: ISO 8601 time, or a duration (P1D, 2h)."),
        ]
    ):
        command = option(command)
    return command


def _json_default(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, bytes):
        try:
            return value.decode()
        except UnicodeDecodeError:
            return "0x" + value.hex()
    return str(value)


def _load(
    settings: Settings,
    client: str | None,
    error: str | None,
    stage: str | None,
    since: str | None,
    ids: tuple[str, ...] = (),
) -> list[DeadLetterEntry]:
    from streams.avro.codec import default_codecs
    from streams.ops.deadletters import load_dead_letters, matches
    from streams.ops.positions import parse_since

    after = parse_since(since, dt.datetime.now(dt.UTC)) if since else None
    entries = load_dead_letters(
        resolve_bootstrap(settings), settings.kafka, settings.topics, default_codecs()
    )
    return [
        e
        for e in entries
        if matches(e, client=client, error=error, stage=stage, since=after, ids=ids)
    ]


def _replayed(entry: DeadLetterEntry) -> str:
    if not entry.replays:
        return "-"
    last = entry.replays[-1]
    more = f" (+{len(entry.replays) - 1})" if len(entry.replays) > 1 else ""
    return f"{last.replay_id}{more}"


@click.group("dlq")
def dlq() -> None:
    """Dead letters: list them, show one, send them again."""


@dlq.command("list")
@_filters
@click.option("--json", "as_json", is_flag=True, help="A JSON array instead of a table.")
@click.pass_obj
def dlq_list(
    settings: Settings,
    client: str | None,
    error: str | None,
    stage: str | None,
    since: str | None,
    as_json: bool,
) -> None:
    """Dead letters, oldest first, with the replays that sent them again."""
    try:
        entries = _load(settings, client, error, stage, since)
    except ConnectorError as exc:
        fail(str(exc))
    if as_json:
        rows = [
            {
                "dead_letter_id": e.id,
                "failed_at": e.record["failed_at"],
                "client_id": e.client,
                "entity": e.key,
                "stage": e.record["stage"],
                "error_class": e.record["error_class"],
                "error_message": e.record["error_message"],
                "attempts": e.record["attempts"],
                "source": str(e.source),
                "replays": [{"replay_id": r.replay_id, "at": r.at} for r in e.replays],
            }
            for e in entries
        ]
        click.echo(json.dumps(rows, default=_json_default, indent=2))
        return
    table = [
        ("ID", "FAILED AT", "CLIENT", "ENTITY", "STAGE", "ERROR", "TRIES", "SOURCE", "REPLAYED")
    ]
    table += [
        (
            e.id,
            e.record["failed_at"].strftime("%Y-%m-%d %H:%M:%S"),
            e.client or "-",
            e.entity,
            e.record["stage"],
            e.record["error_class"],
            str(e.record["attempts"]),
            str(e.source),
            _replayed(e),
        )
        for e in entries
    ]
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    for row in table:
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    say(f"{len(entries)} dead letters")


@dlq.command("show")
@click.argument("dead_letter_id")
@click.pass_obj
def dlq_show(settings: Settings, dead_letter_id: str) -> None:
    """One dead letter in full (an ID prefix will do): the decoded record, the error, its
    tries, where it came from, and for a command the InTouch event behind it."""
    from streams.avro.codec import default_codecs
    from streams.ops.deadletters import explain, fetcher, find, load_dead_letters

    try:
        bootstrap = resolve_bootstrap(settings)
        codecs = default_codecs()
        entries = load_dead_letters(bootstrap, settings.kafka, settings.topics, codecs)
        entry = find(entries, dead_letter_id)
        shown = explain(entry, codecs, settings.topics, fetcher(bootstrap, settings.kafka))
    except ConnectorError as exc:
        fail(str(exc))
    click.echo(json.dumps(shown, default=_json_default, indent=2))


@dlq.command("replay")
@_filters
@click.option(
    "--id", "ids", multiple=True, help="Only this dead letter (ID or prefix); repeatable."
)
@click.option(
    "--include-replayed", is_flag=True, help="Also those already sent again by an earlier replay."
)
@click.option("--dry-run", is_flag=True, help="List what would be sent; send nothing.")
@click.pass_obj
def dlq_replay(
    settings: Settings,
    client: str | None,
    error: str | None,
    stage: str | None,
    since: str | None,
    ids: tuple[str, ...],
    include_replayed: bool,
    dry_run: bool,
) -> None:
    """Send dead letters again for another try, through the replay topic: inbound changes are
    planned again, commands go back to the sink. One that fails again returns to the DLQ with
    its earlier tries listed; what the receiver has newer is skipped by the version rule."""
    from streams.ops.deadletters import replay_dead_letters

    try:
        found = _load(settings, client, error, stage, since, ids)
        chosen = [e for e in found if include_replayed or not e.replays]
        done = replay_dead_letters(
            resolve_bootstrap(settings), settings.kafka, settings.topics, chosen, dry_run=dry_run
        )
    except ConnectorError as exc:
        fail(str(exc))
    already = len(found) - len(chosen)
    for dead_letter_id in done.unknown:
        say(f"{dead_letter_id}: its source topic is not one the connector reads; left alone")
    counts = (
        f"{already} already replayed (--include-replayed sends them too), "
        f"{len(done.unknown)} of unknown origin"
    )
    if dry_run:
        click.echo(f"dry run: would send {len(done.replayed)} dead letters again; {counts}")
    else:
        click.echo(
            f"replay {done.replay_id}: sent {len(done.replayed)} dead letters again; {counts}"
        )
    click.echo(
        json.dumps(
            {
                "replay_id": None if dry_run else done.replay_id,
                "dead_letters": done.replayed,
                "sent": not dry_run,
                "already_replayed": already,
                "unknown": done.unknown,
                "dry_run": dry_run,
            }
        )
    )
