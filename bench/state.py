"""Scale of state: a worker with an empty data dir rebuilding N links (500 clients) from the
compacted links changelog, against H outcomes of history per entity; RSS, ready time, link
lookup latency, and the old way (folding every outcome) timed on the same data.

    python -m bench.state                 # 1,000,000 links, history 1; growth at 50,000
    python -m bench.state --quick         # 100,000 links; growth at 20,000
    python -m bench.state --links 500000 --growth-links 100000 --history 1 4 16
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import shutil
import tempfile
import time
import uuid
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from demo.worker import start_worker, stop_worker, worker_env
from streams.avro.codec import default_codecs
from streams.cli.common import resolve_bootstrap
from streams.kafka import clients
from streams.kafka.local import LocalKafka, free_port
from streams.kafka.reader import read_to_end
from streams.kafka.topics import delete_topics, design_topics, ensure_topics
from streams.settings import Settings, TopicSettings
from streams.worker.follower import LinkFollower
from streams.worker.links import LinkStore, fold
from streams.worker.references import state_of

CLIENTS = 500
STAFF_PER_CLIENT = 10
SOURCES_PER_CLIENT = 10
PREFIX = {"USER": "u", "STAFF": "s", "LEAD_SOURCE": "l"}
NOW = dt.datetime(2026, 11, 28, 12, 0, tzinfo=dt.UTC)


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def entities(links: int) -> Iterator[tuple[str, str, str]]:
    """(entity, client, InTouch ID) of `links` entities across CLIENTS clients."""
    per_client = links // CLIENTS
    for c in range(CLIENTS):
        client = f"{1000 + c}"
        for n in range(per_client):
            if n < STAFF_PER_CLIENT:
                yield "STAFF", client, f"s{n}"
            elif n < STAFF_PER_CLIENT + SOURCES_PER_CLIENT:
                yield "LEAD_SOURCE", client, f"l{n}"
            else:
                yield "USER", client, f"u{n}"


def outcome(entity: str, client: str, intouch_id: str, version: int) -> dict[str, Any]:
    return {
        "outcome_id": f"o-{client}-{intouch_id}-{version}",
        "command_id": f"c-{intouch_id}-{version}", "client_id": client,
        "club_id": "7" if entity == "USER" else None, "entity": entity,
        "intouch_id": intouch_id, "version": version, "status": "LINKED",
        "receiver_id": f"R{intouch_id}", "call": "update" if version else "create",
        "user_type": "PROSPECT" if entity == "USER" else None, "fingerprint": f"f{version}",
        "message": None, "attempts": 1, "occurred_at": NOW, "replay_id": None,
    }  # fmt: skip


def command(client: str, intouch_id: str, version: int) -> dict[str, Any]:
    """A user's upsert, naming a staff owner and a lead source of its client."""
    n = int(intouch_id[1:])
    user = {
        "event_id": str(uuid.uuid4()), "occurred_at": NOW, "client_id": client,
        "club_id": "7", "intouch_id": intouch_id, "version": version,
        "user_type": "PROSPECT", "status": "ACTIVE", "first_name": f"v{version}",
        "last_name": intouch_id, "email": f"{intouch_id}@example.com", "birthdate": None,
        "gender": None, "address1": "1 Main St", "address2": None, "city": "Springfield",
        "zipcode": "12345", "state": "IL", "country": "US", "mobile_phone": "5550100",
        "home_phone": None, "work_phone": None, "company": None,
        "staff_owner_id": f"s{n % STAFF_PER_CLIENT}",
        "lead_source_id": f"l{STAFF_PER_CLIENT + n % SOURCES_PER_CLIENT}",
    }  # fmt: skip
    return {
        "command_id": f"c-{intouch_id}-{version}",
        "kind": "UPSERT_PROSPECT",
        "client_id": client,
        "club_id": "7",
        "intouch_id": intouch_id,
        "version": version,
        "cause_event_id": user["event_id"],
        "issued_at": NOW,
        "fingerprint": f"f{version}",
        "staff_owner_receiver_id": f"R{user['staff_owner_id']}",
        "lead_source_receiver_id": f"R{user['lead_source_id']}",
        "user": user,
        "staff": None,
        "lead_source": None,
        "replay_id": None,
    }


