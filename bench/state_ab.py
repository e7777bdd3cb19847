"""Ready time of checkouts side by side: one seeded links changelog, a worker with an empty
data dir started from each checkout in turn; ready s, RSS, and CPU s per thread at ready.

    python -m bench.state_ab --links 100000 --rounds 2 --checkouts /tmp/base .
    python -m bench.state_ab --topic-prefix state-1a2b3c. --links 1000000 --checkouts . /tmp/base

CPU seconds at ready are steadier than wall seconds on a shared machine. `--topic-prefix`
reuses topics a previous run seeded (and kept) with the same `--links`.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

from bench.state import load_average, rss_kb, seed
from demo.worker import start_worker, stop_worker, worker_env
from streams.cli.common import resolve_bootstrap
from streams.kafka.local import free_port
from streams.kafka.topics import design_topics, ensure_topics
from streams.settings import Settings, TopicSettings


def cpu_by_thread(pid: int) -> dict[str, float]:
    """CPU seconds of the process so far, per thread name (RocksDB's threads as one)."""
    found: dict[str, float] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            stat = (task / "stat").read_text()
        except OSError:
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        name = "rocksdb" if name.startswith("rocksdb") else name
        fields = stat[stat.rindex(")") + 2 :].split()
        found[name] = found.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / tick
    found["all"] = sum(found.values())
    return {name: round(value, 1) for name, value in found.items()}


def start_ready(checkout: Path, bootstrap: str, topics: TopicSettings) -> dict[str, Any]:
    """Start a worker of `checkout` with an empty data dir; time it to `/ready`."""
    workdir = Path(tempfile.mkdtemp(prefix="bench-state-ab-"))
    port = free_port()
    env = worker_env(
        bootstrap=bootstrap,
        topic_prefix=topics.topic_prefix,
        app_id=f"app-{uuid.uuid4().hex[:6]}",
        data_dir=workdir / "data",
        CONNECTOR_METRICS_PORT=str(port),
    )
    env["PYTHONPATH"] = str(checkout)
    log = workdir / "worker.log"
    started = time.monotonic()
    worker = start_worker(env, log, cwd=checkout)
    peak, loaded, ready, cpu = 0, None, None, {}
    try:
        while ready is None and time.monotonic() - started < 900:
            peak = max(peak, rss_kb(worker.pid))
            if loaded is None and "starting agents" in log.read_text(errors="replace"):
                loaded = time.monotonic() - started
            if worker.poll() is not None:
                raise RuntimeError(f"the worker stopped: {log.read_text()[-2000:]}")
            try:
                if httpx.get(f"http://127.0.0.1:{port}/ready", timeout=2).status_code == 200:
                    ready, cpu = time.monotonic() - started, cpu_by_thread(worker.pid)
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        settle_until = time.monotonic() + 5
        while time.monotonic() < settle_until:
            peak = max(peak, rss_kb(worker.pid))
            time.sleep(0.2)
        settled = rss_kb(worker.pid)
    finally:
        stop_worker(worker)
        shutil.rmtree(workdir, ignore_errors=True)
    return {
        "checkout": str(checkout),
        "loaded_s": None if loaded is None else round(loaded, 1),
        "ready_s": None if ready is None else round(ready, 1),
        "rss_peak_mb": round(peak / 1024),
        "rss_settled_mb": round(settled / 1024),
        "cpu_s_at_ready": cpu,
        "load": load_average(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--links", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--checkouts", type=Path, nargs="+", required=True)
    parser.add_argument("--topic-prefix", help="Topics seeded before (kept): not seeded again.")
    args = parser.parse_args()
    settings = Settings()
    bootstrap = resolve_bootstrap(settings, start=True)
    prefix = args.topic_prefix or f"state-{uuid.uuid4().hex[:6]}."
    topics = TopicSettings(topic_prefix=prefix)
    if args.topic_prefix is None:
        assert not ensure_topics(bootstrap, settings.kafka, design_topics(topics)).mismatched
        print(f"seeding {args.links:,} links under {prefix} ...", flush=True)
        print(json.dumps(seed(bootstrap, settings, topics, args.links, 1)), flush=True)
    runs = []
    for _ in range(args.rounds):
        for checkout in args.checkouts:
            runs.append(start_ready(checkout.resolve(), bootstrap, topics))
            print(json.dumps(runs[-1]), flush=True)
    print()
    print("| checkout | state loaded s | ready s | RSS peak/settled MB | CPU s at ready "
          "(all / Python threads / RocksDB) | load average |")  # fmt: skip
    print("|---|---|---|---|---|---|")
    for run in runs:
        cpu = run["cpu_s_at_ready"]
        print(
            f"| {run['checkout']} | {run['loaded_s']} | {run['ready_s']} | "
            f"{run['rss_peak_mb']}/{run['rss_settled_mb']} | "
            f"{cpu.get('all')} / {cpu.get('python')} / {cpu.get('rocksdb')} | {run['load']} |"
        )
    print(json.dumps({"links": args.links, "topic_prefix": prefix, "runs": runs}))


if __name__ == "__main__":
    main()
