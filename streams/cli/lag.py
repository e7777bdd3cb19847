"""`connector lag`: a consumer group's lag per partition, with Burrow's statuses."""

from __future__ import annotations

import json
import sys
import time
from contextlib import ExitStack

import click

from streams.cli.common import fail, resolve_bootstrap, say
from streams.exceptions import ConnectorError
from streams.kafka.commitlog import CommitLog
from streams.kafka.lag import LagReader
from streams.kafka.lagstatus import Status, Window
from streams.kafka.lagwatch import GroupReport, LagWatch, group_topics
from streams.kafka.topics import design_topics, full_name, worker_topics
from streams.settings import Settings

#: Seconds between samples: with --watch, and without it (a quick look).
WATCH_INTERVAL = 5.0
ONCE_INTERVAL = 2.0

#: The exit status of a one-shot `connector lag` by the group's status (1 is an error).
EXIT_STATUS = {Status.OK: 0, Status.WARN: 3, Status.ERR: 4}


def format_report(report: GroupReport) -> str:
    """The report as a table, the group's line first."""
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(report.at))
    lines = [
        f"{stamp}  group {report.group}  status {report.status.name}  "
        f"total lag {report.total_lag}  ({report.samples} samples, commit times "
        f"{report.commit_times})"
    ]
    width = max([len("topic"), *(len(p.topic) for p in report.partitions)])
    lines.append(
        f"{'topic':<{width}}  {'partition':>9}  {'committed':>12}  {'end':>12}  {'lag':>10}  status"
    )
    for p in report.partitions:
        committed = "-" if p.committed is None else str(p.committed)
        lines.append(
            f"{p.topic:<{width}}  {p.partition:>9}  {committed:>12}  {p.end:>12}  "
            f"{p.lag:>10}  {p.status.name}"
        )
    return "\n".join(lines)


@click.command("lag")
@click.option("--group", help="Consumer group (default: the worker's, CONNECTOR_APP_ID).")
@click.option(
    "--topic",
    "topics",
    multiple=True,
    help="Repeatable; a design topic's base or prefixed name (default: the group's topics).",
)
@click.option("--watch", is_flag=True, help="Keep sampling and reprint after every sample.")
@click.option(
    "--interval",
    type=click.FloatRange(min=0.1),
    help=f"Seconds between samples (default {WATCH_INTERVAL:g} with --watch, else "
    f"{ONCE_INTERVAL:g}); Burrow's offset-refresh.",
)
@click.option(
    "--samples",
    type=click.IntRange(min=1),
    default=3,
    show_default=True,
    help="Samples taken before printing once (without --watch).",
)
@click.option(
    "--intervals",
    type=click.IntRange(min=1),
    default=10,
    show_default=True,
    help="Commits kept per partition, the evaluation window (Burrow's intervals).",
)
@click.option(
    "--min-distance",
    type=click.FloatRange(min=0),
    default=0.0,
    show_default=True,
    help="Seconds under which a commit replaces the previous one (Burrow's min-distance).",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per report.")
@click.option("--timeout", type=click.FloatRange(min=0.1), default=10.0, show_default=True)
@click.pass_obj
def lag(
    settings: Settings,
    group: str | None,
    topics: tuple[str, ...],
    watch: bool,
    interval: float | None,
    samples: int,
    intervals: int,
    min_distance: float,
    as_json: bool,
    timeout: float,
) -> None:
    """Print a consumer group's lag per partition (committed, end, lag) with Burrow's status.

    Statuses come from a window of the group's last commits (--intervals), sampled every
    --interval seconds: OK, WARN (lag keeps growing), STOP (no commits while lagging),
    STALL (commits that do not move while lagging), REWIND (a commit went backwards); the
    group is OK, WARN or ERR (any STOP, STALL or REWIND).

    Without --watch the exit status says the group's: 0 OK, 3 WARN, 4 ERR (1 when the
    lag could not be read), so a cron job or a probe can act on it.
    """
    group = group or settings.app_id
    pause = interval or (WATCH_INTERVAL if watch else ONCE_INTERVAL)
    window = Window(intervals=intervals, min_distance=min_distance)
    try:
        bootstrap = resolve_bootstrap(settings)
        with ExitStack() as stack:
            reader = stack.enter_context(LagReader(bootstrap, settings.kafka, timeout))
            # Only the worker's own group falls back to the topics it reads (before it commits).
            fallback = worker_topics(settings.topics) if group == settings.app_id else []
            given = [_design_name(settings, topic) for topic in topics]
            chosen = given or group_topics(reader, group, fallback)
            commit_log = _commit_log(bootstrap, settings, group, timeout)
            if commit_log is not None:
                stack.callback(commit_log.close)
            watcher = LagWatch(reader, group, chosen, window, commit_log)
            status = _run(watcher, watch, pause, samples, as_json)
    except ConnectorError as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        return
    sys.exit(EXIT_STATUS[status])


def _design_name(settings: Settings, topic: str) -> str:
    """A design topic may be given by its base name: `connector.replay.v1` is read as
    `$CONNECTOR_TOPIC_PREFIX` + that name; any other name is taken as it is."""
    names = [spec.name for spec in design_topics(settings.topics)]
    return full_name(settings.topics, topic, names) or topic


def _commit_log(bootstrap: str, settings: Settings, group: str, timeout: float) -> CommitLog | None:
    try:
        return CommitLog(bootstrap, settings.kafka, group, timeout)
    except ConnectorError as exc:
        say(f"commit times unavailable ({exc}); a stalled group will read as stopped")
        return None


def _run(watcher: LagWatch, watch: bool, pause: float, samples: int, as_json: bool) -> Status:
    taken = 0
    next_at = time.monotonic()
    while True:
        watcher.sample()
        taken += 1
        if watch or taken >= samples:
            report = watcher.report()
            if as_json:
                click.echo(json.dumps(report.as_json()))
            else:
                click.echo(format_report(report) + ("\n" if watch else ""))
            if not watch:
                return report.status
        next_at += pause
        time.sleep(max(next_at - time.monotonic(), 0.0))
