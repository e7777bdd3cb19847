"""What only consuming costs per event, by client (bench/consumers.py), beside the peer.

    python -m bench.floor                  # 10,000 commands, 3 interleaved rounds
    python -m bench.floor --quick          # about a minute: 2,000 commands, 2 rounds
    python -m bench.floor --rate 50        # a steady 50 a second for 30 s instead

Each consumer reads the same pre-produced backlog of Avro Commands (the worker's commands
topic's encoding) in its own process and does nothing else; the peer (bench/minimal.py,
receiver at 0 ms) drains the same number of user events in the same rounds. Events/s and
CPU count from the moment a consumer holds its partitions to its last record (the peer:
its last call); CPU is the process's (every thread) from /proc, and each consumer's split
by thread (main, Faust's consumer thread, librdkafka's) is its own reading of /proc.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import bench.peer
from bench.consumers import KINDS, PREFIX, cpu_split, thread_cpu
from bench.latency import schedule
from bench.parts import change_of, cpu_seconds, encoded_event, receiver_process
from bench.peer import (
    CLIENT,
    CLUB,
    RECEIVER_ARGS,
    RECEIVER_CLIENT,
    RECEIVER_CLUB,
    Backlog,
    profiled,
)
from bench.state import command
from streams.avro.codec import default_codecs
from streams.cli.common import resolve_bootstrap
from streams.kafka import clients
from streams.settings import Settings, TopicSettings

PEER = "peer"
#: The longest one consumer may take from start to its last record.
RUN_TIMEOUT = 600.0
#: What the worker consumes per event: the planner's and the sink's Faust agents and the
#: two confluent-kafka followers (links, commands).
WORKER_CONSUMES = {"faust-batches": 1, "faust-events": 1, "confluent-decode": 2}


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3, help="Interleaved rounds (median).")
    parser.add_argument("--quick", action="store_true", help="2,000 events, 2 rounds.")
    parser.add_argument(
        "--kinds", nargs="+", choices=[*KINDS, PEER], default=[*KINDS, PEER], metavar="KIND"
    )
    parser.add_argument(
        "--rate", type=float, help="Produce this many a second while each consumer runs."
    )
    parser.add_argument("--seconds", type=float, default=30.0, help="How long, with --rate.")
    parser.add_argument("--py-spy", metavar="PATH", help="Sample each consumer with this py-spy.")
    args = parser.parse_args(argv)
    if args.quick:
        args.events, args.rounds, args.seconds = 2000, 2, 10.0
    if args.rate is not None:
        if args.rate <= 0:
            parser.error("--rate must be positive")
        args.events = len(schedule(args.rate, args.seconds))
    return args


def encoded_commands(count: int, per: int = 4) -> list[tuple[bytes, bytes]]:
    """(key, value) of `count` Avro user upserts: count/per users, `per` versions each."""
    codecs = default_codecs()
    records = []
    for n in range(count):
        client, user, version = change_of(n, count, per, (CLIENT,))
        intouch_id = f"u{user.removeprefix('U')}"
        key = {"client_id": client, "entity": "USER", "intouch_id": intouch_id}
        value = command(client, intouch_id, version)
        records.append((codecs["EntityKey"].encode(key), codecs["Command"].encode(value)))
    return records


def encoded_users(count: int, per: int = 4) -> list[tuple[bytes, bytes]]:
    codecs = default_codecs()
    return [encoded_event(codecs, change_of(n, count, per, (CLIENT,)), CLUB) for n in range(count)]


def feed(backlog: Backlog, topic: str, records: Sequence[tuple[bytes, bytes]],
         rate: float | None) -> None:  # fmt: skip
    """Produce `records` to `topic`: all at once, or `rate` a second."""
    producer = clients.producer(
        backlog.bootstrap, backlog.settings.kafka, {"linger.ms": 20 if rate is None else 0}
    )
    due = schedule(rate, len(records) / rate) if rate else [0.0] * len(records)
    start = time.monotonic()
    for at, (key, value) in zip(due, records, strict=True):
        delay = start + at - time.monotonic()
        if delay > 0:
            time.sleep(delay)  # pacing the producer, not waiting for a result
        producer.produce(topic, key=key, value=value)
        producer.poll(0)
    producer.flush(60)


def protocol(line: str, prefix: str) -> str | None:
    """The protocol part of a child's stdout line (None: another line, to skip)."""
    line = line.strip()
    if prefix and not line.startswith(prefix):
        return None
    return line.removeprefix(prefix)


def said(process: subprocess.Popen[str], prefix: str) -> str:
    """A child's next protocol line; its end (or the watchdog's kill) is an error."""
    assert process.stdout is not None
    for line in process.stdout:
        text = protocol(line, prefix)
        if text is not None:
            return text
    raise SystemExit(f"{process.args!r} ended before it said what it had to")


