"""json against orjson on the rows the link store and the user states keep in RocksDB."""

from __future__ import annotations

import argparse
import json
import timeit
from collections.abc import Callable
from typing import Any

try:
    import orjson
except ImportError:  # the table then says so instead of a figure
    orjson = None

# Rows as streams/worker/links.py and references.py write them (json.dumps(...).encode()).
ROWS: dict[str, Any] = {
    "user link, settled": {
        "position": [3, 1_234_567],
        "receiver_id": "P-000123456",
        "version": 4,
        "fingerprint": "9f86d081884c7d659a2feaa0c55ad015",
        "user_type": "PROSPECT",
    },
    "user link, pending create": {
        "position": [3, 1_234_560],
        "pending": {"call": "create", "at": 1_764_378_000.123456},
    },
    "user link, parked": {
        "position": [3, 1_234_590],
        "receiver_id": "P-000123456",
        "version": 6,
        "fingerprint": "9f86d081884c7d659a2feaa0c55ad015",
        "user_type": "MEMBER",
        "parked": ["0b7c2b5e-5a55-4d0e-a3c1-8e9b0c1d2e3f"],
        "parked_version": 7,
    },
    # A user state's index entry (format 2: the JSON line of its one entry).
    "user state index entry": {
        "refs": {"STAFF": "S-42", "LEAD_SOURCE": "L-7"},
        "carried": ["9004", "L1027"],
    },
    "offsets (12 partitions)": {str(p): 1_000_000 + p for p in range(12)},
}


def per_call_us(func: Callable[[], object], number: int) -> float:
    """Best of 5 repeats, in microseconds per call."""
    return min(timeit.repeat(func, number=number, repeat=5)) / number * 1e6


def measure(number: int) -> dict[str, dict[str, float | None]]:
    results: dict[str, dict[str, float | None]] = {}
    for name, row in ROWS.items():
        raw = json.dumps(row).encode()
        figures: dict[str, float | None] = {
            "json_dumps_us": per_call_us(lambda row=row: json.dumps(row).encode(), number),
            "json_loads_us": per_call_us(lambda raw=raw: json.loads(raw), number),
            "orjson_dumps_us": None,
            "orjson_loads_us": None,
        }
        if orjson is not None:
            # What is stored today must read back the same, and what orjson writes too.
            assert orjson.loads(raw) == row == json.loads(orjson.dumps(row))
            figures["orjson_dumps_us"] = per_call_us(lambda row=row: orjson.dumps(row), number)
            figures["orjson_loads_us"] = per_call_us(lambda raw=raw: orjson.loads(raw), number)
        results[name] = figures
    return results


def ratio(slow: float | None, fast: float | None) -> str:
    return f"{slow / fast:.1f}x" if slow and fast else "-"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--number", type=int, default=20_000, help="calls per repeat")
    args = parser.parse_args()
    results = measure(args.number)
    version = getattr(orjson, "__version__", None)
    print(f"orjson {version or 'not installed'}; microseconds per call, best of 5")
    print("| row | json dumps | orjson dumps | ratio | json loads | orjson loads | ratio |")
    print("|---|---:|---:|---:|---:|---:|---:|")

    def us(value: float | None) -> str:
        return "-" if value is None else f"{value:.2f}"

    for name, f in results.items():
        jd, od, jl, ol = (
            f["json_dumps_us"], f["orjson_dumps_us"], f["json_loads_us"], f["orjson_loads_us"]
        )  # fmt: skip
        print(
            f"| {name} | {us(jd)} | {us(od)} | {ratio(jd, od)} | {us(jl)} | {us(ol)} | "
            f"{ratio(jl, ol)} |"
        )
    # Per event on the sink's path: the link read before the call, the pending marker's and the
    # outcome's read-modify-write (3 loads, 2 dumps), and the user state's (1 load, 1 dump).
    link, pending, meta = (
        results["user link, settled"], results["user link, pending create"],
        results["user state index entry"],
    )  # fmt: skip
    per_event: dict[str, float | None] = {}
    for lib in ("json", "orjson"):
        parts = [
            link[f"{lib}_loads_us"], pending[f"{lib}_loads_us"], link[f"{lib}_loads_us"],
            pending[f"{lib}_dumps_us"], link[f"{lib}_dumps_us"],
            meta[f"{lib}_loads_us"], meta[f"{lib}_dumps_us"],
        ]  # fmt: skip
        per_event[lib] = None if None in parts else sum(p for p in parts if p is not None)
    print(
        f"per event (3 link loads, 2 link dumps, 1 state load + dump): json "
        f"{us(per_event['json'])} us, orjson {us(per_event['orjson'])} us, "
        f"{ratio(per_event['json'], per_event['orjson'])}"
    )
    print(json.dumps({"orjson": version, "rows": results, "per_event_us": per_event}))


if __name__ == "__main__":
    main()
