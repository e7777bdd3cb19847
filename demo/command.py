"""`connector demo`: local Kafka, a reference receiver, a worker, generated events, checked."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from adapters.reference import (
    FaultSpec,
    ReceiverMode,
    ReferenceConfig,
    ReferenceReceiver,
    ThreadedReceiver,
)
from demo.worker import start_worker, stop_worker, worker_env
from streams.cli.common import fail, resolve_bootstrap, say
from streams.core.model import SETTLING_STATUSES
from streams.exceptions import ConnectorError
from streams.kafka.lag import LagReader
from streams.settings import KafkaSettings, Settings, TopicSettings
from streams.tenancy.tenant import Connection, Tenant

if TYPE_CHECKING:
    from demo.scenario import Scenario

CLIENT_ID = "100"
CLUBS = {"1": "C1", "2": "C2", "3": "C3"}


def reference_tenant(
    reference: ReferenceReceiver,
    client_id: str,
    receiver_client_id: str,
    clubs: Mapping[str, str],
    secret_ref: str | None = None,
    options: Mapping[str, str] | None = None,
) -> Tenant:
    """The turn-up of a client on a running reference receiver (basic auth with `secret_ref`)."""
    return Tenant(
        options=dict(options or {}),
        client_id=client_id,
        receiver_client_id=receiver_client_id,
        adapter=reference.mode.profile_name,
        clubs=clubs,
        connection=Connection(
            host=reference.host_port,
            scheme="http",
            base_path=reference.config.base_path,
            username=reference.config.auth.username if secret_ref else None,
            secret_ref=secret_ref,
        ),
    )


@dataclass
class DemoRun:
    """Names and handles of one demo run (its own topics, group and data)."""

    bootstrap: str
    kafka: KafkaSettings
    topics: TopicSettings
    app_id: str
    workdir: Path

    @property
    def inbound(self) -> list[str]:
        t = self.topics
        return [t.name(t.users_topic), t.name(t.staff_topic), t.name(t.lead_sources_topic)]

    @property
    def commands(self) -> str:
        return self.topics.name(self.topics.commands_topic)

    def worker_env(self, settings: Settings) -> dict[str, str]:
        return worker_env(
            bootstrap=self.bootstrap,
            topic_prefix=self.topics.topic_prefix,
            app_id=self.app_id,
            data_dir=self.workdir / "data",
            CONNECTOR_SINK_MAX_IN_FLIGHT=str(settings.pipeline.sink_max_in_flight),
        )


def seed_receiver(threaded: ThreadedReceiver, receiver_client: str, scenario: Scenario) -> None:
    """Give the receiver what the scenario says it holds before any event: its own staff
    (found by email, never created) and its lead sources."""
    store = threaded.receiver.store
    for rid, email, name in scenario.receiver_staff:
        threaded.call(partial(store.seed_staff, receiver_client, email, name, staff_id=rid))
    for _, name in scenario.receiver_lead_sources:
        threaded.call(partial(store.create_lead_source, receiver_client, {"name": name}))


@contextmanager
def worker_process(run: DemoRun, settings: Settings) -> Iterator[subprocess.Popen[bytes]]:
    """`connector worker` in its own process, stopped with SIGTERM at the end."""
    proc = start_worker(run.worker_env(settings), run.workdir / "worker.log")
    try:
        yield proc
    finally:
        stop_worker(proc)


def wait_until_settled(
    run: DemoRun,
    worker: subprocess.Popen[bytes],
    label: str,
    timeout: float,
    converged: Callable[[], bool] = lambda: True,
) -> None:
    """Wait until the worker's group has committed every inbound event and every command,
    and `converged` holds then (re-plans come after the commands that made the links)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    deadline = time.monotonic() + timeout
    with (
        LagReader(run.bootstrap, run.kafka) as reader,
        Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=None,
            transient=False,
            disable=not sys.stderr.isatty(),
        ) as bar,
    ):
        task = bar.add_task(label, total=None)
        while True:
            if worker.poll() is not None:
                tail = (run.workdir / "worker.log").read_text(errors="replace")[-3000:]
                raise ConnectorError(f"the worker exited with {worker.returncode}:\n{tail}")
            try:
                rows = reader.group_lag(run.app_id, [*run.inbound, run.commands])
            except ConnectorError:
                rows = []  # the group coordinator is moving or loading: ask again
            done = sum(r.committed or 0 for r in rows)
            total = sum(r.end for r in rows)
            bar.update(task, completed=done, total=total)
            if rows and all(r.lag == 0 for r in rows) and converged():
                return
            if time.monotonic() > deadline:
                raise ConnectorError(
                    f"{label}: not settled after {timeout:.0f}s ({total - done} records left)"
                )
            time.sleep(0.25)


