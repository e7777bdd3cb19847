"""The hand-written peer of `bench.peer`: consume user changes, call the receiver, commit.

No Faust, no outcomes, no link tables: a confluent-kafka consumer, the fastavro codec,
aiohttp with `--in-flight` calls at once (one at a time per entity, in offset order), and
each partition's offsets committed once every call before them has answered. It prints
`ready` once it holds its partitions and one JSON line when `--events` calls are done.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections import deque
from typing import Any

import aiohttp
from confluent_kafka import Consumer, TopicPartition

from streams.avro.codec import default_codecs


class Partition:
    """Offsets polled and calls done on one partition: commit only the answered prefix."""

    def __init__(self) -> None:
        self.open: deque[int] = deque()
        self.done: set[int] = set()
        self.committable: int | None = None

    def complete(self, offset: int) -> None:
        self.done.add(offset)
        while self.open and self.open[0] in self.done:
            self.done.discard(self.open[0])
            self.committable = self.open.popleft() + 1


class Peer:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.codec = default_codecs()["UserChanged"]
        self.ids: dict[str, str] = {}
        self.lanes: dict[bytes, deque[Any]] = {}
        self.partitions: dict[int, Partition] = {}
        self.slots = asyncio.Semaphore(args.in_flight)
        self.calls = 0
        self.errors = 0
        self.all_done = asyncio.Event()

    def person(self, event: dict[str, Any]) -> dict[str, Any]:
        return {
            "externalId": event["intouch_id"],
            "firstName": event["first_name"],
            "lastName": event["last_name"],
            "status": event["status"].lower(),
            "type": event["user_type"].lower(),
        }

    async def call(self, session: aiohttp.ClientSession, event: dict[str, Any]) -> None:
        club = f"{self.args.base}/clients/{self.args.client}/clubs/{self.args.club}/prospects"
        known = self.ids.get(event["intouch_id"])
        async with self.slots:
            if known is None:
                async with session.post(club, json=self.person(event)) as answer:
                    body = await answer.json()
                    ok = answer.status < 300
                    if ok:
                        self.ids[event["intouch_id"]] = body["prospect"]["id"]
            else:
                async with session.put(f"{club}/{known}", json=self.person(event)) as answer:
                    await answer.read()
                    ok = answer.status < 300
        self.calls += 1
        self.errors += not ok

    async def lane(self, session: aiohttp.ClientSession, key: bytes) -> None:
        queue = self.lanes[key]
        while queue:
            partition, offset, value = queue[0]
            await self.call(session, self.codec.decode(value))
            queue.popleft()
            self.partitions[partition].complete(offset)
        del self.lanes[key]
        if self.calls >= self.args.events:
            self.all_done.set()

    async def run(self) -> dict[str, Any]:
        consumer = Consumer(
            {
                "bootstrap.servers": self.args.bootstrap,
                "group.id": self.args.group,
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
            }
        )
        assigned = asyncio.Event()
        loop = asyncio.get_running_loop()
        consumer.subscribe(
            [self.args.topic], on_assign=lambda c, parts: loop.call_soon(assigned.set)
        )
        connector = aiohttp.TCPConnector(limit=self.args.in_flight)
        async with aiohttp.ClientSession(connector=connector) as session:
            while not assigned.is_set():
                consumer.poll(0.1)
                await asyncio.sleep(0)
            print("ready", flush=True)
            started, cpu = time.perf_counter(), time.process_time()
            tasks: set[asyncio.Task[None]] = set()
            last_commit = time.monotonic()
            while not self.all_done.is_set():
                messages = consumer.consume(500, 0) if len(self.lanes) < 4096 else []
                for message in messages:
                    if message.error():
                        continue
                    part = self.partitions.setdefault(message.partition(), Partition())
                    part.open.append(message.offset())
                    key = message.key() or b""
                    entry = (message.partition(), message.offset(), message.value())
                    if key in self.lanes:
                        self.lanes[key].append(entry)
                    else:
                        self.lanes[key] = deque([entry])
                        task = asyncio.create_task(self.lane(session, key))
                        tasks.add(task)
                        task.add_done_callback(tasks.discard)
                if time.monotonic() - last_commit > 0.5:
                    self.commit(consumer)
                    last_commit = time.monotonic()
                await asyncio.sleep(0 if messages else 0.005)
            seconds = time.perf_counter() - started
            self.commit(consumer)
        consumer.close()
        return {
            "calls": self.calls,
            "errors": self.errors,
            "seconds": seconds,
            "cpu_seconds": time.process_time() - cpu,
        }

    def commit(self, consumer: Consumer) -> None:
        offsets = [
            TopicPartition(self.args.topic, number, part.committable)
            for number, part in self.partitions.items()
            if part.committable is not None
        ]
        if offsets:
            consumer.commit(offsets=offsets, asynchronous=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--group", required=True)
    parser.add_argument("--base", required=True, help="The receiver's API URL.")
    parser.add_argument("--client", required=True)
    parser.add_argument("--club", required=True)
    parser.add_argument("--events", type=int, required=True)
    parser.add_argument("--in-flight", type=int, default=64)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(Peer(args).run())), flush=True)


if __name__ == "__main__":
    main()