def measure(
    command_line: list[str], prefix: str, on_ready: Callable[[], None], profile: Path | None
) -> dict[str, Any]:
    """Run one consumer: ready -> its result line, and its CPU from /proc over that span
    (sampled by py-spy into `profile` meanwhile, when asked)."""
    process = subprocess.Popen(command_line, stdout=subprocess.PIPE, text=True)
    watchdog = threading.Timer(RUN_TIMEOUT, process.kill)
    watchdog.start()
    try:
        if said(process, prefix) != "ready":
            raise SystemExit(f"{command_line[2:4]} did not start")
        began, cpu = time.time(), cpu_seconds(process.pid)
        threads = thread_cpu(process.pid)
        feeding = threading.Thread(target=on_ready)
        feeding.start()
        with profiled(process.pid, profile):
            result = json.loads(said(process, prefix))
        last, used = time.time(), cpu_seconds(process.pid)
        result.setdefault("threads", cpu_split(threads, process.pid))
        feeding.join()
    finally:
        watchdog.cancel()
        process.kill()
        process.wait(timeout=30)
    return {**result, "seconds": last - began, "cpu_seconds": used - cpu}


def idle_topics(topics: TopicSettings) -> list[str]:
    """The worker's topics besides the commands topic that its Faust agents read."""
    return [
        topics.name(name)
        for name in (topics.users_topic, topics.staff_topic, topics.lead_sources_topic,
                     topics.replay_topic, topics.parked_topic)
    ]  # fmt: skip


def consumer_line(
    kind: str, backlog: Backlog, events: int, url: str = "", idle: Sequence[str] = ()
) -> list[str]:
    """The command line of one `kind` of consumer reading `events` records of `backlog`
    (`faust-worker`: and the empty topics `idle`)."""
    group = f"floor-{uuid.uuid4().hex[:6]}"
    if kind == PEER:
        return [
            sys.executable, "-m", "bench.minimal", "--bootstrap", backlog.bootstrap,
            "--topic", backlog.users, "--group", group, "--base", url,
            "--client", RECEIVER_CLIENT, "--club", RECEIVER_CLUB, "--events", str(events),
        ]  # fmt: skip
    return [
        sys.executable, "-m", "bench.consumers", kind, "--bootstrap", backlog.bootstrap,
        "--topic", commands_of(backlog), "--group", group, "--events", str(events),
        *(["--idle-topics", *idle] if kind == "faust-worker" else []),
    ]  # fmt: skip


def commands_of(backlog: Backlog) -> str:
    return backlog.topics.name(backlog.topics.commands_topic)


def run_one(
    kind: str, backlog: Backlog, events: int, rate: float | None, idle: Sequence[str],
    profile: Path | None = None,
) -> dict[str, Any]:  # fmt: skip
    """One consumer of `kind` over `events` records: pre-produced, or fed at `rate`."""
    if kind == PEER:
        records, topic = encoded_users(events), backlog.users
    else:
        records, topic = encoded_commands(events), commands_of(backlog)

    def on_ready() -> None:
        if rate:
            feed(backlog, topic, records, rate)

    if kind != PEER:
        return measure(consumer_line(kind, backlog, events, idle=idle), PREFIX, on_ready, profile)
    with receiver_process(*RECEIVER_ARGS, "--latency-ms", "0") as url:
        measured = measure(consumer_line(kind, backlog, events, url), "", on_ready, profile)
    if measured["errors"]:
        raise SystemExit(f"the peer's receiver calls failed: {measured}")
    return measured


def row(kind: str, number: int, events: int, measured: dict[str, Any]) -> dict[str, Any]:
    """One run's figures: events/s, CPU ms per event, and per thread (when it said)."""
    per_event = 1000 / events
    return {
        "kind": kind,
        "round": number,
        "events_per_s": round(events / measured["seconds"], 1),
        "cpu_ms_per_event": round(measured["cpu_seconds"] * per_event, 3),
        "threads_ms": {
            label: round(seconds * per_event, 3)
            for label, seconds in sorted(measured.get("threads", {}).items())
            if seconds > 0
        },
    }


def median_of(rows: Sequence[dict[str, Any]], kind: str, field: str) -> float | None:
    values = [r[field] for r in rows if r["kind"] == kind]
    return round(statistics.median(values), 3) if values else None


