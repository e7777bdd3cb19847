"""A chaos soak: tenants of every receiver mode, worker processes killed and moved, receivers
failing, the broker restarted, bad input on every topic; then nothing lost, duplicated or leaked.

    python -m bench.soak                       # the long form: 5,000 events, 4 minutes of faults
    python -m bench.soak --quick               # the bounded form CI runs
    python -m bench.soak --events 20000 --duration 600 --seed 7
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from adapters.reference import ReceiverMode
from bench.soak.bad_input import BadRecord, bad_records
from bench.soak.check import check, settle
from bench.soak.faults import build_schedule
from bench.soak.rig import Rig
from demo.generate import produce_scenario, topic_for
from demo.scenario import InboundEvent
from streams.avro.codec import default_codecs
from streams.kafka import clients

QUICK = {"events": 1100, "duration": 100.0, "outage": 12.0}


def merged(rig: Rig) -> list[InboundEvent]:
    """Every tenant's events, round robin; each tenant's own in its interleaved order."""
    queues = [t.scenario.interleaved() for t in rig.tenants.values()]
    out: list[InboundEvent] = []
    while any(queues):
        for queue in queues:
            if queue:
                out.append(queue.pop(0))
    return out


def produce_bad(rig: Rig, seed: int, delivered: list[tuple[BadRecord, str, int, int]]) -> None:
    """Every bad input, for the first tenant (and a client nobody turned up)."""
    first = next(iter(rig.tenants.values()))
    bad, good = bad_records(default_codecs(), first.client_id, next(iter(first.clubs)), seed)
    producer = clients.producer(rig.bootstrap, rig.kafka_settings, {"message.max.bytes": 2_000_000})
    for entity, key, value in good:
        producer.produce(topic_for(entity, rig.topics), key=key, value=value)
    producer.flush(60)
    for record in bad:
        topic = topic_for(record.entity, rig.topics)

        def done(err: Any, msg: Any, record: BadRecord = record) -> None:
            if err is None:
                delivered.append((record, msg.topic(), msg.partition(), msg.offset()))
            else:
                print(f"bad input {record.kind} not delivered: {err}", file=sys.stderr)

        producer.produce(topic, key=record.key, value=record.value, on_delivery=done)
    producer.flush(120)


def run(args: argparse.Namespace) -> dict[str, Any]:
    token = uuid.uuid4().hex[:6]
    workdir = Path(tempfile.mkdtemp(prefix=f"soak-{token}-"))
    rig = Rig(workdir, f"soak-{token}.")
    print(f"soak {token}: work dir {workdir}, broker on {rig.bootstrap}", flush=True)
    started = time.monotonic()
    try:
        rig.start_broker()
        rig.ensure_topics()
        modes = [ReceiverMode(m) for m in args.tenants]
        per_tenant = max(40, -(-args.events // len(modes)))  # at least --events in all
        for n, mode in enumerate(modes):
            rig.add_tenant(str(101 + n), mode, per_tenant, args.seed + n)
        for name in ("w1", "w2", "w3"):
            rig.start_worker(name)
        rig.wait_ready(["w1", "w2", "w3"], timeout=300)
        events = merged(rig)
        print(f"{len(events)} events for {len(modes)} tenants; faults over {args.duration:g}s")
        bad: list[tuple[BadRecord, str, int, int]] = []
        schedule = build_schedule(
            rig, args.seed, args.duration, args.outage, args.kills,
            lambda: produce_bad(rig, args.seed, bad),
        )  # fmt: skip
        failures: list[BaseException] = []

        def produce() -> None:
            try:
                rate = len(events) / args.duration
                produce_scenario(
                    rig.bootstrap, rig.kafka_settings, rig.topics, events, rate,
                    flush_timeout=600,
                )  # fmt: skip
            except BaseException as exc:
                failures.append(exc)

        stop = threading.Event()
        producer = threading.Thread(target=produce, daemon=True)
        began = time.monotonic()
        producer.start()
        schedule.run(rig, began, stop)
        producer.join()
        if failures:
            raise failures[0]
        schedule.join(rig)
        stream_s = time.monotonic() - began
        print(f"stream and faults done in {stream_s:.0f}s; settling", flush=True)
        settle_s = settle(rig, args.timeout)
        result = check(rig, schedule.faults, bad)
        deadline = time.monotonic() + 60
        while _defects(result) and time.monotonic() < deadline:
            print(f"settled, but {_defects(result)[:3]}: looking again", flush=True)
            time.sleep(10)  # a parked probe or a re-plan may still be on its way
            settle(rig, args.timeout)
            result = check(rig, schedule.faults, bad)
    finally:
        rig.close()
    summary = {
        "command": " ".join(["python -m bench.soak", *sys.argv[1:]]),
        "seed": args.seed,
        "events": len(events),
        "bad_inputs": len(bad),
        "entities": sum(t["entities"] for t in result["tenants"].values()),
        "modes": {t.client_id: t.mode.value for t in rig.tenants.values()},
        "faults": [vars(f) for f in schedule.faults],
        "workers_exited": rig.exits,
        "stream_seconds": round(stream_s, 1),
        "settle_seconds": round(settle_s, 1),
        "seconds": round(time.monotonic() - started, 1),
        **result,
    }
    summary["defects"] = _defects(result)
    if not summary["defects"] and not args.keep:
        shutil.rmtree(workdir, ignore_errors=True)
    return summary


def _defects(result: dict[str, Any]) -> list[str]:
    out = []
    for client, row in result["tenants"].items():
        for what in ("lost", "duplicated", "wrong"):
            if row[what]:
                out.append(f"tenant {client}: {row[what]} {what} ({row['examples'][:2]})")
    for kind, row in result["bad_input"].items():
        if row["found"] != row["sent"]:
            out.append(f"bad input {kind}: {row['found']} of {row['sent']} found with a reason")
    if result["overlapping_calls"]:
        out.append(f"{result['overlapping_calls']} overlapping calls")
    if result["lag_at_end"] != 0:
        out.append(f"committed offsets short of the end by {result['lag_at_end']}")
    if result["leaks"]:
        out.append(f"secret leaked: {result['leaks'][:3]}")
    return out


def print_table(s: dict[str, Any]) -> None:
    print(f"\nsoak: {s['events']} events + {s['bad_inputs']} bad inputs, {s['entities']} "
          f"entities, {len(s['tenants'])} tenants, {s['seconds']}s  ({s['command']})")  # fmt: skip
    print(f"{'tenant':>7} {'mode':<26} {'entities':>8} {'lost':>5} {'dup':>5} {'wrong':>6}")
    for client, row in s["tenants"].items():
        mode = s["modes"][client]
        print(f"{client:>7} {mode:<26} {row['entities']:>8} {row['lost']:>5} "
              f"{row['duplicated']:>5} {row['wrong']:>6}")  # fmt: skip
    print(f"\n{'fault':<30} {'at s':>6} {'recovered in s':>15}  detail")
    for f in s["faults"]:
        rec = "-" if f["recovered_s"] is None else f["recovered_s"]
        print(f"{f['name']:<30} {f['at']:>6} {rec!s:>15}  {f['detail']}")
    print(f"\n{'bad input':<24} {'sent':>5} {'found':>6} {'wrong reason':>13}")
    for kind, row in s["bad_input"].items():
        print(f"{kind:<24} {row['sent']:>5} {row['found']:>6} {row['wrong_reason']:>13}")
    print(f"\ndead letters {s['dead_letters']} by stage {s['dead_letters_by_stage']}; "
          f"overlapping calls {s['overlapping_calls']}; lag at end {s['lag_at_end']}; "
          f"records swept for secrets {s['records_swept']}, leaks {len(s['leaks'])}; "
          f"workers that exited by themselves (started again) {s['workers_exited']}")  # fmt: skip
    print("defects: " + ("none" if not s["defects"] else "; ".join(s["defects"])))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--events", type=int, default=5000, help="Good events, all tenants.")
    parser.add_argument("--duration", type=float, default=240.0, help="Seconds of stream.")
    parser.add_argument("--outage", type=float, default=30.0, help="Receiver outage, seconds.")
    parser.add_argument("--kills", type=int, default=5, help="kill -9 of a worker, times.")
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument(
        "--tenants", nargs="+", default=[m.value for m in ReceiverMode],
        help="Receiver modes, one tenant each; the first takes the bad input.",
    )  # fmt: skip
    parser.add_argument("--timeout", type=float, default=600.0, help="Settling, seconds.")
    parser.add_argument("--quick", action="store_true", help="The bounded form (CI).")
    parser.add_argument("--keep", action="store_true", help="Keep the work dir.")
    args = parser.parse_args(argv)
    if args.quick:
        for name, value in QUICK.items():
            if getattr(args, name) == parser.get_default(name):
                setattr(args, name, value)
    summary = run(args)
    print_table(summary)
    print(json.dumps(summary, default=str))
    return 1 if summary["defects"] else 0


if __name__ == "__main__":
    sys.exit(main())
