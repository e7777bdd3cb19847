"""Events/s of 1, 2 and 3 `connector worker` processes in one group draining the same backlog
spread over many clients, all served by one reference receiver in its own process.

    python -m bench.scaleout             # 10,000 events over 30 clients; 1, 2 and 3 workers
    python -m bench.scaleout --quick     # about two minutes: 2,000 events
    python -m bench.scaleout --receiver-ms 200 --in-flight 8   # bound by calls, not cores

Each count gets fresh topics (6 inbound, 6 commands, 6 outcomes partitions: the defaults),
its tenants published, and a fresh receiver. Its workers start on the empty topics; once
every one's /ready answers 200 at once (the group has its partitions), the backlog is
produced as fast as the producer goes (well above any drain rate here), and the clock runs
from the first produce to the last change's final outcome (broker time). CPU is the sum over
the group's processes, from /proc. Speed-up: events/s over the 1-worker figure of the run.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.parts import cpu_seconds, receiver_process, running_workers
from bench.peer import CLUB, Backlog
from streams.cli.common import resolve_bootstrap
from streams.settings import Settings


def drain(
    backlog: Backlog, workers: int, workdir: Path, in_flight: int, receiver_ms: float = 0.0
) -> dict[str, Any]:
    """`workers` workers of one group, ready on empty topics: first produce -> last outcome."""
    tenants = [f"--client=R-{client}:C{CLUB}" for client in backlog.tenants]
    with receiver_process(*tenants, "--latency-ms", f"{receiver_ms:g}") as url:
        backlog.serve(url)
        app_id = f"{backlog.topics.topic_prefix.rstrip('.')}-g"
        with running_workers(
            backlog.bootstrap, backlog.topics, app_id, workdir, in_flight, {}, workers
        ) as group:
            owned = [commands_partitions(w.port) for w in group]
            pids = [w.process.pid for w in group]
            cpu = sum(cpu_seconds(pid) for pid in pids)
            began = time.time()
            backlog.produce()
            produced = time.time() - began
            times = backlog.settled(began + 1200).values()
            used = sum(cpu_seconds(pid) for pid in pids) - cpu
    return {
        "seconds": max(times) - began, "cpu_seconds": used, "produce_s": produced,
        "owned": owned,
    }  # fmt: skip


def commands_partitions(port: int) -> int:
    """How many commands and parked-commands partitions a ready worker runs (/ready says)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=2) as answer:
        return int(json.load(answer)["partitions"])


def speedups(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each row with `speedup`: its events/s over the mean of the 1-worker rows' (None when
    there is no 1-worker row)."""
    ones = [r["events_per_s"] for r in rows if r["workers"] == 1]
    base = sum(ones) / len(ones) if ones else None
    return [{**r, "speedup": round(r["events_per_s"] / base, 2) if base else None} for r in rows]


def table(rows: Sequence[dict[str, Any]]) -> list[str]:
    lines = [
        f"{'workers':>7} {'events/s':>9} {'speed-up':>9} {'cpu ms/ev':>10} "
        f"{'cmd+parked partitions':>22} {'load':>5}"
    ]
    for r in rows:
        owned = "/".join(str(n) for n in r["owned"])
        lines.append(
            f"{r['workers']:>7} {r['events_per_s']:>9} {r['speedup'] or '-':>9} "
            f"{r['cpu_ms_per_event']:>10} {owned:>22} {r['load_1m']:>5}"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--versions", type=int, default=4, help="Changes per user.")
    parser.add_argument("--clients", type=int, default=30, help="Tenants the backlog spans.")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--in-flight", type=int, default=64, help="Calls at once per worker.")
    parser.add_argument(
        "--receiver-ms",
        type=float,
        default=0.0,
        help="The receiver's answer time. With it well above a worker's CPU per event, and "
        "few calls in flight, a worker is bound by its calls in flight, not by a core.",
    )
    parser.add_argument("--quick", action="store_true", help="2,000 events.")
    args = parser.parse_args()
    if args.quick:
        args.events = 2000
    settings = Settings()
    bootstrap = resolve_bootstrap(settings, start=True)
    workdir = Path(tempfile.mkdtemp(prefix="bench-scaleout-"))
    tenants = [f"bench{n}" for n in range(args.clients)]
    rows: list[dict[str, Any]] = []
    for workers in args.workers:
        backlog = Backlog(
            bootstrap, settings, args.events, args.versions, prefix=f"scale{workers}",
            tenants=tenants, produce=False,
        )  # fmt: skip
        measured = drain(backlog, workers, workdir, args.in_flight, args.receiver_ms)
        rows.append({
            "workers": workers, "events_per_s": round(args.events / measured["seconds"], 1),
            "cpu_ms_per_event": round(measured["cpu_seconds"] * 1000 / args.events, 3),
            "produce_s": round(measured["produce_s"], 2), "owned": measured["owned"],
            "load_1m": round(os.getloadavg()[0], 2),
        })  # fmt: skip
        print(json.dumps(rows[-1]), flush=True)
    rows = speedups(rows)
    topics = settings.topics
    print(
        f"\n{args.events} events ({args.versions} per user) over {args.clients} clients, "
        f"{args.in_flight} in flight per worker, receiver {args.receiver_ms:g} ms, "
        f"{os.cpu_count()} cores, partitions: "
        f"{topics.inbound_partitions} inbound, {topics.commands_partitions} commands"
    )
    print("\n".join(table(rows)))
    print(json.dumps({
        "events": args.events, "clients": args.clients, "cores": os.cpu_count(),
        "in_flight": args.in_flight, "receiver_ms": args.receiver_ms,
        "inbound_partitions": topics.inbound_partitions,
        "commands_partitions": topics.commands_partitions, "rows": rows,
    }))  # fmt: skip


if __name__ == "__main__":
    main()