@dataclass(frozen=True)
class LinksMade:
    """What the outcomes topic says the connector linked."""

    count: int
    outcomes: int
    users: dict[str, str]  # InTouch user -> receiver record, the latest link of each


def read_links(run: DemoRun) -> LinksMade:
    """The links made, read back from the outcomes topic."""
    from streams.avro.codec import default_codecs
    from streams.kafka.reader import read_to_end

    codec = default_codecs()["Outcome"]
    topic = run.topics.name(run.topics.outcomes_topic)
    latest: dict[tuple[str, str], str | None] = {}
    outcomes = 0
    for message in read_to_end(run.bootstrap, run.kafka, [topic]):
        outcomes += 1
        row = codec.decode(message.value())
        if row["status"] in SETTLING_STATUSES:
            latest[(row["entity"], row["intouch_id"])] = row["receiver_id"]
    users = {iid: rid for (entity, iid), rid in latest.items() if entity == "USER" and rid}
    return LinksMade(sum(1 for rid in latest.values() if rid), outcomes, users)


def run_demo(
    settings: Settings,
    *,
    events: int,
    seed: int,
    mode: ReceiverMode,
    timeout: float,
    latency_ms: float = 0.0,
    interleaved: bool = False,
    keep: bool = False,
) -> dict[str, Any]:
    from demo.compare import compare
    from demo.generate import produce_scenario
    from demo.oracle import ReceiverRules, expected_receiver_state
    from demo.references import replanned_commands, users_behind_their_links
    from demo.scenario import build_scenario
    from streams.kafka.lag import end_offsets
    from streams.kafka.topics import delete_topics, design_topics, ensure_topics
    from streams.tenancy.publishing import publish_tenant

    started = time.monotonic()
    bootstrap = resolve_bootstrap(settings, start=True)
    token = time.strftime("%Y%m%d%H%M%S") + uuid.uuid4().hex[:4]
    topics = TopicSettings(topic_prefix=f"demo-{token}.")
    workdir = Path(tempfile.mkdtemp(prefix=f"connector-demo-{token}-"))
    run = DemoRun(bootstrap, settings.kafka, topics, f"demo-{token}", workdir)
    say(f"demo {token}: Kafka {bootstrap}, topics demo-{token}.*, work dir {workdir}")
    result = ensure_topics(bootstrap, settings.kafka, design_topics(topics))
    if result.mismatched:
        raise ConnectorError("; ".join(result.mismatched))

    receiver_client = f"R-{CLIENT_ID}"
    reference = ReferenceReceiver(
        ReferenceConfig(
            mode=mode,
            clients={receiver_client: list(CLUBS.values())},
            faults=FaultSpec(latency_ms=latency_ms, jitter_ms=latency_ms / 2),
        )
    )
    threaded = ThreadedReceiver(reference)
    threaded.start()
    try:
        scenario = build_scenario(seed, events, CLIENT_ID, list(CLUBS))
        seed_receiver(threaded, receiver_client, scenario)
        say(
            f"reference receiver ({mode.value}) on {reference.url} with "
            f"{len(scenario.receiver_staff)} staff, "
            f"{len(scenario.receiver_lead_sources)} lead sources"
        )
        tenant = reference_tenant(reference, CLIENT_ID, receiver_client, CLUBS)
        publish_tenant(bootstrap, settings.kafka, topics.name(topics.tenants_topic), tenant)
        say(f"turned up client {CLIENT_ID} with clubs {', '.join(CLUBS)}")

        phase_seconds: dict[str, float] = {}
        phases = (
            [("interleaved", scenario.interleaved())]
            if interleaved
            else [(phase, scenario.phase(phase)) for phase in ("reference", "users")]
        )
        staff_owner = ReceiverRules.for_mode(mode).staff_owner

        def converged() -> bool:
            return not users_behind_their_links(
                bootstrap, settings.kafka, topics, staff_owner=staff_owner
            )

        with worker_process(run, settings) as worker:
            for phase, batch in phases:
                # The first phase also waits for the worker to start and join its group.
                phase_started = time.monotonic()
                produce_scenario(bootstrap, settings.kafka, topics, batch, progress=False)
                say(f"produced {len(batch)} {phase} events")
                wait_until_settled(run, worker, f"processing {phase} events", timeout, converged)
                phase_seconds[phase] = time.monotonic() - phase_started
        users_phase, users_events = phases[-1][0], len(phases[-1][1])

        state = threaded.call(reference.state)
        calls = threaded.call(lambda: reference.calls.as_json())
        expected = expected_receiver_state(
            scenario, mode, receiver_client_id=receiver_client, club_map=CLUBS
        )
    finally:
        threaded.stop()

    made = read_links(run)
    # A receiver that keeps no InTouch ID is matched through the links the connector made.
    mismatches = compare(expected, state, links=made.users)
    links, outcomes = made.count, made.outcomes
    commands = sum(end_offsets(bootstrap, settings.kafka, run.commands).values())
    dlq = sum(end_offsets(bootstrap, settings.kafka, topics.name(topics.dlq_topic)).values())
    for mismatch in mismatches[:20]:
        say(f"mismatch: {mismatch}")
    summary = {
        "events": len(scenario.events),
        "commands": commands,
        "outcomes": outcomes,
        "calls": calls["total"],
        "links": links,
        "dlq": dlq,
        "mismatches": len(mismatches),
        "seconds": round(time.monotonic() - started, 1),
        "pipeline_seconds": round(sum(phase_seconds.values()), 1),
        "users_seconds": round(phase_seconds[users_phase], 1),
        # Steady state: the users phase, produced and processed with the worker already up
        # (interleaved: the one phase, the worker's start included).
        "events_per_second": round(users_events / phase_seconds[users_phase], 1),
        "interleaved": interleaved,
        "replanned": replanned_commands(bootstrap, settings.kafka, topics),
    }
    if keep or mismatches:
        say(f"kept topics demo-{token}.* and work dir {workdir}")
    else:
        deleted = delete_topics(bootstrap, settings.kafka, [t.name for t in design_topics(topics)])
        shutil.rmtree(workdir, ignore_errors=True)
        say(f"deleted {len(deleted)} topics and the work dir (--keep keeps them)")
    return summary


