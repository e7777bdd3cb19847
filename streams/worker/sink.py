"""A consumed stream of commands: keyed lanes per entity, acks released in offset order."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable
from typing import Any

from streams.core.lanes import KeyedLanes, OrderedAcks
from streams.worker.ownership import Ownership
from streams.worker.publishing import RUNNING, Source, source_of


class CommandStream:
    """Feeds one topic of commands (the commands topic, or the parking topic) through keyed
    lanes to `run`, and hands Faust the acks only as each partition's completed prefix."""

    def __init__(
        self,
        run: Callable[[Source], Awaitable[None]],
        ownership: Ownership,
        on_error: Callable[[BaseException], None],
        *,
        max_in_flight: int,
        tenant_max_in_flight: int,
        max_queued: int,
        tenant_of: Callable[[Any], Hashable],
    ) -> None:
        self._run_source = run
        self._ownership = ownership
        self.acks: OrderedAcks[Any, Any] = OrderedAcks()
        self.lanes: KeyedLanes[Any] = KeyedLanes(
            max_in_flight,
            self._run,
            self._release,
            on_error,
            budget_of=tenant_of,
            budget_size=min(tenant_max_in_flight, max_in_flight),
            max_queued=max(max_queued, max_in_flight),
        )
        self._stream: Any = None

    async def agent(self, stream: Any) -> None:
        """The Faust agent: every event goes into its entity's lane, unacked until done."""
        manual = stream.noack()
        self._stream = manual
        async for event in manual.events():
            message = event.message
            self.acks.track(message.tp, message.offset, event)
            await self.lanes.submit(message.key or b"", event)

    async def _run(self, event: Any) -> None:
        if not await self._ownership.admit(event.message.tp):
            return  # revoked meanwhile: the next owner runs it
        source = source_of(event.message)
        # The command this task runs: the row of its outcome carries it as the user's state.
        token = RUNNING.set(source)
        try:
            await self._run_source(source)
        finally:
            RUNNING.reset(token)

    async def _release(self, event: Any) -> None:
        message = event.message
        for done in self.acks.complete(message.tp, message.offset):
            await self._stream.ack(done)

    async def revoke(self, partitions: set[Any]) -> int:
        """Stop the revoked partitions' lanes at once; return how many commands were left."""
        dropped = await self.lanes.cancel(lambda event: event.message.tp in partitions)
        self.acks.forget(partitions)
        return dropped

    async def close(self) -> None:
        await self.lanes.close()