def summarize(rows: Sequence[dict[str, Any]], kinds: Sequence[str]) -> list[dict[str, Any]]:
    """Per kind: the median over rounds of each figure, and CPU per event against the peer's."""
    peer_cpu = median_of(rows, PEER, "cpu_ms_per_event")
    table = []
    for kind in kinds:
        runs = [r for r in rows if r["kind"] == kind]
        if not runs:
            continue
        cpu = median_of(rows, kind, "cpu_ms_per_event")
        labels = sorted({label for r in runs for label in r["threads_ms"]})
        threads = {
            label: round(statistics.median(r["threads_ms"].get(label, 0.0) for r in runs), 3)
            for label in labels
        }
        table.append({
            "kind": kind,
            "events_per_s": median_of(rows, kind, "events_per_s"),
            "cpu_ms_per_event": cpu,
            "x_peer": round(cpu / peer_cpu, 2) if cpu is not None and peer_cpu else None,
            "threads_ms": {label: ms for label, ms in threads.items() if ms},
        })  # fmt: skip
    return table


def worker_floor(table: Sequence[dict[str, Any]]) -> dict[str, float] | None:
    """The worker's consuming alone (WORKER_CONSUMES), in CPU ms per event and x the peer."""
    cpu = {r["kind"]: r["cpu_ms_per_event"] for r in table}
    if not all(kind in cpu for kind in (*WORKER_CONSUMES, PEER)) or not cpu[PEER]:
        return None
    floor = sum(times * cpu[kind] for kind, times in WORKER_CONSUMES.items())
    return {"cpu_ms_per_event": round(floor, 3), "x_peer": round(floor / cpu[PEER], 2)}


def table_lines(table: Sequence[dict[str, Any]], floor: dict[str, float] | None) -> list[str]:
    lines = [f"{'kind':<17} {'events/s':>9} {'cpu ms/ev':>10} {'x peer':>7}  threads (ms/ev)"]
    for r in table:
        threads = ", ".join(f"{k} {v}" for k, v in r["threads_ms"].items())
        lines.append(
            f"{r['kind']:<17} {r['events_per_s']:>9} {r['cpu_ms_per_event']:>10} "
            f"{r['x_peer'] if r['x_peer'] is not None else '-':>7}  {threads}"
        )
    if floor:
        lines.append(
            f"worker's consuming floor (planner + sink agents, 2 followers): "
            f"{floor['cpu_ms_per_event']} ms/event = {floor['x_peer']}x the peer"
        )
    return lines


def load() -> str:
    return " ".join(f"{n:.2f}" for n in os.getloadavg())


def main() -> None:
    args = parse_args()
    bench.peer.PY_SPY = args.py_spy  # what bench.peer.profiled samples with
    workdir = Path(tempfile.mkdtemp(prefix="bench-floor-"))
    # The Faust consumers' data dirs (they are killed, not stopped): removed at the end.
    scratch = workdir / "tmp"
    scratch.mkdir()
    os.environ["TMPDIR"] = str(scratch)
    settings = Settings()
    bootstrap = resolve_bootstrap(settings, start=True)
    loads = [load()]
    backlog = None
    # The faust-worker's other topics: nothing is ever written to them.
    idle = idle_topics(Backlog(bootstrap, settings, 0, 4, prefix="idle", produce=False).topics)
    if args.rate is None:
        backlog = Backlog(bootstrap, settings, args.events, 4, prefix="floor")
        feed(backlog, commands_of(backlog), encoded_commands(args.events), None)
    rows: list[dict[str, Any]] = []
    order = list(args.kinds)
    for number in range(1, args.rounds + 1):
        for kind in order:
            topics = backlog or Backlog(bootstrap, settings, args.events, 4, prefix="floor",
                                        produce=False)  # fmt: skip
            profile = workdir / f"{kind}-{number}.stacks" if args.py_spy else None
            measured = run_one(kind, topics, args.events, args.rate, idle, profile)
            rows.append(row(kind, number, args.events, measured))
            print(json.dumps({**rows[-1], "load": load()}), flush=True)
        order.reverse()  # interleave: drift (other work on the machine) hits all alike
    loads.append(load())
    shutil.rmtree(scratch, ignore_errors=True)
    with contextlib.suppress(OSError):
        workdir.rmdir()  # kept when it holds profiles
    table = summarize(rows, args.kinds)
    floor = worker_floor(table)
    shape = f"at {args.rate:g}/s for {args.seconds:g} s" if args.rate else "pre-produced"
    print(
        f"\n{args.events} records {shape}, {os.cpu_count()} cores, {args.rounds} round(s) "
        f"interleaved (median), load {loads[0]} -> {loads[1]}"
    )
    for kind in args.kinds:
        print(f"  {kind}: {KINDS.get(kind, 'bench/minimal.py, receiver at 0 ms')}")
    print("\n".join(table_lines(table, floor)))
    print(json.dumps({
        "events": args.events, "rate": args.rate, "rounds": args.rounds,
        "cores": os.cpu_count(), "load": loads, "rows": table, "worker_floor": floor,
        "runs": rows,
    }))  # fmt: skip


if __name__ == "__main__":
    main()
