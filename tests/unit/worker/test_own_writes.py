"""What the worker writes itself: commands sent in batches, outcomes it applied already."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from adapters.errors import RetryableError
from streams.avro.codec import default_codecs
from streams.core.model import Status
from streams.exceptions import PublishError
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


class Ack:
    def __init__(self, partition: int, offset: int) -> None:
        self.partition, self.offset = partition, offset


class HeldTopic:
    """A topic that queues a record only once `gate` is set (a broker slow to take it)."""

    def __init__(self, name: str, gate: asyncio.Event | None = None) -> None:
        self.name, self.gate = name, gate
        self.sent: list[bytes] = []
        self.waiting = asyncio.Event()

    async def send(
        self, *, key: bytes, value: bytes, headers: Any, partition: int | None = None
    ) -> asyncio.Future[Any]:
        if self.gate is not None:
            self.waiting.set()
            await self.gate.wait()
        self.sent.append(value)
        ack: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        ack.set_result(Ack(partition or 0, len(self.sent) - 1))
        return ack

    def get_topic_name(self) -> str:
        return self.name


def test_an_outcome_cancelled_before_its_row_is_written_still_gets_its_row(
    tmp_path: Path,
) -> None:
    """A lane cancelled (partition revoked) between the outcome's ack and its row's: the row
    is written all the same, and `settled` returns only after it, so the next owner of the
    partition reads the LINKED row instead of the pending marker before it."""

    async def scenario() -> tuple[list[bytes], list[bytes], bool]:
        gate = asyncio.Event()
        outcomes, changelog = HeldTopic("outcomes"), HeldTopic("links", gate)
        pub = Publisher(
            default_codecs(), commands=None, outcomes=outcomes, link_changelog=changelog,
            dead_letters=None, parked=None, links=LinkStore(tmp_path), metrics=Metrics(),
            timeout=5.0,
        )  # fmt: skip
        lane = asyncio.ensure_future(pub.outcome(command(1), Status.LINKED, receiver_id="P1"))
        await asyncio.wait_for(changelog.waiting.wait(), 5)  # the outcome is acked
        lane.cancel()
        cancelled = False
        try:
            await lane
        except asyncio.CancelledError:
            cancelled = True
        settling = asyncio.ensure_future(pub.settled())
        await asyncio.sleep(0)
        assert not settling.done()  # the row is not written yet
        gate.set()
        await asyncio.wait_for(settling, 5)
        pub.links.close()
        return outcomes.sent, changelog.sent, cancelled

    outcomes, rows, cancelled = asyncio.run(scenario())
    assert cancelled
    assert len(outcomes) == 1 and len(rows) == 1
    assert b'"receiver_id":"P1"' in rows[0].replace(b" ", b"")


def test_finished_work_outlives_a_cancelled_caller_and_settled_waits_for_it(
    tmp_path: Path,
) -> None:
    """A creating call goes on when its lane is cancelled; `settled` waits for it, and
    raises only what means a write failed (a `PublishError`), not the call's own error."""

    async def scenario() -> tuple[list[str], bool]:
        pub = publisher(FakeTopic(fail_at=None), tmp_path)
        gate, done = asyncio.Event(), []

        async def call(name: str, error: Exception | None) -> str:
            await gate.wait()
            done.append(name)
            if error is not None:
                raise error
            return name

        lane = asyncio.ensure_future(pub.finish(call("create", None)))
        refused = asyncio.ensure_future(pub.finish(call("refused", RetryableError("429"))))
        await asyncio.sleep(0)
        lane.cancel()
        refused.cancel()
        settling = asyncio.ensure_future(pub.settled())
        await asyncio.sleep(0)
        assert not settling.done()
        gate.set()
        await asyncio.wait_for(settling, 5)
        assert lane.cancelled()
        failing = asyncio.ensure_future(pub.finish(call("unwritable", PublishError("down"))))
        await asyncio.sleep(0)
        failing.cancel()
        raised = False
        try:
            await asyncio.wait_for(pub.settled(), 5)
        except PublishError:
            raised = True
        pub.links.close()
        return done, raised

    done, raised = asyncio.run(scenario())
    assert sorted(done) == ["create", "refused", "unwritable"]
    assert raised
