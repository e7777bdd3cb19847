"""What the worker writes itself: commands sent in batches, outcomes it applied already."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from streams.avro.codec import default_codecs
from streams.core.model import Status
from streams.worker.links import LinkStore
from streams.worker.metrics import Metrics
from streams.worker.publishing import Publisher
from tests.integration.harness import NOW
from tests.unit.worker.test_user_states import command


def outcome(version: int, status: Status, receiver_id: str | None = None) -> dict[str, Any]:
    return {
        "outcome_id": f"o{version}", "command_id": f"c{version}", "client_id": "100",
        "club_id": "7", "entity": "USER", "intouch_id": "5001", "version": version,
        "status": str(status), "receiver_id": receiver_id, "call": "create", "user_type": None,
        "fingerprint": f"fp{version}", "message": None, "attempts": 1, "occurred_at": NOW,
        "replay_id": None,
    }  # fmt: skip


def test_the_follower_skips_only_rows_written_here(tmp_path: Path) -> None:
    store = LinkStore(tmp_path)
    store.apply_own(outcome(1, Status.LINKED, "P1"), (2, 10))
    store.mark_own((2, 10))
    store.apply_own(outcome(2, Status.LINKED, "P1"), (2, 12))
    store.mark_own((2, 12))
    assert not store.applied_here((2, 9))  # another worker's, before ours
    assert store.applied_here((2, 10))
    assert not store.applied_here((2, 10))  # once only
    assert not store.applied_here((1, 12))  # another partition
    # The follower passed 12 before it was written down: forgotten, not kept for ever.
    assert not store.applied_here((2, 13))
    assert store._own[2] == []
    link = store.user("100", "5001")
    assert link is not None and link.receiver_id == "P1" and link.version == 2
    store.close()


class FakeTopic:
    """A commands topic whose sends fail from the `fail_at`th one on, until told otherwise."""

    def __init__(self, fail_at: int | None) -> None:
        self.fail_at = fail_at
        self.sent: list[bytes] = []

    async def send(
        self, *, key: bytes, value: bytes, headers: Any, partition: int | None = None
    ) -> asyncio.Future[Any]:
        ack: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        if self.fail_at is not None and len(self.sent) >= self.fail_at:
            ack.set_exception(RuntimeError("leader moved"))
            self.fail_at = None  # the next try goes through
        else:
            self.sent.append(value)
            ack.set_result(None)
        return ack

    def get_topic_name(self) -> str:
        return "commands"


def publisher(topic: FakeTopic, tmp_path: Path) -> Publisher:
    return Publisher(
        default_codecs(), commands=topic, outcomes=None, link_changelog=None, dead_letters=None,
        parked=None, links=LinkStore(tmp_path), metrics=Metrics(), timeout=5.0,
    )  # fmt: skip


def test_a_batch_is_sent_in_order(tmp_path: Path) -> None:
    topic = FakeTopic(fail_at=None)
    batch = [(command(v), None) for v in (1, 2, 3)]
    asyncio.run(publisher(topic, tmp_path).commands(batch))
    decode = default_codecs()["Command"].decode
    assert [decode(v)["version"] for v in topic.sent] == [1, 2, 3]


def test_a_failed_send_sends_the_rest_of_the_batch_again_in_order(tmp_path: Path) -> None:
    topic = FakeTopic(fail_at=1)
    batch = [(command(v), None) for v in (1, 2, 3)]
    asyncio.run(publisher(topic, tmp_path).commands(batch))
    decode = default_codecs()["Command"].decode
    # 2 failed, 3 went through; then 2 and 3 again: version 3 is still the last one.
    assert [decode(v)["version"] for v in topic.sent] == [1, 3, 2, 3]
