"""A rebuild's work without Kafka: N changelog rows (as `bench.state` seeds them) taken by a
link store and user states rebuilt from empty, in this process; CPU a row of the taking thread.

    python -m bench.state_rows --links 100000
    (cd /tmp/base && PYTHONPATH=. python -m bench.state_rows --links 100000)   # another checkout

The worker's link follower does this for each row it reads (its consuming loop aside): the
thread's CPU is what bounds a rebuild on a machine whose other core is busy.
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
import zlib
from pathlib import Path
from typing import Any

from bench.state import PREFIX, command, entities, outcome
from streams.avro.codec import default_codecs
from streams.worker.links import LinkStore, fold
from streams.worker.references import UserStates, state_of


def changelog_rows(links: int, partitions: int = 12) -> list[tuple[str, bytes]]:
    """(store key, value) of each entity's row, one outcome (and command) each."""
    codec = default_codecs()["Command"]
    offsets = [0] * partitions
    rows = []
    for entity, client, intouch_id in entities(links):
        key = f"{PREFIX[entity]}/{client}/{intouch_id}"
        partition = zlib.crc32(key.encode()) % partitions
        position = (partition, offsets[partition])
        offsets[partition] += 1
        state = None
        if entity == "USER":
            decoded = command(client, intouch_id, 1)
            state = state_of(codec.encode(decoded), decoded, position)
        row = fold({}, outcome(entity, client, intouch_id, 1), position, state)
        assert row is not None
        rows.append((key, json.dumps(row).encode()))
    return rows


def take(rows: list[tuple[str, bytes]], path: Path) -> dict[str, Any]:
    store = LinkStore(path)
    states = UserStates(path, default_codecs()["Command"])
    assert store.rebuilding
    states.rebuild()
    store.on_state = states.keep
    thread, process, wall = time.thread_time(), time.process_time(), time.perf_counter()
    for key, value in rows:
        store.store_row(key, value)
    taken = {
        "thread_us_a_row": (time.thread_time() - thread) / len(rows) * 1e6,
        "process_us_a_row": (time.process_time() - process) / len(rows) * 1e6,
        "wall_us_a_row": (time.perf_counter() - wall) / len(rows) * 1e6,
    }
    began = time.perf_counter()
    states.rebuilt()
    store.rebuilt()
    taken["rebuilt_s"] = time.perf_counter() - began
    store.close()
    states.close()
    taken["disk_mb"] = sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20
    taken["max_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {name: round(value, 1) for name, value in taken.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--links", type=int, default=100_000)
    args = parser.parse_args()
    rows = changelog_rows(args.links)
    with tempfile.TemporaryDirectory(prefix="bench-state-rows-") as scratch:
        print(json.dumps({"links": args.links, **take(rows, Path(scratch))}))


if __name__ == "__main__":
    main()
