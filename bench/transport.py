"""Receiver-call throughput and client CPU per call of each HTTP engine of the edge, same run."""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time

from adapters.base import ClubRef, Person
from adapters.config import ReceiverConfig
from adapters.http import TransportKind
from adapters.registry import create_adapter
from bench.parts import receiver_process

CLUB = ClubRef(intouch_club_id="1", receiver_club_id="CL1")


async def one_round(config: ReceiverConfig, requests: int, concurrency: int) -> tuple[float, float]:
    """Send `requests` create-prospect calls, `concurrency` in flight; return requests/s and
    this process's CPU ms per request (the receiver runs in its own process)."""
    remaining = iter(range(requests))
    async with create_adapter("reference", config) as client:

        async def worker() -> None:
            for n in remaining:
                await client.create_prospect(
                    CLUB, Person("Bench", f"Prospect{n}", email=f"b{n}@example.com")
                )

        # Open the pool's connections first so connection set-up is not measured.
        await asyncio.gather(*(client.list_lead_sources() for _ in range(concurrency)))
        started, cpu_started = time.perf_counter(), time.process_time()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        cpu_ms = (time.process_time() - cpu_started) * 1000 / requests
        return requests / (time.perf_counter() - started), cpu_ms


async def run(
    api_url: str, kinds: list[TransportKind], requests: int, concurrency: int, rounds: int
) -> None:
    host_port = api_url.removeprefix("http://").split("/", 1)[0]
    configs = {
        kind: ReceiverConfig(
            scheme="http",
            host=host_port,
            base_path="/api/v1",
            receiver_client_id="C100",
            transport=kind,
        )
        for kind in kinds
    }
    rates: dict[TransportKind, list[float]] = {kind: [] for kind in kinds}
    cpus: dict[TransportKind, list[float]] = {kind: [] for kind in kinds}
    order = list(kinds)
    for number in range(1, rounds + 1):
        for kind in order:
            rate, cpu_ms = await one_round(configs[kind], requests, concurrency)
            rates[kind].append(rate)
            cpus[kind].append(cpu_ms)
            print(f"round {number} {kind.value:15s} {rate:8.0f} req/s {cpu_ms:6.3f} CPU ms/req")
        order.reverse()  # interleave so drift (warm caches, receiver growth) hits all alike
    print()
    print(f"{requests} requests x {rounds} rounds per engine, {concurrency} in flight")
    print("| engine | req/s median (min-max) | client CPU ms/request median (min-max) |")
    print("|---|---:|---:|")
    for kind in kinds:
        print(
            f"| {kind.value} | {statistics.median(rates[kind]):.0f} "
            f"({min(rates[kind]):.0f}-{max(rates[kind]):.0f}) | "
            f"{statistics.median(cpus[kind]):.3f} "
            f"({min(cpus[kind]):.3f}-{max(cpus[kind]):.3f}) |"
        )
    summary = {
        "requests": requests,
        "rounds": rounds,
        "concurrency": concurrency,
        "median_req_s": {k.value: round(statistics.median(v), 1) for k, v in rates.items()},
        "median_cpu_ms": {k.value: round(statistics.median(v), 4) for k, v in cpus.items()},
        "req_s": {k.value: [round(r, 1) for r in v] for k, v in rates.items()},
        "cpu_ms": {k.value: [round(c, 4) for c in v] for k, v in cpus.items()},
    }
    print(json.dumps(summary))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--engines",
        default=",".join(kind.value for kind in TransportKind),
        help="comma-separated engines (httpx, aiohttp, aiohttp-direct)",
    )
    args = parser.parse_args()
    kinds = [TransportKind(name) for name in args.engines.split(",")]
    with receiver_process() as api_url:
        asyncio.run(run(api_url, kinds, args.requests, args.concurrency, args.rounds))


if __name__ == "__main__":
    main()
