"""Pieces several benchmarks share: a reference receiver and `connector worker` processes,
user events, CPU from /proc, final outcomes read back, percentiles."""

from __future__ import annotations

import contextlib
import datetime as dt
import math
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from demo.worker import start_worker, stop_worker, worker_env
from streams.avro.codec import Codecs
from streams.core.model import Status
from streams.kafka import clients
from streams.kafka.local import free_port
from streams.settings import Settings, TopicSettings
from streams.tenancy.publishing import publish_tenant
from streams.tenancy.tenant import Connection, Tenant

#: Outcomes that end a change (an update answers SUCCEEDED, a create LINKED).
FINAL = {Status.LINKED, Status.SUCCEEDED, Status.SKIPPED, Status.FAILED, Status.UNLINKED}
TICK = os.sysconf("SC_CLK_TCK")
#: (client, intouch_id, version): one change, in an event, a command or an outcome.
Change = tuple[str, str, int]


@contextlib.contextmanager
def receiver_process(*args: str) -> Iterator[str]:
    """Run the reference receiver (`serve --port 0 ARGS`) in its own process, so it does not
    share the benchmark's CPU or event loop; yields its API URL."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "adapters.reference", "serve", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None
        api_url = proc.stdout.readline().strip()
        if not api_url.startswith("http://127.0.0.1:"):
            raise RuntimeError(f"reference receiver did not start (got {api_url!r})")
        yield api_url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def user_event(client: str, club: str, intouch_id: str, version: int) -> dict[str, Any]:
    """A prospect's UserChanged at `version`, its first name saying which version it is."""
    return {
        "event_id": str(uuid.uuid4()), "occurred_at": dt.datetime.now(dt.UTC),
        "client_id": client, "club_id": club, "intouch_id": intouch_id, "version": version,
        "user_type": "PROSPECT", "status": "ACTIVE", "first_name": f"v{version}",
        "last_name": intouch_id, "email": None, "birthdate": None, "gender": None,
        "address1": None, "address2": None, "city": None, "zipcode": None, "state": None,
        "country": None, "mobile_phone": None, "home_phone": None, "work_phone": None,
        "company": None, "staff_owner_id": None, "lead_source_id": None,
    }  # fmt: skip