def print_summary(summary: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="connector demo")
    table.add_column("measure")
    table.add_column("value", justify="right")
    for key, value in summary.items():
        style = "red" if key == "mismatches" and value else None
        table.add_row(key, str(value), style=style)
    Console(stderr=True).print(table)


@click.command()
@click.option("--events", type=click.IntRange(min=10), default=5000, show_default=True)
@click.option("--seed", type=int, default=42, show_default=True)
@click.option(
    "--mode",
    type=click.Choice([m.value for m in ReceiverMode]),
    default=ReceiverMode.FULL.value,
    show_default=True,
    help="Capabilities of the reference receiver.",
)
@click.option("--timeout", type=float, default=600.0, show_default=True, help="Per phase.")
@click.option(
    "--latency-ms",
    type=click.FloatRange(min=0),
    default=0.0,
    show_default=True,
    help="Added receiver latency per call (plus up to half of it as jitter).",
)
@click.option(
    "--interleaved",
    is_flag=True,
    help="Produce staff, lead sources and users mixed, with no wait between them.",
)
@click.option(
    "--keep",
    is_flag=True,
    help="Keep the run's topics and work dir (kept anyway when something mismatched).",
)
@click.pass_obj
def demo(
    settings: Settings,
    events: int,
    seed: int,
    mode: str,
    timeout: float,
    latency_ms: float,
    interleaved: bool,
    keep: bool,
) -> None:
    """Run the whole pipeline on generated events and check the receiver's final state."""
    try:
        summary = run_demo(
            settings,
            events=events,
            seed=seed,
            mode=ReceiverMode(mode),
            timeout=timeout,
            latency_ms=latency_ms,
            interleaved=interleaved,
            keep=keep,
        )
    except ConnectorError as exc:
        fail(str(exc))
    print_summary(summary)
    click.echo(json.dumps(summary))
    if summary["mismatches"]:
        sys.exit(1)
