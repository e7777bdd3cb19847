"""Which commands partitions this worker may run now: none while a rebalance is under way, and
the assigned ones only once its link state has caught up with the outcomes log."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from typing import Any

log = logging.getLogger(__name__)


class Ownership:
    """The gate every command passes before it may call a receiver.

    A rebalance closes it at once (before Faust revokes anything). Revoked partitions have
    their lanes cancelled and their ack state forgotten: the next owner gets those commands
    from the committed offset, and the effects rules make running one twice harmless. An
    assignment opens the gate only after `catch_up` returns, so a partition that moved here is
    never worked on from link state older than the outcomes its last owner wrote.
    """

    def __init__(
        self,
        catch_up: Callable[[], None],
        on_failure: Callable[[BaseException], None],
        *,
        is_commands: Callable[[Any], bool],
    ) -> None:
        self._catch_up = catch_up
        self._on_failure = on_failure
        self._is_commands = is_commands
        self._owned: set[Any] = set()
        self._ready = asyncio.Event()
        self._barrier: asyncio.Task[None] | None = None

    def rebalance_started(self) -> None:
        """Close the gate now: nothing starts until the new assignment is caught up."""
        self._ready.clear()
        if self._barrier is not None:
            self._barrier.cancel()
            self._barrier = None

    def revoked(self, partitions: Iterable[Any]) -> set[Any]:
        """Forget `partitions`; return the commands partitions among them."""
        gone = {tp for tp in partitions if self._is_commands(tp)}
        self._owned -= gone
        return gone

    def assigned(self, partitions: Iterable[Any]) -> None:
        """Own `partitions` once the link state has caught up (in the background)."""
        self._owned = {tp for tp in partitions if self._is_commands(tp)}
        self._ready.clear()
        self._barrier = asyncio.get_running_loop().create_task(self._open_when_current())

    async def _open_when_current(self) -> None:
        try:
            await asyncio.to_thread(self._catch_up)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._on_failure(exc)
            return
        log.info("link state current; running %d commands partitions", len(self._owned))
        self._ready.set()

    @property
    def is_open(self) -> bool:
        """Whether commands may run now: assigned, and the link state caught up."""
        return self._ready.is_set()

    @property
    def owned(self) -> int:
        """How many commands and parking partitions this worker owns."""
        return len(self._owned)

    def partitions(self, topic: str) -> set[int]:
        """The partitions of `topic` assigned here (caught up or not)."""
        return {tp.partition for tp in self._owned if tp.topic == topic}

    def owns(self, topic: str, partition: int) -> bool:
        """Whether this worker runs that partition now (assigned, and caught up)."""
        return self.is_open and any(
            tp.topic == topic and tp.partition == partition for tp in self._owned
        )

    async def admit(self, partition: Any) -> bool:
        """Wait until the gate is open; whether `partition` is still this worker's to run."""
        await self._ready.wait()
        return partition in self._owned
