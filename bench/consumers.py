"""The consumers bench.floor measures, one per process: each only consumes (and decodes).

    python -m bench.consumers KIND --bootstrap B --topic T --group G --events N

It prints `floor: ready` once it holds its partitions and `floor: {json}` once it has
consumed `--events` records (then idles until killed: closing is not measured); the JSON
carries its own CPU seconds per thread from ready to the last record. Other lines (a
client's own output) are not the protocol's.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from streams.avro.codec import default_codecs

#: What each kind runs (bench.floor's table says the same).
KINDS = {
    "confluent": "confluent-kafka consume(500), no decode",
    "confluent-decode": "confluent-kafka consume(500) + fastavro decode",
    "aiokafka": "aiokafka getmany(500) + decode (under Faust)",
    "faust-events": "Faust agent: noack, events(), decode, ack each in order (the sink's)",
    "faust-batches": "Faust agent: take_events(256, 0.02) + decode (the planner's)",
    "faust-worker": "faust-events, plus idle agents on the worker's 5 other topics",
}
PREFIX = "floor: "
TICK = os.sysconf("SC_CLK_TCK")


def thread_cpu(pid: int | None = None) -> dict[int, tuple[str, float]]:
    """A process's threads (this one's by default): tid -> (comm, user + system CPU
    seconds), from /proc."""
    threads = {}
    for task in Path(f"/proc/{pid or 'self'}/task").iterdir():
        try:
            text = (task / "stat").read_text()
        except OSError:
            continue  # ended meanwhile
        comm = text[text.index("(") + 1 : text.rindex(")")]
        fields = text.rsplit(")", 1)[1].split()
        threads[int(task.name)] = (comm, (int(fields[11]) + int(fields[12])) / TICK)
    return threads


def thread_label(tid: int, comm: str) -> str:
    """`main`, Faust's consumer thread (`faust-consumer`), librdkafka's (`rdkafka`), or the
    Python thread's name."""
    if tid == os.getpid():
        return "main"
    if comm.startswith("rdk:"):
        return "rdkafka"
    for thread in threading.enumerate():
        if thread.native_id == tid:
            if type(thread).__name__ == "WorkerThread":  # mode's: Faust's aiokafka consumer
                return "faust-consumer"
            return thread.name
    return comm


def comm_label(pid: int, tid: int, comm: str) -> str:
    """A thread of another process: `main`, `rdkafka` or `other`."""
    if tid == pid:
        return "main"
    return "rdkafka" if comm.startswith("rdk:") else "other"


def cpu_split(before: dict[int, tuple[str, float]], pid: int | None = None) -> dict[str, float]:
    """CPU seconds per thread label since `before` (threads born since count in full), of
    this process (named by `thread_label`) or of process `pid` (by `comm_label`)."""
    split: dict[str, float] = {}
    for tid, (comm, used) in thread_cpu(pid).items():
        label = comm_label(pid, tid, comm) if pid else thread_label(tid, comm)
        spent = used - before.get(tid, (comm, 0.0))[1]
        split[label] = round(split.get(label, 0.0) + spent, 3)
    return split


class Meter:
    """Counts records from `ready` on; says `ready` and the result on stdout."""

    def __init__(self, events: int) -> None:
        self.events, self.seen = events, 0
        self.began = 0.0
        self.before: dict[int, tuple[str, float]] = {}
        self.done = False

    def ready(self) -> None:
        if not self.began:
            self.before, self.began = thread_cpu(), time.perf_counter()
            print(f"{PREFIX}ready", flush=True)

    def count(self, n: int = 1) -> None:
        self.seen += n
        if self.seen >= self.events and not self.done:
            self.done = True
            result = {
                "records": self.seen,
                "seconds": round(time.perf_counter() - self.began, 3),
                "threads": cpu_split(self.before),
            }
            print(PREFIX + json.dumps(result), flush=True)


def idle() -> None:
    """Wait to be killed (the process's CPU is read after the result)."""
    threading.Event().wait()


