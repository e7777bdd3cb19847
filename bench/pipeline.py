"""Pipeline throughput with one command in flight against many (keyed lanes), same run."""

from __future__ import annotations

import argparse
import os

from adapters.reference import ReceiverMode
from demo.command import run_demo
from streams.settings import Settings


def demo_with(in_flight: int, events: int, latency_ms: float) -> dict[str, float]:
    os.environ["CONNECTOR_SINK_MAX_IN_FLIGHT"] = str(in_flight)
    try:
        summary = run_demo(
            Settings(),
            events=events,
            seed=11,
            mode=ReceiverMode.FULL,
            timeout=900,
            latency_ms=latency_ms,
        )
    finally:
        del os.environ["CONNECTOR_SINK_MAX_IN_FLIGHT"]
    if summary["mismatches"]:
        raise SystemExit(f"the demo with {in_flight} in flight ended with mismatches: {summary}")
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=1500)
    parser.add_argument("--latency-ms", type=float, default=10.0)
    parser.add_argument("--in-flight", type=int, nargs="+", default=[1, 64])
    args = parser.parse_args()
    results = {n: demo_with(n, args.events, args.latency_ms) for n in args.in_flight}
    base = results[args.in_flight[0]]["users_seconds"]
    print(f"\n{args.events} events, receiver latency {args.latency_ms:g} ms (+jitter)")
    print("users phase (worker already running): produce, plan, call the receiver, commit")
    print(f"{'in flight':>10} {'seconds':>9} {'events/s':>9} {'speed-up':>9} {'calls':>7}")
    for n, summary in results.items():
        seconds = summary["users_seconds"]
        print(
            f"{n:>10} {seconds:>9.1f} {summary['events_per_second']:>9.1f} "
            f"{base / seconds:>8.1f}x {summary['calls']:>7}"
        )


if __name__ == "__main__":
    main()
