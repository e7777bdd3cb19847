"""`connector replay`: reprocess a range of an inbound topic while the pipeline runs."""

from __future__ import annotations

import datetime as dt
import json
import sys
from collections.abc import Sequence

import click

from streams.cli.common import fail, resolve_bootstrap, say
from streams.exceptions import ConnectorError
from streams.ops.positions import PartitionRange, parse_duration, parse_instant
from streams.settings import Settings

#: Replays with at least this many records to read show a progress bar.
PROGRESS_FROM = 1000


def _start(
    from_offset: int | None, from_time: str | None, by_duration: str | None, earliest: bool
) -> int | dt.datetime | None:
    given = [
        name
        for name, value in (
            ("--from-offset", from_offset),
            ("--from-time", from_time),
            ("--by-duration", by_duration),
            ("--from-earliest", earliest or None),
        )
        if value is not None
    ]
    if len(given) != 1:
        fail(
            "give exactly one start: --from-offset, --from-time, --by-duration or --from-earliest"
            + (f" (got {', '.join(given)})" if given else ""),
            2,
        )
    if from_offset is not None:
        return from_offset
    if from_time is not None:
        return parse_instant(from_time)
    if by_duration is not None:
        return dt.datetime.now(dt.UTC) - parse_duration(by_duration)
    return None


def _print_ranges(topic: str, ranges: Sequence[PartitionRange]) -> None:
    for r in ranges:
        click.echo(
            f"{topic}[{r.partition}]: offsets {r.start}..{r.end} ({r.count} records; "
            f"partition holds {r.low}..{r.high})"
        )


@click.command("replay")
@click.option("--topic", required=True, help="Inbound topic, base or prefixed name.")
@click.option(
    "--partition", "partitions", type=int, multiple=True, help="Repeatable; all if unset."
)
@click.option("--from-offset", type=int, help="Start at this offset (in every chosen partition).")
@click.option("--from-time", help="Start at the first record at or after this ISO 8601 time.")
@click.option("--by-duration", help="Start this long ago: ISO 8601 (P1D, PT2H30M) or 2h, 1d.")
@click.option("--from-earliest", is_flag=True, help="Start at the first record kept.")
@click.option("--to-offset", type=int, help="Stop before this offset (default: the end now).")
@click.option("--to-time", help="Stop before the first record at or after this time.")
@click.option("--client", help="Replay only this InTouch client's records.")
@click.option("--dry-run", is_flag=True, help="Print ranges and counts; send nothing.")
@click.option(
    "--reset-group",
    is_flag=True,
    help="Instead, move the worker group's offsets on the topic to the start (workers stopped).",
)
@click.option("--timeout", type=float, default=30.0, show_default=True)
@click.pass_obj
def replay(
    settings: Settings,
    topic: str,
    partitions: tuple[int, ...],
    from_offset: int | None,
    from_time: str | None,
    by_duration: str | None,
    from_earliest: bool,
    to_offset: int | None,
    to_time: str | None,
    client: str | None,
    dry_run: bool,
    reset_group: bool,
    timeout: float,
) -> None:
    """Reprocess a range of an inbound topic without stopping the pipeline.

    Records are read by a consumer of their own (no group, nothing committed) and sent to the
    replay topic, marked with a replay ID and their source position; the workers plan them
    like live changes. The version rule makes a replay harmless: what the receiver has
    already, or has newer, is skipped.
    """
    from streams.avro.codec import default_codecs
    from streams.ops.replay import Replayer, resolve_inbound

    try:
        name, subject = resolve_inbound(settings.topics, topic)
        start = _start(from_offset, from_time, by_duration, from_earliest)
        if to_offset is not None and to_time is not None:
            fail("give one end: --to-offset or --to-time", 2)
        end = parse_instant(to_time) if to_time is not None else to_offset
        if reset_group and (client is not None or end is not None):
            fail("--reset-group moves the group to the start: drop --client, --to-*", 2)
        bootstrap = resolve_bootstrap(settings)
        replayer = Replayer(bootstrap, settings.kafka, settings.topics, default_codecs(), timeout)
        ranges = replayer.ranges(name, partitions or None, start, end)
        for r in ranges:
            for note in r.notes:
                say(f"{name}[{r.partition}]: {note}")
        if reset_group:
            _reset(settings, bootstrap, name, ranges, dry_run, timeout)
            return
        total = sum(r.count for r in ranges)
        if dry_run and client is None:
            _print_ranges(name, ranges)
            click.echo(f"dry run: {total} records would be replayed; nothing sent")
            return
        if total >= PROGRESS_FROM:
            with click.progressbar(length=total, label="replaying", file=sys.stderr) as bar:
                summary = replayer.run(
                    name, subject, ranges, client=client, dry_run=dry_run, progress=bar.update
                )
        else:
            summary = replayer.run(name, subject, ranges, client=client, dry_run=dry_run)
    except ConnectorError as exc:
        fail(str(exc))
    if dry_run:
        _print_ranges(name, ranges)
        click.echo(
            f"dry run: {summary.replayed} of {summary.read} records are client {client}'s; "
            "nothing sent"
        )
        return
    click.echo(
        f"replay {summary.replay_id} of {name}: read {summary.read}, replayed "
        f"{summary.replayed}, filtered out {summary.filtered}"
    )
    click.echo(
        json.dumps(
            {
                "replay_id": summary.replay_id,
                "topic": name,
                "read": summary.read,
                "replayed": summary.replayed,
                "filtered": summary.filtered,
                "ranges": {str(r.partition): [r.start, r.end] for r in ranges},
            }
        )
    )


def _reset(
    settings: Settings,
    bootstrap: str,
    topic: str,
    ranges: Sequence[PartitionRange],
    dry_run: bool,
    timeout: float,
) -> None:
    from streams.ops.replay import group_members, reset_group

    group = settings.app_id
    moves = ", ".join(f"{r.partition}->{r.start}" for r in ranges)
    if dry_run:
        click.echo(f"dry run: group {group} on {topic} would move to {moves}; nothing changed")
        members = group_members(bootstrap, settings.kafka, group, timeout)
        if members:
            say(
                f"warning: group {group} has {len(members)} live member(s) now; the real run "
                "is refused until every worker is stopped"
            )
        return
    reset_group(bootstrap, settings.kafka, group, topic, ranges, timeout)
    click.echo(f"group {group} on {topic} moved to {moves}; start the workers to reprocess")
