"""Produce -> receiver call latency of `connector worker` at 25, 50 and 90 % of its maximum
drain rate, the reference receiver in its own process.

    python -m bench.latency                    # max rate from 10,000 events; 60 s a step
    python -m bench.latency --quick            # about two minutes: 2,000 events; 15 s a step
    python -m bench.latency --max-rate 150     # skip measuring the max rate
    python -m bench.latency --max-rate 200 --fractions 0.25,0.5   # 50 and 100 events/s
    python -m bench.latency --checkout /tmp/base   # the worker of another source tree

- max rate: `bench.peer`'s worker run on a pre-produced backlog (ready -> last outcome).
- Then one fresh worker on fresh, empty topics; once ready, each step produces user events
  at a steady rate (a paced producer, `linger.ms` 0, each event stamped with the wall clock
  just before `produce`) for `--seconds`, then waits for all of the step's outcomes before
  the next step starts. A warm-up at the first step's rate (`--warmup` s: first connections,
  first creates) comes before them and is not counted; then the worker's CPU with no
  traffic is measured for `--idle` s, so each step's CPU per event can be split into the
  idle floor and the work above it (`busy`), and by thread (`/proc/PID/task/*`, summed by
  thread name).
- Latency: from that stamp to the broker timestamp of the change's first final outcome
  (the worker writes it right after the receiver answered), joined on (client, intouch_id,
  version). Split in two at the command's broker timestamp: produce -> command (fetch,
  the planner's batch wait `PLAN_BATCH_WITHIN`, planning) and command -> outcome (the
  command's ack, the sink's fetch, lanes, the pending marker for a create, the call, the
  outcome). Every clock is this machine's.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.parts import (
    FINAL,
    TICK,
    Change,
    change_of,
    cpu_seconds,
    encoded_event,
    percentile,
    receiver_process,
    running_workers,
)
from bench.peer import CLIENT, CLUB, RECEIVER_ARGS, Backlog, run_worker
from streams.avro.codec import default_codecs
from streams.cli.common import resolve_bootstrap
from streams.kafka import clients
from streams.settings import Settings

FRACTIONS = (0.25, 0.5, 0.9)
#: Issue 12's target: p99 produce -> call at 50 % of the max rate.
TARGET_P99_MS, TARGET_AT = 200.0, 0.5


def schedule(rate: float, seconds: float) -> list[float]:
    """When each event of a steady `rate` a second over `seconds` is due, from the start."""
    if rate <= 0:
        raise ValueError("rate must be positive")
    return [n / rate for n in range(round(rate * seconds))]


def spread(values_ms: Sequence[float]) -> dict[str, float]:
    """p50, p95, p99 and max of `values_ms`, rounded to 0.1 ms."""
    return {
        "p50": round(percentile(values_ms, 50), 1),
        "p95": round(percentile(values_ms, 95), 1),
        "p99": round(percentile(values_ms, 99), 1),
        "max": round(max(values_ms), 1),
    }


def step_summary(
    produced: dict[Change, float], commands: dict[Change, float], outcomes: dict[Change, float]
) -> dict[str, Any]:
    """One step's latencies (ms): produce -> outcome, its two halves at the command, and the
    p50 of the step's first and last tenth of events (a queue building up shows as growth)."""
    changes = sorted(produced, key=produced.__getitem__)
    whole = [1000 * (outcomes[c] - produced[c]) for c in changes]
    tenth = max(1, len(whole) // 10)
    planner = [1000 * (commands[c] - produced[c]) for c in changes if c in commands]
    sink = [1000 * (outcomes[c] - commands[c]) for c in changes if c in commands]
    out: dict[str, Any] = {
        "events": len(changes), "latency_ms": spread(whole),
        "first_tenth_p50_ms": round(percentile(whole[:tenth], 50), 1),
        "last_tenth_p50_ms": round(percentile(whole[-tenth:], 50), 1),
    }  # fmt: skip
    if planner:
        out["to_command_ms"] = spread(planner)
        out["command_to_call_ms"] = spread(sink)
    return out


def thread_names(py_spy: str | None, pid: int) -> dict[str, str]:
    """`pid`'s Python threads' names by thread id, as `py-spy dump` tells them (none without
    py-spy: /proc gives every Python thread the process's name)."""
    if not py_spy:
        return {}
    dump = subprocess.run(
        [py_spy, "dump", "--pid", str(pid)], capture_output=True, text=True, timeout=60
    ).stdout
    found = re.findall(r'^Thread (\d+) \([^)]*\): "([^"]*)"', dump, flags=re.MULTILINE)
    return {tid: re.sub(r"-\d+$", "", name.split(":")[0]) for tid, name in found}


def thread_cpu(pid: int, names: dict[str, str] | None = None) -> dict[str, float]:
    """CPU seconds (user + system) of each of `pid`'s threads, summed by thread name; Python
    threads by `names` (`thread_names`), else as `main` and `py-TID`."""
    names = names or {}
    out: dict[str, float] = {}
    own = Path(f"/proc/{pid}/comm").read_text().strip()
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            name = (task / "comm").read_text().strip()
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # the thread ended meanwhile
            continue
        if name == own:
            default = "main" if task.name == str(pid) else f"py-{task.name}"
            name = names.get(task.name, default)
        out[name] = out.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / TICK
    return out


def thread_ms(before: dict[str, float], after: dict[str, float], events: int) -> dict[str, float]:
    """CPU ms per event of each thread name between two `thread_cpu` readings (>= 0.05)."""
    spent = {n: 1000 * (t - before.get(n, 0.0)) / events for n, t in after.items()}
    return {n: round(ms, 2) for n, ms in sorted(spent.items(), key=lambda i: -i[1]) if ms >= 0.05}


def idle_share(pid: int, seconds: float) -> float:
    """The share of a core the worker uses with nothing to do, over `seconds`."""
    if seconds <= 0:
        return 0.0
    began, cpu = time.monotonic(), cpu_seconds(pid)
    time.sleep(seconds)  # a measuring window, not waiting for anything
    return round((cpu_seconds(pid) - cpu) / (time.monotonic() - began), 3)


def busy_ms(used: float, idle: float, span: float, events: int) -> float:
    """CPU ms per event above what the worker would have used idle over `span`."""
    return round(1000 * max(0.0, used - idle * span) / events, 3)


def verdict(steps: Sequence[dict[str, Any]]) -> bool | None:
    """Whether p99 at `TARGET_AT` of the max rate is within `TARGET_P99_MS` (None: no such
    step)."""
    at = [s for s in steps if s["fraction"] == TARGET_AT]
    return at[0]["latency_ms"]["p99"] <= TARGET_P99_MS if at else None


class Stamps(threading.Thread):
    """Follows the commands and outcomes topics: each change's first command's and first
    final outcome's broker time."""

    def __init__(self, backlog: Backlog) -> None:
        super().__init__(daemon=True)
        self.backlog, self.codecs = backlog, default_codecs()
        self.commands: dict[Change, float] = {}
        self.outcomes: dict[Change, float] = {}
        self.stopping = threading.Event()
        self.lock = threading.Lock()

    def run(self) -> None:
        topics = self.backlog.topics
        commands = topics.name(topics.commands_topic)
        consumer = clients.consumer(
            self.backlog.bootstrap, self.backlog.settings.kafka,
            f"stamps-{uuid.uuid4().hex[:6]}", {"auto.offset.reset": "earliest"},
        )  # fmt: skip
        consumer.subscribe([commands, self.backlog.outcomes])
        try:
            while not self.stopping.is_set():
                for message in consumer.consume(500, 0.1):
                    if message.error():
                        continue
                    at = message.timestamp()[1] / 1000
                    if message.topic() == commands:
                        row = self.codecs["Command"].decode(message.value())
                        into = self.commands
                    else:
                        row = self.codecs["Outcome"].decode(message.value())
                        if row["status"] not in FINAL:
                            continue
                        into = self.outcomes
                    with self.lock:
                        into.setdefault((row["client_id"], row["intouch_id"], row["version"]), at)
        finally:
            consumer.close()

    def wait(self, changes: Sequence[Change], deadline: float) -> None:
        """Until every one of `changes` has a final outcome."""
        while True:
            with self.lock:
                missing = sum(1 for c in changes if c not in self.outcomes)
            if not missing:
                return
            if time.time() > deadline:
                raise SystemExit(f"{missing} of {len(changes)} outcomes missing")
            time.sleep(0.1)


def paced(backlog: Backlog, rate: float, seconds: float, tag: str) -> dict[Change, float]:
    """Produce `rate` events a second for `seconds`; each change's produce stamp."""
    codecs = default_codecs()
    producer = clients.producer(backlog.bootstrap, backlog.settings.kafka, {"linger.ms": 0})
    due = schedule(rate, seconds)
    changes = [change_of(n, len(due), 4, (CLIENT,), tag) for n in range(len(due))]
    events = [encoded_event(codecs, change, CLUB) for change in changes]
    produced: dict[Change, float] = {}
    start = time.monotonic()
    for at, change, (key, value) in zip(due, changes, events, strict=True):
        delay = start + at - time.monotonic()
        if delay > 0:
            time.sleep(delay)  # pacing the producer, not waiting for a result
        produced[change] = time.time()
        producer.produce(backlog.users, key=key, value=value)
        producer.poll(0)
    producer.flush(60)
    return produced


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000, help="Backlog for the max rate.")
    parser.add_argument("--max-rate", type=float, help="Events/s; skips measuring it.")
    parser.add_argument("--seconds", type=float, default=60.0, help="Duration of each step.")
    parser.add_argument("--warmup", type=float, default=5.0, help="Seconds not counted.")
    parser.add_argument("--idle", type=float, default=10.0, help="Seconds of idle CPU measured.")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="Receiver latency.")
    parser.add_argument("--quick", action="store_true", help="2,000 events, 15 s a step.")
    parser.add_argument(
        "--fractions", default=",".join(map(str, FRACTIONS)), help="Steps, of the max rate."
    )
    parser.add_argument(
        "--checkout", help="Run the worker from this source tree (e.g. a `git archive` copy)."
    )
    parser.add_argument(
        "--worker-env", action="append", default=[], metavar="NAME=VALUE",
        help="A setting for the worker (repeatable).",
    )  # fmt: skip
    parser.add_argument("--py-spy", metavar="PATH", help="Name the worker's threads with it.")
    args = parser.parse_args()
    fractions = tuple(float(f) for f in args.fractions.split(","))
    extra = dict(e.split("=", 1) for e in args.worker_env)
    if args.checkout:
        extra["PYTHONPATH"] = args.checkout
    if args.quick:
        args.events, args.seconds = 2000, 15.0
    settings = Settings()
    bootstrap = resolve_bootstrap(settings, start=True)
    workdir = Path(tempfile.mkdtemp(prefix="bench-latency-"))
    receiver = (*RECEIVER_ARGS, "--latency-ms", str(args.latency_ms))
    max_rate, measured, backlog_cpu = args.max_rate, args.max_rate is None, None
    if max_rate is None:
        backlog = Backlog(bootstrap, settings, args.events, 4, prefix="max")
        with receiver_process(*receiver) as url:
            drained = run_worker(backlog, url, 64, workdir, extra)
        max_rate = args.events / drained["seconds"]
        backlog_cpu = round(1000 * drained["cpu_seconds"] / args.events, 3)
        print(json.dumps({"max_rate": round(max_rate, 1), "cpu_ms_per_event": backlog_cpu,
                          "load_1m": round(os.getloadavg()[0], 2)}))  # fmt: skip
    steps: list[dict[str, Any]] = []
    live = Backlog(bootstrap, settings, 0, 4, prefix="lat", produce=False)
    with receiver_process(*receiver) as url:
        live.serve(url)
        app_id = f"{live.topics.topic_prefix.rstrip('.')}-w"
        with running_workers(bootstrap, live.topics, app_id, workdir, 64, extra) as (worker,):
            stamps = Stamps(live)
            stamps.start()
            try:
                warm = paced(live, fractions[0] * max_rate, args.warmup, "W")
                stamps.wait(list(warm), time.time() + 600)
                idle = idle_share(worker.process.pid, args.idle)
                names = thread_names(args.py_spy, worker.process.pid)
                print(json.dumps({"idle_cpu_share": idle}), flush=True)
                for n, fraction in enumerate(fractions):
                    rate = fraction * max_rate
                    began, cpu = time.time(), cpu_seconds(worker.process.pid)
                    threads = thread_cpu(worker.process.pid, names)
                    produced = paced(live, rate, args.seconds, f"S{n}")
                    sent_for = time.time() - began
                    stamps.wait(list(produced), time.time() + 600)
                    used = cpu_seconds(worker.process.pid) - cpu
                    per_thread = thread_ms(
                        threads, thread_cpu(worker.process.pid, names), len(produced)
                    )
                    with stamps.lock:
                        step = step_summary(produced, stamps.commands, stamps.outcomes)
                    step.update(fraction=fraction, rate=round(rate, 1),
                                produced_per_s=round(len(produced) / sent_for, 1),
                                cpu_ms_per_event=round(1000 * used / len(produced), 3),
                                cpu_share=round(used / (time.time() - began), 2),
                                busy_cpu_ms_per_event=busy_ms(used, idle, time.time() - began,
                                                              len(produced)),
                                thread_cpu_ms_per_event=per_thread,
                                load_1m=round(os.getloadavg()[0], 2))  # fmt: skip
                    steps.append(step)
                    print(json.dumps(step), flush=True)
            finally:
                stamps.stopping.set()
                stamps.join()
    met = verdict(steps)
    print(
        f"\nmax rate {max_rate:.1f} events/s ({'measured' if measured else 'given'}"
        f"{f', {backlog_cpu} CPU ms/event' if backlog_cpu else ''}), "
        f"receiver {args.latency_ms:g} ms, {args.seconds:g} s a step, {os.cpu_count()} cores"
    )
    print("\n".join(table(steps)))
    for s in steps:
        print(f"{s['fraction']:>5.0%} CPU ms/event by thread: {s['thread_cpu_ms_per_event']}")
    print(
        f"p99 <= {TARGET_P99_MS:g} ms at {TARGET_AT:.0%} of the max rate: "
        f"{'met' if met else 'NOT met'}"
    )
    print(json.dumps({
        "max_rate": round(max_rate, 1), "max_rate_measured": measured,
        "max_rate_cpu_ms_per_event": backlog_cpu,
        "receiver_ms": args.latency_ms, "seconds": args.seconds, "cores": os.cpu_count(),
        "target_met": met, "steps": steps,
    }))  # fmt: skip


