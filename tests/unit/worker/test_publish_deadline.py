"""The publisher's deadline: an ack that never comes ends in PublishError by the timeout."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from streams.avro.codec import default_codecs
from streams.exceptions import PublishError
from streams.kafka.writer import Delivered
from streams.worker.links import LinkStore
from streams.worker.metrics import Metrics
from streams.worker.publishing import Publisher, Source


class HeldTopic:
    """A topic that queues every record and acknowledges only when told to."""

    def __init__(self) -> None:
        self.pending: list[asyncio.Future[Delivered]] = []
        self.sent = asyncio.Event()

    def get_topic_name(self) -> str:
        return "parked"

    async def send(self, **_: Any) -> asyncio.Future[Delivered]:
        self.pending.append(asyncio.get_running_loop().create_future())
        self.sent.set()
        return self.pending[-1]


def publisher(topic: HeldTopic, tmp_path: Path, timeout: float) -> Publisher:
    return Publisher(
        default_codecs(), commands=None, outcomes=None, link_changelog=None, dead_letters=None,
        parked=topic, links=LinkStore(tmp_path / "links"), metrics=Metrics(), timeout=timeout,
    )  # fmt: skip


SOURCE = Source("commands", 0, 7, b"k", b"v", [])


def test_an_ack_that_never_comes_ends_in_publish_error_at_the_timeout(tmp_path: Path) -> None:
    topic = HeldTopic()

    async def run() -> None:
        # Bounded here too: a publisher that waited for ever fails the test, not hangs it.
        park = publisher(topic, tmp_path, timeout=0.5).park(SOURCE, 1.0, "breaker open")
        await asyncio.wait_for(park, 10)

    started = time.monotonic()
    with pytest.raises(PublishError, match="TimeoutError"):
        asyncio.run(run())
    assert 0.4 < time.monotonic() - started < 5
    assert topic.pending and all(f.done() for f in topic.pending)


def test_an_ack_in_time_ends_the_send_once(tmp_path: Path) -> None:
    topic = HeldTopic()

    async def run() -> Any:
        send = asyncio.ensure_future(
            publisher(topic, tmp_path, timeout=0.2).park(SOURCE, 1.0, "breaker open")
        )
        await asyncio.wait_for(topic.sent.wait(), 10)
        topic.pending[0].set_result(Delivered("parked", 0, 41))
        await asyncio.wait_for(send, 10)
        # Past the deadline, the acknowledged record is not failed after all.
        await asyncio.sleep(0.3)
        assert topic.pending[0].result() == Delivered("parked", 0, 41)

    asyncio.run(run())
    assert len(topic.pending) == 1
