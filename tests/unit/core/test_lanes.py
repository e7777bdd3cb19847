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


class Started:
    """The items a lane began, in order, and a way to wait for one of them."""

    def __init__(self) -> None:
        self.items: list[str] = []
        self._events: dict[str, asyncio.Event] = {}

    def add(self, item: str) -> None:
        self.items.append(item)
        self._event(item).set()

    def _event(self, item: str) -> asyncio.Event:
        return self._events.setdefault(item, asyncio.Event())

    async def wait_for(self, item: str) -> None:
        await asyncio.wait_for(self._event(item).wait(), timeout=5)


def _hanging_lanes(max_in_flight: int, budget_size: int) -> tuple[KeyedLanes[str], Started]:
    started = Started()
    forever = asyncio.Event()

    async def run(item: str) -> None:
        started.add(item)
        if item.endswith("hang"):
            await forever.wait()

    async def on_done(item: str) -> None:
        return None

    lanes: KeyedLanes[str] = KeyedLanes(
        max_in_flight,
        run,
        on_done,
        budget_of=lambda item: item.split("/")[0],
        budget_size=budget_size,
    )
    return lanes, started


def test_a_tenant_over_its_budget_waits_without_taking_the_other_tenants_slots() -> None:
    async def scenario() -> list[str]:
        lanes, started = _hanging_lanes(max_in_flight=3, budget_size=2)
        for n in range(4):  # four entities of tenant a, every call hangs
            await lanes.submit(f"a{n}".encode(), f"a/{n}/hang")
        await lanes.submit(b"b0", "b/0/quick")
        await started.wait_for("b/0/quick")
        await lanes.close()
        return started.items

    started = asyncio.run(scenario())
    assert sum(1 for item in started if item.startswith("a/")) == 2  # a's budget, no more


def test_an_item_waiting_behind_its_own_key_holds_no_slot() -> None:
    async def scenario() -> list[str]:
        lanes, started = _hanging_lanes(max_in_flight=2, budget_size=2)
        await lanes.submit(b"x", "a/x1/hang")
        await lanes.submit(b"x", "a/x2/hang")  # queued behind x1 of the same entity
        await lanes.submit(b"y", "b/y1/quick")
        await started.wait_for("b/y1/quick")
        await lanes.close()
        return started.items

    assert asyncio.run(scenario()) == ["a/x1/hang", "b/y1/quick"]


def test_cancelled_lanes_give_back_their_room_and_run_nothing_more() -> None:
    async def scenario() -> tuple[int, list[str]]:
        started = Started()
        forever = asyncio.Event()

        async def run(item: str) -> None:
            started.add(item)
            await forever.wait()

        async def on_done(item: str) -> None:
            return None

        lanes: KeyedLanes[str] = KeyedLanes(4, run, on_done, max_queued=3)
        for item in ("p0-1", "p0-2", "p1-1"):
            await lanes.submit(item[:2].encode(), item)
        dropped = await lanes.cancel(lambda item: item.startswith("p0"))
        await lanes.submit(b"p2", "p2-1")  # room was given back: this does not block
        await started.wait_for("p2-1")
        await lanes.close()
        return dropped, started.items

    dropped, started = asyncio.run(scenario())
    assert dropped == 2
    assert "p0-2" not in started


def test_held_counts_a_tenants_queued_and_running_items_until_they_leave() -> None:
    async def scenario() -> list[tuple[int, int]]:
        lanes, started = _hanging_lanes(max_in_flight=4, budget_size=1)
        seen = []
        await lanes.submit(b"a0", "a/0/hang")
        await lanes.submit(b"a1", "a/1/hang")  # waits for a's budget
        await lanes.submit(b"a0", "a/2/hang")  # waits behind its own entity
        await lanes.submit(b"b0", "b/0/quick")
        await started.wait_for("b/0/quick")
        seen.append((lanes.held("a"), lanes.held("b")))
        await lanes.cancel(lambda item: item.startswith("a/"))
        seen.append((lanes.held("a"), lanes.held("b")))
        return seen

    assert asyncio.run(scenario()) == [(3, 0), (0, 0)]


def test_nothing_submitted_after_close_runs() -> None:
    async def scenario() -> list[str]:
        lanes, started = _hanging_lanes(max_in_flight=2, budget_size=2)
        await lanes.submit(b"a", "a/1/hang")
        await started.wait_for("a/1/hang")
        await lanes.close()
        await lanes.submit(b"b", "b/1/quick")  # the agent still delivers during shutdown
        await asyncio.sleep(0)
        return started.items

    assert asyncio.run(scenario()) == ["a/1/hang"]
