"""Keyed lanes for the sink: independent entities run at once, one entity strictly in order."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Hashable, Iterable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")
P = TypeVar("P", bound=Hashable)


@dataclass
class _Partition(Generic[T]):
    order: deque[int] = field(default_factory=deque)
    done: set[int] = field(default_factory=set)
    tokens: dict[int, T] = field(default_factory=dict)


class OrderedAcks(Generic[P, T]):
    """Releases acks strictly in offset order per partition.

    faust-streaming commits past an in-flight message when acks arrive out of order
    (faust-streaming #606), so only the contiguous completed prefix is handed to Faust.
    """

    def __init__(self) -> None:
        self._partitions: dict[P, _Partition[T]] = {}

    def track(self, partition: P, offset: int, token: T) -> None:
        part = self._partitions.setdefault(partition, _Partition())
        part.order.append(offset)
        part.tokens[offset] = token

    def complete(self, partition: P, offset: int) -> list[T]:
        """Mark one offset done; return the tokens now safe to ack, lowest offset first
        (none for a partition forgotten since: it is no longer ours to ack)."""
        part = self._partitions.get(partition)
        if part is None or offset not in part.tokens:
            return []
        part.done.add(offset)
        released = []
        while part.order and part.order[0] in part.done:
            head = part.order.popleft()
            part.done.discard(head)
            released.append(part.tokens.pop(head))
        return released

    def forget(self, partitions: Iterable[P]) -> None:
        """Drop what is tracked for partitions this worker gave up (revoked)."""
        for partition in partitions:
            self._partitions.pop(partition, None)


class KeyedLanes(Generic[T]):
    """Runs items concurrently across keys and sequentially within a key.

    Three bounds: `max_in_flight` items run at once worker-wide; at most `budget_size` of
    them share one budget (a tenant), so one slow receiver cannot take every slot; and at
    most `max_queued` items are held, queued or running (memory, and back-pressure on the
    source). An item waiting behind its own key holds no running slot.
    """

    def __init__(
        self,
        max_in_flight: int,
        run: Callable[[T], Awaitable[None]],
        on_done: Callable[[T], Awaitable[None]],
        on_error: Callable[[BaseException], None] = lambda _: None,
        *,
        budget_of: Callable[[T], Hashable] = lambda _: None,
        budget_size: int | None = None,
        max_queued: int | None = None,
    ) -> None:
        self._slots = asyncio.Semaphore(max_in_flight)
        self._room = asyncio.Semaphore(max_queued or max_in_flight * 16)
        self._budget_of = budget_of
        self._budget_size = budget_size or max_in_flight
        self._budgets: dict[Hashable, asyncio.Semaphore] = {}
        self._run = run
        self._on_done = on_done
        self._on_error = on_error
        self._lanes: dict[bytes, deque[T]] = {}
        self._tasks: dict[bytes, asyncio.Task[None]] = {}
        self._failed: BaseException | None = None
        self._held: Counter[Hashable] = Counter()
        self._closed = False

    def held(self, budget: Hashable) -> int:
        """Items of one budget (tenant) held now, queued or running."""
        return self._held[budget]

    def _let_go(self, item: T) -> None:
        """An item leaves (done, dropped or left behind): free its room."""
        self._room.release()
        name = self._budget_of(item)
        self._held[name] -= 1
        if self._held[name] <= 0:
            del self._held[name]

    async def submit(self, key: bytes, item: T) -> None:
        """Queue `item` behind earlier items of `key`; waits while `max_queued` are held.

        After a lane failed, nothing more runs (a later item of its key would overtake the
        failed one): `submit` raises the failure.
        """
        await self._room.acquire()
        if self._failed is not None:
            self._room.release()
            raise self._failed
        if self._closed:
            # Stopping: the item is not run (nor done, nor acked); it comes back after a
            # restart. Running it now would use receiver clients that are being closed.
            self._room.release()
            return
        self._held[self._budget_of(item)] += 1
        lane = self._lanes.get(key)
        if lane is not None:
            lane.append(item)
            return
        self._lanes[key] = deque([item])
        task = asyncio.create_task(self._drain(key), name=f"lane-{key.hex()[:16]}")
        self._tasks[key] = task
        task.add_done_callback(lambda done: self._forget_task(key, done))

    def _forget_task(self, key: bytes, task: asyncio.Task[None]) -> None:
        if self._tasks.get(key) is task:
            del self._tasks[key]

    def _budget(self, item: T) -> asyncio.Semaphore:
        name = self._budget_of(item)
        budget = self._budgets.get(name)
        if budget is None:
            budget = self._budgets[name] = asyncio.Semaphore(self._budget_size)
        return budget

    async def _drain(self, key: bytes) -> None:
        lane = self._lanes[key]
        while lane and self._failed is None:
            item = lane[0]
            # The tenant's budget first: a saturated tenant waits without a worker-wide slot.
            async with self._budget(item), self._slots:
                try:
                    await self._run(item)
                except Exception as exc:
                    # `run` handles what it can; what escapes it (an outcome that cannot be
                    # written) must stop the worker: neither this item nor those queued behind
                    # it is done, so none is acked and all come back after a restart.
                    log.error("sink lane %s stopped: %s: %s", key.hex(), type(exc).__name__, exc)
                    self._failed = exc
                    self._on_error(exc)
                    break
            lane.popleft()
            self._let_go(item)
            await self._on_done(item)
        for left in lane:  # left behind by a failure: not done, not acked
            self._let_go(left)
        del self._lanes[key]

    async def cancel(self, doomed: Callable[[T], bool]) -> int:
        """Stop every lane whose items are `doomed` (e.g. of a revoked partition) at once: its
        running item is cancelled and its queued ones dropped, none of them done. Returns
        how many items were dropped."""
        victims = [key for key, lane in self._lanes.items() if lane and doomed(lane[0])]
        tasks = [self._tasks[key] for key in victims if key in self._tasks]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        dropped = 0
        for key in victims:
            lane = self._lanes.pop(key, None) or deque()
            dropped += len(lane)
            for left in lane:
                self._let_go(left)
        return dropped

    async def close(self) -> None:
        """Cancel every lane and run nothing submitted afterwards."""
        self._closed = True
        await self.cancel(lambda _: True)
