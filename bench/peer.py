"""`connector worker` against a minimal hand-written peer (bench/minimal.py), interleaved on
the same pre-produced backlog, with the receiver in its own process; and the receiver's
ceiling under a plain aiohttp load generator.

    python -m bench.peer                   # 10,000 events, receiver at 0, 20 and 100 ms
    python -m bench.peer --quick           # about a minute: 2,000 events at 0 and 20 ms

Events/s and CPU count from the moment the consumer holds its partitions (the worker's
/ready answers 200; the peer prints `ready`) to its last outcome (worker) or call (peer).
CPU is the consumer process's own (user + system, every thread), read from /proc.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import aiohttp

from bench.parts import (
    Change,
    bench_tenant,
    change_of,
    cpu_seconds,
    encoded_event,
    outcome_times,
    publish_tenants,
    receiver_process,
    running_workers,
)
from streams.avro.codec import default_codecs
from streams.cli.common import resolve_bootstrap
from streams.kafka import clients
from streams.kafka.topics import design_topics, ensure_topics
from streams.settings import Settings, TopicSettings

CLIENT, RECEIVER_CLIENT, CLUB, RECEIVER_CLUB = "bench", "R-bench", "7", "C7"
#: The reference receiver the benchmark serves its one client from.
RECEIVER_ARGS = ("--client", f"{RECEIVER_CLIENT}:{RECEIVER_CLUB}")


def produce_backlog(
    bootstrap: str, settings: Settings, topic: str, events: int, per: int,
    tenants: Sequence[str] = (CLIENT,),
) -> None:  # fmt: skip
    """`events` user changes: events/per users over `tenants`, `per` versions each, versions
    spread out."""
    codecs = default_codecs()
    producer = clients.producer(bootstrap, settings.kafka, {"linger.ms": 20})
    for n in range(events):
        key, value = encoded_event(codecs, change_of(n, events, per, tenants), CLUB)
        producer.produce(topic, key=key, value=value)
        producer.poll(0)
    producer.flush(60)


class Backlog:
    """One set of topics holding one backlog: the worker and the peer both consume it."""

    def __init__(
        self, bootstrap: str, settings: Settings, events: int, per: int, *,
        prefix: str = "peer", tenants: Sequence[str] = (CLIENT,), produce: bool = True,
    ) -> None:  # fmt: skip
        self.bootstrap, self.settings, self.events = bootstrap, settings, events
        self.per, self.tenants = per, tenants
        self.token = uuid.uuid4().hex[:8]
        self.topics = TopicSettings(topic_prefix=f"{prefix}-{self.token}.")
        report = ensure_topics(bootstrap, settings.kafka, design_topics(self.topics))
        assert not report.mismatched
        if produce:
            self.produce()

    def produce(self) -> None:
        produce_backlog(
            self.bootstrap, self.settings, self.users, self.events, self.per, self.tenants
        )

    @property
    def users(self) -> str:
        return self.topics.name(self.topics.users_topic)

    @property
    def outcomes(self) -> str:
        return self.topics.name(self.topics.outcomes_topic)

    def serve(self, url: str) -> None:
        """Publish this backlog's tenants, each served by the receiver at `url`."""
        tenants = [bench_tenant(c, f"R-{c}", CLUB, url) for c in self.tenants]
        publish_tenants(self.bootstrap, self.settings, self.topics, tenants)

    def settled(self, deadline: float, expected: int | None = None) -> dict[Change, float]:
        """Each change's final outcome's time, once every one (or `expected`) has one."""
        return outcome_times(
            self.bootstrap, self.settings, self.outcomes, default_codecs(),
            self.events if expected is None else expected, deadline,
        )  # fmt: skip


def run_worker(
    backlog: Backlog, url: str, in_flight: int, workdir: Path, extra: dict[str, str]
) -> dict[str, float]:
    """One worker drains `backlog` (already produced): ready -> its last final outcome."""
    backlog.serve(url)
    app_id = f"{backlog.topics.topic_prefix.rstrip('.')}-{uuid.uuid4().hex[:4]}"
    topics = backlog.topics
    with running_workers(backlog.bootstrap, topics, app_id, workdir, in_flight, extra) as (w,):
        began, cpu = time.time(), cpu_seconds(w.process.pid)
        with profiled(w.process.pid, workdir / f"{app_id}.stacks" if PY_SPY else None):
            times = backlog.settled(began + 900).values()
        return {
            "seconds": max(times) - began,
            "first_s": min(times) - began,
            "cpu_seconds": cpu_seconds(w.process.pid) - cpu,
        }