def change_of(n: int, events: int, per: int, clients: Sequence[str], tag: str = "") -> Change:
    """The `n`-th of `events` changes: events/per users spread over `clients`, `per` versions
    each; a user's versions are events/per changes apart (other users' changes between)."""
    users = max(1, events // per)
    user = n % users
    return clients[user % len(clients)], f"{tag}U{user}", n // users + 1


def encoded_event(codecs: Codecs, change: Change, club: str) -> tuple[bytes, bytes]:
    """The (key, value) of a user event for `change`, Avro-encoded."""
    client, intouch_id, version = change
    key = {"client_id": client, "entity": "USER", "intouch_id": intouch_id}
    value = user_event(client, club, intouch_id, version)
    return codecs["EntityKey"].encode(key), codecs["UserChanged"].encode(value)


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process, every thread, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=1) as answer:
            return bool(answer.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def scrape(port: int) -> dict[str, float]:
    """A worker's /metrics as {'name{labels}': value}; {} when it does not answer."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as answer:
            text = answer.read().decode()
    except (urllib.error.URLError, OSError):
        return {}
    return parse_metrics(text)


def parse_metrics(text: str) -> dict[str, float]:
    """Prometheus text exposition as {'name{labels}': value} (comments dropped)."""
    values: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            values[name] = float(value)
    return values


def total(metrics: dict[str, float], name: str) -> float:
    """The sum of a metric over every label set."""
    return sum(v for k, v in metrics.items() if k == name or k.startswith(name + "{"))


def bench_tenant(client: str, receiver_client: str, club: str, url: str) -> Tenant:
    """A tenant served by the reference receiver at `url` (its club `club` -> `C{club}`)."""
    host = url.removeprefix("http://").split("/", 1)[0]
    return Tenant(
        client_id=client, receiver_client_id=receiver_client, adapter="reference",
        clubs={club: f"C{club}"},
        connection=Connection(host=host, scheme="http", base_path="/api/v1"),
    )  # fmt: skip


def publish_tenants(
    bootstrap: str, settings: Settings, topics: TopicSettings, tenants: Sequence[Tenant]
) -> None:
    for tenant in tenants:
        publish_tenant(bootstrap, settings.kafka, topics.name(topics.tenants_topic), tenant)


@dataclass
class WorkerRun:
    """One running `connector worker`: its process and its metrics port."""

    process: subprocess.Popen[bytes]
    port: int
    log: Path


def launch_worker(
    bootstrap: str, topics: TopicSettings, app_id: str, workdir: Path, in_flight: int,
    extra: dict[str, str], name: str | None = None,
) -> WorkerRun:  # fmt: skip
    """Start a worker of group `app_id` (not waiting for it): `in_flight` calls at once, in
    all and for one tenant; `extra`: more settings (`PYTHONPATH`: the checkout to run)."""
    port, name = free_port(), name or app_id
    env = worker_env(
        bootstrap=bootstrap, topic_prefix=topics.topic_prefix, app_id=app_id,
        data_dir=workdir / name, CONNECTOR_SINK_MAX_IN_FLIGHT=str(in_flight),
        CONNECTOR_SINK_TENANT_MAX_IN_FLIGHT=str(in_flight), CONNECTOR_METRICS_PORT=str(port),
        CONNECTOR_LAG_INTERVAL="0",
    )  # fmt: skip
    env.update(extra)
    checkout = extra.get("PYTHONPATH")
    log = workdir / f"{name}.log"
    return WorkerRun(start_worker(env, log, Path(checkout) if checkout else None), port, log)


def wait_ready(workers: Sequence[WorkerRun], timeout: float = 180) -> None:
    """Until every worker's /ready answers 200 at once (a group done rebalancing)."""
    deadline = time.monotonic() + timeout
    while not all(ready(w.port) for w in workers):
        for w in workers:
            if time.monotonic() > deadline or w.process.poll() is not None:
                raise SystemExit(f"a worker did not get ready; see {w.log}")
        time.sleep(0.05)


@contextlib.contextmanager
def running_workers(
    bootstrap: str, topics: TopicSettings, app_id: str, workdir: Path, in_flight: int,
    extra: dict[str, str], count: int = 1, *, kill: bool = False,
) -> Iterator[list[WorkerRun]]:  # fmt: skip
    """`count` workers of one group, yielded once all are ready; stopped after (SIGKILL'd
    when `kill`: a worker stuck on a hanging call need not be waited for)."""
    workers: list[WorkerRun] = []
    try:
        for n in range(count):
            name = app_id if count == 1 else f"{app_id}-{n}"
            workers.append(
                launch_worker(bootstrap, topics, app_id, workdir, in_flight, extra, name)
            )
        wait_ready(workers)
        yield workers
    finally:
        for w in workers:
            stop_worker(w.process, kill=kill)


def outcome_times(
    bootstrap: str, settings: Settings, topic: str, codecs: Codecs, expected: int,
    deadline: float,
) -> dict[Change, float]:  # fmt: skip
    """Read `topic`'s outcomes until `expected` changes have a final one; each change's first
    final outcome's broker time (the worker writes it right after the receiver answered)."""
    consumer = clients.consumer(
        bootstrap, settings.kafka, f"bench-{uuid.uuid4().hex[:6]}",
        {"auto.offset.reset": "earliest"},
    )  # fmt: skip
    consumer.subscribe([topic])
    settled: dict[Change, float] = {}
    try:
        while len(settled) < expected:
            if time.time() > deadline:
                raise SystemExit(f"{len(settled)} of {expected} outcomes in time")
            for message in consumer.consume(1000, 0.2):
                if message.error():
                    continue
                row = codecs["Outcome"].decode(message.value())
                if row["status"] in FINAL:
                    change = (row["client_id"], row["intouch_id"], row["version"])
                    settled.setdefault(change, message.timestamp()[1] / 1000)
    finally:
        consumer.close()
    return settled


def percentile(values: Sequence[float], q: float) -> float:
    """The nearest-rank `q`-th percentile (0 < q <= 100) of `values` (not empty)."""
    if not values:
        raise ValueError("no values")
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]
