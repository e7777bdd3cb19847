"""Keyed lanes (per-key order, cross-key concurrency) and acks released in offset order."""

from __future__ import annotations

import asyncio

from streams.core.lanes import KeyedLanes, OrderedAcks


def test_acks_are_released_only_as_a_contiguous_prefix() -> None:
    acks: OrderedAcks[str, int] = OrderedAcks()
    for offset in (10, 11, 12):
        acks.track("tp", offset, offset)
    assert acks.complete("tp", 11) == []
    assert acks.complete("tp", 12) == []
    assert acks.complete("tp", 10) == [10, 11, 12]
    acks.track("tp", 13, 13)
    assert acks.complete("tp", 13) == [13]  # nothing of the released prefix comes back


def test_lanes_keep_each_key_in_order_and_run_keys_concurrently() -> None:
    async def scenario() -> tuple[list[str], list[str], int]:
        order: list[str] = []
        done: list[str] = []
        gate = asyncio.Event()
        finished = asyncio.Event()
        running = 0
        peak = 0

        async def run(item: str) -> None:
            nonlocal running, peak
            running += 1
            peak = max(peak, running)
            if item == "a1":
                await gate.wait()  # a slow first command of key a
            order.append(item)
            running -= 1

        async def on_done(item: str) -> None:
            done.append(item)
            if item == "b2":
                gate.set()
            if len(done) == 4:
                finished.set()

        lanes = KeyedLanes(8, run, on_done)
        for key, item in [(b"a", "a1"), (b"b", "b1"), (b"a", "a2"), (b"b", "b2")]:
            await lanes.submit(key, item)
        await asyncio.wait_for(finished.wait(), timeout=10)
        await lanes.close()
        return order, done, peak

    order, done, peak = asyncio.run(scenario())
    assert sorted(done) == ["a1", "a2", "b1", "b2"]
    assert order.index("a1") < order.index("a2")
    assert order.index("b1") < order.index("b2")
    assert order.index("b2") < order.index("a1")  # b did not wait for slow a
    assert peak >= 2
