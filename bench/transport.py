"""Receiver-call throughput of httpx's own transport against httpx-aiohttp, same run."""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

from adapters.base import ClubRef, Person
from adapters.config import ReceiverConfig
from adapters.http import TransportKind
from adapters.registry import create_adapter
from bench.parts import receiver_process

CLUB = ClubRef(intouch_club_id="1", receiver_club_id="CL1")


async def one_round(config: ReceiverConfig, requests: int, concurrency: int) -> float:
    """Send `requests` create-prospect calls, `concurrency` in flight; return requests/s."""
    remaining = iter(range(requests))
    async with create_adapter("reference", config) as client:

        async def worker() -> None:
            for n in remaining:
                await client.create_prospect(
                    CLUB, Person("Bench", f"Prospect{n}", email=f"b{n}@example.com")
                )

        # Open the pool's connections first so connection set-up is not measured.
        await asyncio.gather(*(client.list_lead_sources() for _ in range(concurrency)))
        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return requests / (time.perf_counter() - started)


async def run(api_url: str, requests: int, concurrency: int, rounds: int) -> None:
    host_port = api_url.removeprefix("http://").split("/", 1)[0]
    configs = {
        kind: ReceiverConfig(
            scheme="http",
            host=host_port,
            base_path="/api/v1",
            receiver_client_id="C100",
            transport=kind,
        )
        for kind in TransportKind
    }
    results: dict[TransportKind, list[float]] = {kind: [] for kind in TransportKind}
    order = list(TransportKind)
    for number in range(1, rounds + 1):
        for kind in order:
            rate = await one_round(configs[kind], requests, concurrency)
            results[kind].append(rate)
            print(f"round {number} {kind.value:8s} {rate:8.0f} req/s", flush=True)
        order.reverse()  # interleave so drift (warm caches, receiver growth) hits both alike
    print()
    print(f"{requests} requests x {rounds} rounds per transport, {concurrency} in flight")
    medians = {kind: statistics.median(rates) for kind, rates in results.items()}
    for kind, median in medians.items():
        print(
            f"{kind.value:8s} median {median:8.0f} req/s  (min {min(results[kind]):.0f}, "
            f"max {max(results[kind]):.0f})"
        )
    ratio = medians[TransportKind.AIOHTTP] / medians[TransportKind.HTTPX]
    print(f"aiohttp/httpx ratio {ratio:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with receiver_process() as api_url:
        asyncio.run(run(api_url, args.requests, args.concurrency, args.rounds))


if __name__ == "__main__":
    main()