def table(steps: Sequence[dict[str, Any]]) -> list[str]:
    """Each step as a line: rate, produce -> call p50/p95/p99/max, the two halves' p99, the
    p50 of the first and last tenth, the worker's CPU per event (all / above idle) and its
    share of a core."""
    lines = [
        f"{'step':>5} {'events/s':>9} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'max ms':>8} "
        f"{'p99 ->cmd':>10} {'p99 cmd->call':>14} {'p50 1st/last 10%':>17} {'cpu/busy ms/ev':>15} "
        f"{'cpu':>5} {'load':>5}"
    ]
    for s in steps:
        whole, plan, sink = (
            s["latency_ms"],
            s.get("to_command_ms", {}),
            s.get("command_to_call_ms", {}),
        )
        lines.append(
            f"{s['fraction']:>5.0%} {s['produced_per_s']:>9} {whole['p50']:>8} {whole['p95']:>8} "
            f"{whole['p99']:>8} {whole['max']:>8} {plan.get('p99', '-'):>10} "
            f"{sink.get('p99', '-'):>14} "
            f"{s['first_tenth_p50_ms']:>8}/{s['last_tenth_p50_ms']:<8} "
            f"{s['cpu_ms_per_event']:>7}/{s['busy_cpu_ms_per_event']:<7} {s['cpu_share']:>5} "
            f"{s['load_1m']:>5}"
        )
    return lines


if __name__ == "__main__":
    main()