def seed(
    bootstrap: str, settings: Settings, topics: TopicSettings, links: int, history: int
) -> dict[str, Any]:
    """Produce `history` outcomes per entity and, for each, the row the worker's own `fold`
    makes of it (on the outcome's partition, at the offset it gets: the topics are new and
    this is their only writer)."""
    codecs = default_codecs()
    partitions = topics.outcomes_partitions
    producer = clients.producer(
        bootstrap,
        settings.kafka,
        {"linger.ms": 50, "batch.size": 1_000_000, "queue.buffering.max.kbytes": 512_000},
    )
    outcomes_topic = topics.name(topics.outcomes_topic)
    links_topic = topics.name(topics.links_topic)
    next_offset = [0] * partitions
    commands_offset = [0] * partitions
    started = time.monotonic()
    for entity, client, intouch_id in entities(links):
        key = f"{PREFIX[entity]}/{client}/{intouch_id}"  # the store's key of the row
        partition = zlib.crc32(key.encode()) % partitions
        entity_key = codecs["EntityKey"].encode(
            {"client_id": client, "entity": entity, "intouch_id": intouch_id}
        )
        decoded = command(client, intouch_id, history) if entity == "USER" else {}
        raw = codecs["Command"].encode(decoded) if decoded else None
        row: dict[str, Any] = {}
        for version in range(1, history + 1):
            record = outcome(entity, client, intouch_id, version)
            position = (partition, next_offset[partition])
            next_offset[partition] += 1
            state = None
            if raw is not None:
                command_position = (partition, commands_offset[partition])
                commands_offset[partition] += 1
                # One command's bytes for every step; its version says which step it was.
                state = state_of(raw, {**decoded, "version": version}, command_position)
            new = fold(row, record, position, state)
            assert new is not None
            row = new
            for topic, k, v in (
                (outcomes_topic, entity_key, codecs["Outcome"].encode(record)),
                (links_topic, key.encode(), json.dumps(row).encode()),
            ):
                while True:
                    try:
                        producer.produce(topic, key=k, value=v, partition=partition)
                        break
                    except BufferError:
                        producer.poll(0.1)
            producer.poll(0)
    assert producer.flush(300) == 0
    return {"outcomes": sum(next_offset), "produce_s": round(time.monotonic() - started, 1)}


def _log_bytes(broker_data: Path, topic: str) -> int:
    return sum(f.stat().st_size for f in broker_data.glob(f"{topic}-*/*.log"))


def wait_compacted(broker_data: Path, topic: str, history: int, limit: float) -> dict[str, Any]:
    """With history, wait (up to `limit`) until the changelog's size on disk has not changed
    for 30 s (the cleaner done with the rolled segments); report its size before and after."""
    before = _log_bytes(broker_data, topic)
    last, steady_since, deadline = before, time.monotonic(), time.monotonic() + limit
    while history > 1 and time.monotonic() < deadline:
        time.sleep(2)
        size = _log_bytes(broker_data, topic)
        if size != last:
            last, steady_since = size, time.monotonic()
        elif time.monotonic() - steady_since > 30:
            break
    return {"log_mb_before": round(before / 2**20), "log_mb_after": round(last / 2**20)}


def count_records(bootstrap: str, settings: Settings, topic: str) -> int:
    return sum(1 for _ in read_to_end(bootstrap, settings.kafka, [topic], timeout=600))