#: `py-spy` to sample the worker with while it drains the backlog (`--py-spy PATH`).
PY_SPY: str | None = None


@contextlib.contextmanager
def profiled(pid: int, out: Path | None) -> Iterator[None]:
    """py-spy samples `pid` into `out` (collapsed stacks) meanwhile, when asked."""
    if out is None or PY_SPY is None:
        yield
        return
    spy = subprocess.Popen(
        [PY_SPY, "record", "--pid", str(pid), "--rate", "50", "--nonblocking", "--threads",
         "--format", "raw", "--output", str(out)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        yield
    finally:
        spy.send_signal(signal.SIGINT)
        spy.wait(timeout=30)
        print(f"worker profile: {out}", flush=True)


def run_peer(backlog: Backlog, url: str, in_flight: int) -> dict[str, float]:
    command = [
        sys.executable, "-m", "bench.minimal", "--bootstrap", backlog.bootstrap,
        "--topic", backlog.users, "--group", f"peer-{uuid.uuid4().hex[:6]}", "--base", url,
        "--client", RECEIVER_CLIENT, "--club", RECEIVER_CLUB,
        "--events", str(backlog.events), "--in-flight", str(in_flight),
    ]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    if process.stdout.readline().strip() != "ready":
        raise SystemExit("the peer did not start")
    began, cpu = time.time(), cpu_seconds(process.pid)
    result = json.loads(process.stdout.readline())
    last, used = time.time(), cpu_seconds(process.pid)
    process.wait(timeout=30)
    if result["errors"]:
        raise SystemExit(f"the peer's receiver calls failed: {result}")
    return {"seconds": last - began, "cpu_seconds": used - cpu}


async def ceiling(url: str, requests: int, in_flight: int) -> float:
    """Creates a second a plain aiohttp client gets from the receiver, `in_flight` at once."""
    base = f"{url}/clients/{RECEIVER_CLIENT}/clubs/{RECEIVER_CLUB}/prospects"
    numbers = iter(range(requests))
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=in_flight)) as session:

        async def load() -> None:
            for n in numbers:
                body = {"externalId": f"L{n}", "firstName": "Load", "lastName": f"L{n}"}
                async with session.post(base, json=body) as answer:
                    await answer.read()

        started = time.perf_counter()
        await asyncio.gather(*(load() for _ in range(in_flight)))
        return requests / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--versions", type=int, default=4, help="Changes per user.")
    parser.add_argument("--latency-ms", type=float, nargs="+", default=[0.0, 20.0, 100.0])
    parser.add_argument("--rounds", type=int, default=1, help="Worker/peer pairs per latency.")
    parser.add_argument("--in-flight", type=int, default=64)
    parser.add_argument("--quick", action="store_true", help="2,000 events at 0 and 20 ms.")
    parser.add_argument("--only", choices=("worker", "peer"), help="Run one side only.")
    parser.add_argument(
        "--baseline",
        metavar="DIR",
        help="Also run the worker of another checkout (say `git archive` of main) as `base`.",
    )
    parser.add_argument(
        "--worker-env",
        nargs="*",
        default=[],
        metavar="NAME=VALUE",
        help="Settings of this checkout's worker (not of --baseline's).",
    )
    parser.add_argument("--py-spy", metavar="PATH", help="Sample the worker with this py-spy.")
    args = parser.parse_args()
    global PY_SPY
    PY_SPY = args.py_spy
    if args.quick:
        args.events, args.latency_ms = 2000, [0.0, 20.0]
    settings = Settings()
    bootstrap = resolve_bootstrap(settings, start=True)
    workdir = Path(tempfile.mkdtemp(prefix="bench-peer-"))
    rows: list[dict[str, Any]] = []
    order = [k for k in ("worker", "peer") if args.only in (None, k)]
    if args.baseline:
        order.insert(0, "base")
    for latency in args.latency_ms:
        for number in range(1, args.rounds + 1):
            # The same backlog for each: a worker's topics are its own (its outcomes fill
            # them), the peer reads the users topic of the first.
            backlogs = {
                kind: Backlog(bootstrap, settings, args.events, args.versions)
                for kind in order
                if kind != "peer"
            } or {"peer": Backlog(bootstrap, settings, args.events, args.versions)}
            for kind in order:
                backlog = backlogs.get(kind) or next(iter(backlogs.values()))
                with receiver_process(*RECEIVER_ARGS, "--latency-ms", str(latency)) as url:
                    if kind in ("worker", "base"):
                        extra = dict(e.split("=", 1) for e in args.worker_env)
                        if kind == "base":
                            extra = {"PYTHONPATH": str(Path(args.baseline).resolve())}
                        measured = run_worker(backlog, url, args.in_flight, workdir, extra)
                    else:
                        measured = run_peer(backlog, url, args.in_flight)
                row = {
                    "kind": kind, "latency_ms": latency, "round": number,
                    "events_per_s": round(args.events / measured["seconds"], 1),
                    "cpu_ms_per_event": round(measured["cpu_seconds"] * 1000 / args.events, 3),
                    "first_outcome_s": round(measured.get("first_s", 0.0), 2),
                }  # fmt: skip
                rows.append(row)
                print(json.dumps(row), flush=True)
            order.reverse()  # interleave: drift (other work on the machine) hits both alike
    ceilings = {}
    for latency in args.latency_ms:
        with receiver_process(*RECEIVER_ARGS, "--latency-ms", str(latency)) as url:
            ceilings[latency] = round(asyncio.run(ceiling(url, args.events, args.in_flight)), 1)
    summary = summarize(rows, ceilings, args)
    print(json.dumps(summary))


