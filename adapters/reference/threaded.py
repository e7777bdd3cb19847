"""The reference receiver served from a background thread, for synchronous callers."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Iterator
from typing import Any

from adapters.reference.config import ReferenceConfig
from adapters.reference.server import ReferenceReceiver


class ThreadedReceiver:
    """A reference receiver serving from its own thread and event loop."""

    def __init__(self, receiver: ReferenceReceiver) -> None:
        self.receiver = receiver
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._failure: BaseException | None = None
        self._thread = threading.Thread(target=self._serve, name="reference-receiver", daemon=True)

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self.receiver.start())
        except BaseException as exc:  # surfaced to the starting thread
            self._failure = exc
            self._ready.set()
            return
        self._ready.set()
        self._loop.run_forever()
        self._loop.run_until_complete(self.receiver.stop())
        self._loop.close()

    def start(self, timeout: float = 10.0) -> None:
        """Start serving; return once the port is bound."""
        self._thread.start()
        if not self._ready.wait(timeout):
            raise TimeoutError("the reference receiver did not start")
        if self._failure is not None:
            raise self._failure

    def call(self, fn: Callable[[], Any]) -> Any:
        """Run `fn` on the receiver's loop (its state is not thread-safe) and return its result."""

        async def run() -> Any:
            return fn()

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(timeout=10)

    def stop(self) -> None:
        """Stop serving and join the thread."""
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)

    @property
    def url(self) -> str:
        """Root URL of the receiver."""
        return self.receiver.url


@contextlib.contextmanager
def run_in_thread(config: ReferenceConfig | None = None) -> Iterator[ThreadedReceiver]:
    """Serve a reference receiver from a background thread for the duration of a with-block."""
    threaded = ThreadedReceiver(ReferenceReceiver(config))
    threaded.start()
    try:
        yield threaded
    finally:
        threaded.stop()