def rss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def start_ready(
    bootstrap: str, topics: TopicSettings, workdir: Path, settle: float
) -> dict[str, Any]:
    """Start a worker with an empty data dir; time it to `/ready`, its RSS peak and settled."""
    port = free_port()
    env = worker_env(
        bootstrap=bootstrap,
        topic_prefix=topics.topic_prefix,
        app_id=f"app-{topics.topic_prefix.strip('.')}",
        data_dir=workdir / "data",
        CONNECTOR_METRICS_PORT=str(port),
    )
    started = time.monotonic()
    worker = start_worker(env, workdir / "worker.log")
    peak, ready_s, loaded_s = 0, None, None
    log = workdir / "worker.log"
    try:
        while time.monotonic() - started < 900:
            peak = max(peak, rss_kb(worker.pid))
            if loaded_s is None and "starting agents" in log.read_text(errors="replace"):
                loaded_s = time.monotonic() - started  # links and user states rebuilt
            if worker.poll() is not None:
                raise RuntimeError(f"the worker stopped: {(workdir / 'worker.log').read_text()}")
            try:
                if httpx.get(f"http://127.0.0.1:{port}/ready", timeout=2).status_code == 200:
                    ready_s = time.monotonic() - started
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        if ready_s is None:
            raise RuntimeError("the worker was not ready within 900 s")
        settle_until = time.monotonic() + settle
        while time.monotonic() < settle_until:
            peak = max(peak, rss_kb(worker.pid))
            time.sleep(0.2)
        settled = rss_kb(worker.pid)
    finally:
        stop_worker(worker)
    return {
        "loaded_s": round(loaded_s or ready_s, 1),
        "ready_s": round(ready_s, 1),
        "rss_peak_mb": round(peak / 1024),
        "rss_settled_mb": round(settled / 1024),
    }


def lookups(path: Path, links: int, samples: int = 20_000) -> dict[str, Any]:
    """LinkStore.user on random users of the rebuilt store, in this process."""
    store = LinkStore(path)
    users = [(c, i) for e, c, i in entities(links) if e == "USER"]
    picks = random.Random(7).sample(users, min(samples, len(users)))
    times = []
    found = 0
    for client, intouch_id in picks:
        began = time.perf_counter()
        link = store.user(client, intouch_id)
        times.append((time.perf_counter() - began) * 1e6)
        found += link is not None and link.receiver_id == f"R{intouch_id}"
    keys = store.estimate_keys()
    store.close()
    assert found == len(picks), f"{len(picks) - found} users not rebuilt"
    return {
        "lookup_p50_us": round(percentile(times, 0.5), 1),
        "lookup_p99_us": round(percentile(times, 0.99), 1),
        "store_keys": keys,
    }


def rebuild_from_changelog(bootstrap: str, settings: Settings, topic: str, path: Path) -> float:
    """The worker's own follower into a fresh store, in this process: seconds to current."""
    store = LinkStore(path)
    follower = LinkFollower(store, bootstrap, settings.kafka, topic)
    began = time.monotonic()
    follower.start()
    follower.wait_until_current(900)
    took = time.monotonic() - began
    follower.stop()
    store.close()
    return took


def rebuild_from_outcomes(bootstrap: str, settings: Settings, topic: str, path: Path) -> float:
    """The old way: every outcome decoded and folded in (`LinkStore.apply`) from the start."""
    codec = default_codecs()["Outcome"]
    store = LinkStore(path)
    began = time.monotonic()
    for message in read_to_end(bootstrap, settings.kafka, [topic], timeout=900):
        store.apply(codec.decode(message.value()), (message.partition(), message.offset()))
    took = time.monotonic() - began
    store.close()
    return took