def summarize(
    rows: list[dict[str, Any]], ceilings: dict[float, float], args: argparse.Namespace
) -> dict[str, Any]:
    def mean(kind: str, latency: float, field: str) -> float | None:
        values = [r[field] for r in rows if r["kind"] == kind and r["latency_ms"] == latency]
        return round(sum(values) / len(values), 3) if values else None

    print(
        f"\n{args.events} events ({args.versions} per user), {args.in_flight} in flight, "
        f"{os.cpu_count()} cores, {args.rounds} round(s) interleaved"
    )
    print(
        f"{'receiver':>9} {'ceiling/s':>10} {'worker/s':>9} {'peer/s':>8} {'ratio':>6} "
        f"{'worker ms':>10} {'peer ms':>8} {'cpu x':>6}"
    )
    table = []
    base_rows = any(r["kind"] == "base" for r in rows)
    for latency in args.latency_ms:
        if base_rows:
            b = mean("base", latency, "events_per_s")
            bc = mean("base", latency, "cpu_ms_per_event")
            print(f"{'(base)':>9} {'':>10} {b or '-':>9} {'':>8} {'':>6} {bc or '-':>10}")
        w, p = mean("worker", latency, "events_per_s"), mean("peer", latency, "events_per_s")
        wc = mean("worker", latency, "cpu_ms_per_event")
        pc = mean("peer", latency, "cpu_ms_per_event")
        ratio = round(w / p, 3) if w and p else None
        cpu_x = round(wc / pc, 2) if wc and pc else None
        if base_rows:
            table.append({"latency_ms": latency, "kind": "base", "worker_per_s": b,
                          "worker_cpu_ms": bc})  # fmt: skip
        table.append({
            "latency_ms": latency, "ceiling_per_s": ceilings[latency],
            "worker_per_s": w, "peer_per_s": p, "ratio": ratio,
            "worker_cpu_ms": wc, "peer_cpu_ms": pc, "cpu_ratio": cpu_x,
        })  # fmt: skip
        print(
            f"{latency:>7g}ms {ceilings[latency]:>10} {w or '-':>9} {p or '-':>8} "
            f"{ratio or '-':>6} {wc or '-':>10} {pc or '-':>8} {cpu_x or '-':>6}"
        )
    return {"events": args.events, "cores": os.cpu_count(), "rows": table, "runs": rows}


if __name__ == "__main__":
    main()
