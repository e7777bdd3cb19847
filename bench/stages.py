"""`connector worker`'s planner alone, its sink alone and both together, on backlogs of the
same size, one after the other in one run, the reference receiver in its own process.

    python -m bench.stages               # 10,000 events; sink and end to end at 0 and 20 ms
    python -m bench.stages --quick       # about a minute: 2,000 events at 0 ms

- planner: a worker on a pre-produced backlog of user events whose receiver never answers
  (`--latency-ms 600000`, one call in flight, a 900 s call timeout), so its sink holds one
  call and calls nothing more (its consumer still fetches commands). From ready (/ready
  answers 200) until its /metrics say every event was planned and every command acknowledged
  by the broker (`connector_commands_total` + `connector_planner_skipped_total` = events),
  polled every 0.1 s: the time the commands topic takes to hold every command.
- sink: those commands, copied (key, value, headers, partition) onto the commands topic of
  fresh topics whose inbound topics stay empty, drained by a fresh worker group on a fresh
  receiver: from ready until every command has a final outcome (its broker time). In flight:
  `connector_sink_in_flight` sampled every 0.1 s; call: the mean of
  `connector_receiver_call_seconds`.
- end to end: `bench.peer`'s worker run (ready -> last final outcome) on a fresh backlog.

CPU is the worker process's own (every thread) over the same span, from /proc.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, TopicPartition

from bench.parts import (
    Change,
    cpu_seconds,
    receiver_process,
    running_workers,
    scrape,
    total,
)
from bench.peer import RECEIVER_ARGS, Backlog, run_worker
from streams.avro.codec import default_codecs
from streams.cli.common import resolve_bootstrap
from streams.kafka import clients
from streams.settings import Settings

#: A receiver call that does not answer while the planner is measured (the longest receiver
#: timeout a worker takes: planning 10,000 events takes a few seconds).
HANG = ("--latency-ms", "600000")
HANG_ENV = {"CONNECTOR_RECEIVER_TIMEOUT": "59"}


def planner_alone(backlog: Backlog, workdir: Path) -> dict[str, float]:
    """Ready -> every event planned and its command acknowledged, the sink stuck on a call."""
    with receiver_process(*RECEIVER_ARGS, *HANG) as url:
        backlog.serve(url)
        app_id = f"{backlog.topics.topic_prefix.rstrip('.')}-plan"
        topics = backlog.topics
        with running_workers(
            backlog.bootstrap, topics, app_id, workdir, 1, HANG_ENV, kill=True
        ) as (w,):
            began, cpu = time.time(), cpu_seconds(w.process.pid)
            deadline = began + 900
            while True:
                metrics = scrape(w.port)
                planned = total(metrics, "connector_events_total")
                commands = total(metrics, "connector_commands_total")
                skipped = total(metrics, "connector_planner_skipped_total")
                if planned >= backlog.events and commands + skipped >= backlog.events:
                    break
                if time.time() > deadline or w.process.poll() is not None:
                    raise SystemExit(f"planner: {planned} planned, {commands} commands; {w.log}")
                time.sleep(0.1)
            return {
                "seconds": time.time() - began,
                "cpu_seconds": cpu_seconds(w.process.pid) - cpu,
                "commands": commands,
            }


def copy_commands(source: Backlog, target: Backlog) -> set[Change]:
    """Every command on `source`'s commands topic, onto the same partition of `target`'s;
    the changes they are for."""
    settings, codecs = source.settings, default_codecs()
    topic = source.topics.name(source.topics.commands_topic)
    into = target.topics.name(target.topics.commands_topic)
    consumer = clients.consumer(source.bootstrap, settings.kafka, f"copy-{uuid.uuid4().hex[:6]}")
    producer = clients.producer(target.bootstrap, settings.kafka, {"linger.ms": 20})
    partitions = range(source.topics.commands_partitions)
    ends = {
        p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
        for p in partitions
    }
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
    changes: set[Change] = set()
    done = {p: ends[p] == 0 for p in partitions}
    try:
        while not all(done.values()):
            for message in consumer.consume(1000, 1.0):
                if message.error():
                    continue
                p = message.partition()
                producer.produce(
                    into, key=message.key(), value=message.value(),
                    headers=message.headers(), partition=p,
                )  # fmt: skip
                producer.poll(0)
                row = codecs["Command"].decode(message.value())
                changes.add((row["client_id"], row["intouch_id"], row["version"]))
                done[p] = message.offset() + 1 >= ends[p]
        producer.flush(60)
    finally:
        consumer.close()
    return changes


class InFlight(threading.Thread):
    """Samples a worker's `connector_sink_in_flight` every 0.1 s until stopped."""

    def __init__(self, port: int) -> None:
        super().__init__(daemon=True)
        self.port = port
        self.samples: list[float] = []
        self.last: dict[str, float] = {}
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.wait(0.1):
            metrics = scrape(self.port)
            if metrics:
                self.samples.append(total(metrics, "connector_sink_in_flight"))
                self.last = metrics