def scenario(
    bootstrap: str,
    settings: Settings,
    broker_data: Path,
    links: int,
    history: int,
    *,
    worker: bool,
    settle: float,
) -> dict[str, Any]:
    token = uuid.uuid4().hex[:6]
    topics = TopicSettings(topic_prefix=f"state-{token}.")
    assert not ensure_topics(bootstrap, settings.kafka, design_topics(topics)).mismatched
    workdir = Path(tempfile.mkdtemp(prefix=f"bench-state-{token}-"))
    links_topic = topics.name(topics.links_topic)
    outcomes_topic = topics.name(topics.outcomes_topic)
    result: dict[str, Any] = {"links": links, "history": history}
    try:
        print(f"seeding {links:,} links x {history} outcomes ...", flush=True)
        result.update(seed(bootstrap, settings, topics, links, history))
        result.update(wait_compacted(broker_data, links_topic, history, limit=600))
        result["changelog_records"] = count_records(bootstrap, settings, links_topic)
        if worker:
            try:
                result.update(start_ready(bootstrap, topics, workdir, settle))
            except RuntimeError as exc:  # the other figures still say something
                result.update(loaded_s=None, ready_s=None, rss_peak_mb=None, rss_settled_mb=None)
                result["worker_error"] = str(exc)[-300:]
                print(f"worker failed: {exc}", flush=True)
            app = f"app-{topics.topic_prefix.strip('.')}"
            if (workdir / "data" / app / "links").exists():
                result.update(lookups(workdir / "data" / app, links))
        print("rebuilding in-process from the changelog and from the outcomes ...", flush=True)
        result["changelog_rebuild_s"] = round(
            rebuild_from_changelog(bootstrap, settings, links_topic, workdir / "new"), 1
        )
        result["outcomes_rebuild_s"] = round(
            rebuild_from_outcomes(bootstrap, settings, outcomes_topic, workdir / "old"), 1
        )
    finally:
        log = workdir / "worker.log"
        if log.exists():
            shutil.copy(log, Path(tempfile.gettempdir()) / f"bench-state-{token}-worker.log")
        shutil.rmtree(workdir, ignore_errors=True)
        names = [spec.name for spec in design_topics(topics)]
        delete_topics(bootstrap, settings.kafka, names)
    print(json.dumps(result), flush=True)
    return result


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="100,000 links; growth at 20,000.")
    parser.add_argument("--links", type=int, help="Links of the main run (0: none).")
    parser.add_argument("--growth-links", type=int, help="Links of the history runs.")
    parser.add_argument("--history", type=int, nargs="+", default=[1, 4, 16])
    args = parser.parse_args()
    links = (100_000 if args.quick else 1_000_000) if args.links is None else args.links
    growth = args.growth_links or (20_000 if args.quick else 50_000)
    settle = 5.0 if args.quick else 15.0
    settings = Settings()
    bootstrap = resolve_bootstrap(settings, start=True)
    broker_data = LocalKafka(settings.local_kafka).data_dir
    load = {"before": load_average()}
    main_runs = [] if links == 0 else [
        scenario(bootstrap, settings, broker_data, links, 1, worker=True, settle=settle)
    ]  # fmt: skip
    load["main"] = load_average()
    runs = [
        scenario(bootstrap, settings, broker_data, growth, h, worker=True, settle=settle)
        for h in args.history
    ]
    load["growth"] = load_average()
    print()
    print("| links | history | changelog records | state loaded s | ready s | "
          "RSS peak/settled MB | lookup p50/p99 us | rebuild from changelog s | "
          "from outcomes s |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|")
    for run in [*main_runs, *runs]:
        print(
            f"| {run['links']:,} | {run['history']} | {run['changelog_records']:,} | "
            f"{run['loaded_s']} | {run['ready_s']} | "
            f"{run['rss_peak_mb']}/{run['rss_settled_mb']} | "
            f"{run.get('lookup_p50_us')}/{run.get('lookup_p99_us')} | "
            f"{run['changelog_rebuild_s']} | "
            f"{run['outcomes_rebuild_s']} |"
        )
    print(f"load average (1/5/15 min): {load}")
    print(json.dumps({"main": main_runs[0] if main_runs else None, "growth": runs, "load": load}))


if __name__ == "__main__":
    main()
