"""One tenant's receiver down for minutes while another's traffic goes on: latency, parking,
dead letters and the final state, measured in one run.

    python -m bench.outage --minutes 10      # the long form
    python -m bench.outage --quick           # a 20-second outage
    python -m bench.outage --fault hang      # every call hangs instead of failing fast
"""

from __future__ import annotations

import argparse
import json
import tempfile
import threading
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

from confluent_kafka import KafkaException

from adapters.reference import (
    FaultSpec,
    ReceiverMode,
    ReferenceConfig,
    ReferenceReceiver,
    ThreadedReceiver,
)
from bench.parts import user_event
from demo.command import reference_tenant
from demo.worker import start_worker, stop_worker, worker_env
from streams.avro.codec import default_codecs
from streams.cli.common import resolve_bootstrap
from streams.kafka import clients
from streams.kafka.reader import read_to_end
from streams.kafka.topics import design_topics, ensure_topics
from streams.settings import Settings, TopicSettings
from streams.tenancy.publishing import publish_tenant

CLUBS = {"7": "C7"}
ENTITIES = 150


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else float("nan")


class RebalanceWatch:
    """Times a rebalance of the worker group: from the first look that finds it not stable
    (a member joined) to the first that finds it stable with two members."""

    def __init__(self, bootstrap: str, settings: Settings, group: str) -> None:
        self.admin = clients.admin(bootstrap, settings.kafka)
        self.group = group
        self.began: float | None = None
        self.began_at: float | None = None
        self.seconds: float | None = None

    def watch(self, limit: float = 120.0) -> None:
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            (future,) = self.admin.describe_consumer_groups([self.group]).values()
            try:
                group = future.result(timeout=10)
            except KafkaException:  # the coordinator moving, say: look again
                time.sleep(0.05)
                continue
            stable = str(group.state).upper().endswith("STABLE")
            now = time.monotonic()
            if not stable and self.began is None:
                self.began = now
                self.began_at = time.time()
            if stable and self.began is not None and len(group.members) == 2:
                self.seconds = now - self.began
                return
            time.sleep(0.05)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="Outage length.")
    parser.add_argument("--quick", action="store_true", help="A 20-second outage.")
    parser.add_argument("--rate", type=float, default=10.0, help="Events/s per tenant.")
    parser.add_argument("--baseline", type=float, default=60.0, help="Seconds before it.")
    parser.add_argument("--raw", type=Path, help="Write every steady event's latency here.")
    parser.add_argument(
        "--no-rebalance", action="store_true", help="No second worker joins mid-outage."
    )
    parser.add_argument(
        "--fault",
        choices=("down", "hang"),
        default="down",
        help="down: every call answered 503; hang: every call hangs (past our timeout).",
    )
    args = parser.parse_args()
    outage = 20.0 if args.quick else args.minutes * 60
    baseline = min(args.baseline, 20.0) if args.quick else args.baseline

    settings = Settings()
    bootstrap = resolve_bootstrap(settings, start=True)
    token = uuid.uuid4().hex[:8]
    topics = TopicSettings(topic_prefix=f"outage-{token}.")
    assert not ensure_topics(bootstrap, settings.kafka, design_topics(topics)).mismatched
    workdir = Path(tempfile.mkdtemp(prefix=f"bench-outage-{token}-"))
    receivers = {}
    for client in ("steady", "failing"):
        reference = ReferenceReceiver(
            ReferenceConfig(mode=ReceiverMode.FULL, clients={f"R-{client}": list(CLUBS.values())})
        )
        receivers[client] = ThreadedReceiver(reference)
        receivers[client].start()
        tenant = reference_tenant(reference, client, f"R-{client}", CLUBS)
        publish_tenant(bootstrap, settings.kafka, topics.name(topics.tenants_topic), tenant)
    env = worker_env(
        bootstrap=bootstrap, topic_prefix=topics.topic_prefix, app_id=f"outage-{token}",
        data_dir=workdir / "data",
    )  # fmt: skip
    workers = [start_worker(env, workdir / "worker.log")]
    rebalance = RebalanceWatch(bootstrap, settings, f"outage-{token}")
    codecs = default_codecs()
    producer = clients.producer(bootstrap, settings.kafka)
    users_topic = topics.name(topics.users_topic)
    sent: dict[tuple[str, str, int], float] = {}
    versions: Counter[tuple[str, str]] = Counter()

    outcomes_topic = topics.name(topics.outcomes_topic)

    def send_one(client: str, n: int) -> None:
        intouch_id = f"{client[0].upper()}{n % ENTITIES}"
        versions[(client, intouch_id)] += 1
        version = versions[(client, intouch_id)]
        key = {"client_id": client, "entity": "USER", "intouch_id": intouch_id}
        producer.produce(
            users_topic,
            key=codecs["EntityKey"].encode(key),
            value=codecs["UserChanged"].encode(user_event(client, "7", intouch_id, version)),
        )
        sent[(client, intouch_id, version)] = time.time()

    def traffic(
        seconds: float, label: str, clients_: tuple[str, ...] = ("steady", "failing")
    ) -> None:
        print(f"{label}: {seconds:.0f}s of {args.rate:g} events/s per tenant", flush=True)
        started, n = time.monotonic(), 0
        while time.monotonic() - started < seconds:
            for client in clients_:
                send_one(client, n)
            n += 1
            producer.poll(0)
            time.sleep(max(0.0, started + n / args.rate - time.monotonic()))
        producer.flush(30)

    def read_outcomes() -> list[tuple[dict[str, Any], float]]:
        return [
            (codecs["Outcome"].decode(m.value()), m.timestamp()[1] / 1000)
            for m in read_to_end(bootstrap, settings.kafka, [outcomes_topic])
        ]

    def converged(outcomes: list[tuple[dict[str, Any], float]], client: str | None) -> bool:
        final: dict[tuple[str, str], int] = {}
        for row, _ in outcomes:
            if row["status"] in ("LINKED", "SKIPPED", "FAILED"):
                key = (row["client_id"], row["intouch_id"])
                final[key] = max(final.get(key, -1), row["version"])
        return all(final.get(k, -1) >= v for k, v in versions.items() if client in (None, k[0]))

    phases: dict[str, tuple[float, float]] = {}
    try:
        # Warm up: the baseline starts once the worker has linked a first user.
        send_one("steady", ENTITIES - 1)
        producer.flush(30)
        warm_until = time.monotonic() + 180
        while not list(read_to_end(bootstrap, settings.kafka, [outcomes_topic])):
            if time.monotonic() > warm_until:
                raise SystemExit("the worker did not start within 180 s; see its log")
            time.sleep(1)
        mark = time.time()
        traffic(baseline, "baseline")
        phases["baseline"] = (mark, time.time())
        failing = receivers["failing"]
        if args.fault == "down":
            failing.call(lambda: failing.receiver.faults.start_outage(outage))
        else:
            hanging = FaultSpec(timeout_rate=1.0, hang_s=3600)
            failing.call(lambda: failing.receiver.faults.replace(hanging, {}))
        mark = time.time()
        if args.no_rebalance:
            traffic(outage, "outage")
        else:
            traffic(outage / 2, "outage")
            # Half way, a second worker joins: the group rebalances while calls hang or fail.
            watch = threading.Thread(target=rebalance.watch, daemon=True)
            watch.start()
            env2 = {**env, "CONNECTOR_DATA_DIR": str(workdir / "data-2")}
            workers.append(start_worker(env2, workdir / "worker-2.log"))
            traffic(outage / 2, "outage, two workers")
            watch.join(timeout=120)
        failing.call(failing.receiver.faults.clear)
        phases["outage"] = (mark, time.time())
        recovered_at = time.time()
        # The steady tenant's traffic goes on while the failing tenant's parked work drains
        # (the breaker's next probe may be minutes away), and 10 s past the drain.
        traffic(min(30.0, baseline), "after")
        deadline = time.monotonic() + max(600.0, outage)
        while time.monotonic() < deadline and not converged(read_outcomes(), "failing"):
            traffic(5.0, "after, draining", ("steady",))
        traffic(10.0, "after, drained", ("steady",))
        phases["after"] = (recovered_at, time.time())
        outcomes: list[tuple[dict[str, Any], float]] = []
        while time.monotonic() < deadline:
            outcomes = read_outcomes()
            if converged(outcomes, None):
                break
            time.sleep(2)
        drained_at = max(
            (ts for row, ts in outcomes if row["client_id"] == "failing"), default=time.time()
        )
        drain_began = min(
            (
                ts
                for row, ts in outcomes
                if row["client_id"] == "failing" and ts > recovered_at and row["status"] != "PARKED"
            ),
            default=drained_at,
        )
        phases["drain"] = (drain_began, drained_at)
    finally:
        for worker in workers:
            stop_worker(worker)
    dead = list(read_to_end(bootstrap, settings.kafka, [topics.name(topics.dlq_topic)]))
    latency: dict[str, list[float]] = {phase: [] for phase in phases}
    raw = []
    for row, ts in outcomes:
        if row["client_id"] != "steady" or row["status"] not in ("LINKED", "SKIPPED"):
            continue
        produced = sent.get((row["client_id"], row["intouch_id"], row["version"]))
        if produced is None:
            continue
        raw.append({"produced": produced, "ms": (ts - produced) * 1000, "id": row["intouch_id"]})
        for phase, (begin, end) in phases.items():
            if begin <= produced < end:
                latency[phase].append((ts - produced) * 1000)
    state = receivers["failing"].call(receivers["failing"].receiver.state)
    held = [
        p
        for club in state["clients"]["R-failing"]["clubs"].values()
        for p in [*club["prospects"].values(), *club["members"].values()]
    ]
    by_entity = Counter(p["lastName"] for p in held)
    wrong = sum(1 for p in held if p["firstName"] != f"v{versions[('failing', p['lastName'])]}")
    for threaded in receivers.values():
        threaded.stop()
    parked = sum(
        1 for row, _ in outcomes if row["client_id"] == "failing" and row["status"] == "PARKED"
    )
    summary = {
        "fault": args.fault,
        "outage_seconds": outage,
        "events_per_second_per_tenant": args.rate,
        "steady_p50_ms": {k: round(percentile(v, 0.5), 1) for k, v in latency.items()},
        "steady_p99_ms": {k: round(percentile(v, 0.99), 1) for k, v in latency.items()},
        "steady_events": {k: len(v) for k, v in latency.items()},
        "failing_entities": len([k for k in versions if k[0] == "failing"]),
        "failing_records": len(held),
        "failing_duplicated": sum(1 for n in by_entity.values() if n > 1),
        "failing_lost": len([k for k in versions if k[0] == "failing"]) - len(by_entity),
        "failing_wrong": wrong,
        "failing_parked_outcomes": parked,
        "dead_letters": len(dead),
        "rebalance_seconds": None if rebalance.seconds is None else round(rebalance.seconds, 2),
        "last_failing_outcome_after_recovery_s": round(drained_at - recovered_at, 1),
        "drain_seconds": round(drained_at - drain_began, 1),
    }
    base_p50 = summary["steady_p50_ms"]["baseline"]
    out_p50 = summary["steady_p50_ms"]["outage"]
    summary["steady_p50_ratio_outage_to_baseline"] = round(out_p50 / base_p50, 2)
    if args.raw:
        marks = {name: begin for name, (begin, _) in phases.items()}
        if rebalance.began_at is not None:
            marks["rebalance"] = rebalance.began_at
        args.raw.write_text(json.dumps({"marks": marks, "events": raw}))
    print("\n".join(f"{k:>40}: {v}" for k, v in summary.items()))
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