def sink_alone(commands_from: Backlog, latency: float, workdir: Path) -> dict[str, float]:
    """A fresh group drains a copy of `commands_from`'s commands: ready -> last outcome."""
    target = Backlog(
        commands_from.bootstrap, commands_from.settings, commands_from.events,
        commands_from.per, prefix="sink", produce=False,
    )  # fmt: skip
    changes = copy_commands(commands_from, target)
    with receiver_process(*RECEIVER_ARGS, "--latency-ms", str(latency)) as url:
        target.serve(url)
        app_id = f"{target.topics.topic_prefix.rstrip('.')}-sink"
        with running_workers(target.bootstrap, target.topics, app_id, workdir, 64, {}) as (w,):
            began, cpu = time.time(), cpu_seconds(w.process.pid)
            sampler = InFlight(w.port)
            sampler.start()
            try:
                times = target.settled(began + 900, expected=len(changes)).values()
            finally:
                sampler.stopping.set()
                sampler.join()
            used = cpu_seconds(w.process.pid) - cpu
    last, samples = sampler.last, sampler.samples or [0.0]
    calls = total(last, "connector_receiver_call_seconds_count")
    return {
        "seconds": max(times) - began, "cpu_seconds": used, "commands": len(changes),
        "in_flight_mean": sum(samples) / len(samples), "in_flight_max": max(samples),
        "call_ms": 1000 * total(last, "connector_receiver_call_seconds_sum") / max(calls, 1),
        "calls": calls,
    }  # fmt: skip


def row(
    stage: str, latency: float | None, events: int, measured: dict[str, float]
) -> dict[str, Any]:
    """One run's figures: events/s and CPU ms per event of `events` over its span."""
    out: dict[str, Any] = {
        "stage": stage, "latency_ms": latency,
        "events_per_s": round(events / measured["seconds"], 1),
        "cpu_ms_per_event": round(measured["cpu_seconds"] * 1000 / events, 3),
        "load_1m": round(os.getloadavg()[0], 2),
    }  # fmt: skip
    out.update({k: round(v, 2) for k, v in measured.items() if k not in ("seconds", "cpu_seconds")})
    return out


def summary_table(rows: list[dict[str, Any]]) -> list[str]:
    """The rows as a text table, one line each."""
    lines = [
        f"{'stage':<11} {'receiver':>8} {'events/s':>9} {'cpu ms/ev':>10} {'in flight':>10} "
        f"{'call ms':>8} {'load':>5}"
    ]
    for r in rows:
        latency = "-" if r["latency_ms"] is None else f"{r['latency_ms']:g}ms"
        flight = (
            f"{r['in_flight_mean']:.1f}/{r['in_flight_max']:g}" if "in_flight_mean" in r else "-"
        )
        call = f"{r['call_ms']:.1f}" if "call_ms" in r else "-"
        lines.append(
            f"{r['stage']:<11} {latency:>8} {r['events_per_s']:>9} {r['cpu_ms_per_event']:>10} "
            f"{flight:>10} {call:>8} {r['load_1m']:>5}"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--versions", type=int, default=4, help="Changes per user.")
    parser.add_argument("--latency-ms", type=float, nargs="+", default=[0.0, 20.0])
    parser.add_argument("--quick", action="store_true", help="2,000 events at 0 ms.")
    args = parser.parse_args()
    if args.quick:
        args.events, args.latency_ms = 2000, [0.0]
    settings = Settings()
    bootstrap = resolve_bootstrap(settings, start=True)
    workdir = Path(tempfile.mkdtemp(prefix="bench-stages-"))
    rows: list[dict[str, Any]] = []

    def record(stage: str, latency: float | None, measured: dict[str, float]) -> None:
        rows.append(row(stage, latency, args.events, measured))
        print(json.dumps(rows[-1]), flush=True)

    planned = Backlog(bootstrap, settings, args.events, args.versions, prefix="plan")
    record("planner", None, planner_alone(planned, workdir))
    for latency in args.latency_ms:
        record("sink", latency, sink_alone(planned, latency, workdir))
        backlog = Backlog(bootstrap, settings, args.events, args.versions, prefix="e2e")
        with receiver_process(*RECEIVER_ARGS, "--latency-ms", str(latency)) as url:
            record("end-to-end", latency, run_worker(backlog, url, 64, workdir, {}))
    print(f"\n{args.events} events ({args.versions} per user), {os.cpu_count()} cores")
    print("\n".join(summary_table(rows)))
    print(json.dumps({"events": args.events, "cores": os.cpu_count(), "rows": rows}))


if __name__ == "__main__":
    main()