def run_confluent(args: argparse.Namespace, meter: Meter, decode: Callable[[Any], Any]) -> None:
    from confluent_kafka import Consumer

    consumer = Consumer({
        "bootstrap.servers": args.bootstrap, "group.id": args.group,
        "enable.auto.commit": False, "auto.offset.reset": "earliest",
    })  # fmt: skip
    consumer.subscribe([args.topic], on_assign=lambda c, parts: meter.ready())
    while not meter.done:
        messages = consumer.consume(500, 0.1)
        for message in messages:
            if message.error():
                continue
            decode(message.value())
        meter.count(sum(1 for m in messages if not m.error()))
    idle()


async def run_aiokafka(
    args: argparse.Namespace, meter: Meter, decode: Callable[[Any], Any]
) -> None:
    from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener

    class Listener(ConsumerRebalanceListener):  # type: ignore[misc]
        def on_partitions_revoked(self, revoked: Any) -> None:
            pass

        def on_partitions_assigned(self, assigned: Any) -> None:
            meter.ready()

    consumer = AIOKafkaConsumer(
        bootstrap_servers=args.bootstrap, group_id=args.group,
        enable_auto_commit=False, auto_offset_reset="earliest",
    )  # fmt: skip
    consumer.subscribe([args.topic], listener=Listener())
    await consumer.start()
    while not meter.done:
        batches = await consumer.getmany(timeout_ms=100, max_records=500)
        for records in batches.values():
            for record in records:
                decode(record.value)
            meter.count(len(records))
    await asyncio.Event().wait()


def faust_app(args: argparse.Namespace) -> Any:
    """A bare app with the worker's settings and transport (`streams.worker.app.worker_app`:
    its consumer batches fetches on a steady stream)."""
    from streams.settings import Settings
    from streams.worker.app import worker_app

    datadir = Path(tempfile.mkdtemp(prefix="bench-floor-faust-"))
    return worker_app(args.group, args.bootstrap, Settings(), datadir)


def run_faust(args: argparse.Namespace, meter: Meter, decode: Callable[[Any], Any]) -> None:
    import faust

    app = faust_app(args)
    topic = app.topic(args.topic, key_serializer="raw", value_serializer="raw")

    async def assigned(sender: Any, /, *_: Any, **__: Any) -> None:
        meter.ready()

    app.on_partitions_assigned.connect(assigned)

    async def events(stream: Any) -> None:
        manual = stream.noack()
        async for event in manual.events():
            decode(event.message.value)
            await manual.ack(event)
            meter.count()

    async def batches(stream: Any) -> None:
        async for taken in stream.take_events(256, 0.02):
            for event in taken:
                decode(event.message.value)
            meter.count(len(taken))

    app.agent(topic, name="floor")(batches if args.kind == "faust-batches" else events)
    if args.kind == "faust-worker":
        # The worker's other agents (streams/worker/app.py), on topics nothing is written to
        # (the planners' three take batches; replay and parked take events one by one).
        for number, name in enumerate(args.idle_topics):
            idle_topic = app.topic(name, key_serializer="raw", value_serializer="raw")
            app.agent(idle_topic, name=f"idle-{number}")(batches if number < 3 else events)
    worker = faust.Worker(app, loglevel="warn", quiet=True, redirect_stdouts=False)
    worker.spinner = None
    worker.execute_from_commandline()


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kind", choices=KINDS)
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--group", required=True)
    parser.add_argument("--events", type=int, required=True)
    parser.add_argument(
        "--idle-topics",
        nargs="*",
        default=[],
        help="faust-worker's others: the planners' 3, then replay and parked.",
    )
    return parser.parse_args(argv)


def main() -> None:
    args = parse()
    meter = Meter(args.events)
    codec = default_codecs()["Command"]

    def nothing(value: Any) -> None:
        return None

    decode = nothing if args.kind == "confluent" else codec.decode
    if args.kind.startswith("confluent"):
        run_confluent(args, meter, decode)
    elif args.kind == "aiokafka":
        asyncio.run(run_aiokafka(args, meter, decode))
    else:
        run_faust(args, meter, decode)


if __name__ == "__main__":
    main()
