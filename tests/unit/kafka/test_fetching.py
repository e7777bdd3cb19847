"""The worker consumer's fetches: batched while they bring records, aiokafka's own after one
that brought none."""

from __future__ import annotations

import asyncio
import inspect
from typing import Any

from aiokafka.consumer.fetcher import Fetcher

from streams.kafka.fetching import batch_fetches


class ScriptedFetcher:
    """The three members of aiokafka's Fetcher that `batch_fetches` uses; each fetch answers
    the next of `answers` (whether it brought records) and records the settings it went with."""

    def __init__(self, answers: list[bool]) -> None:
        self._fetch_min_bytes, self._fetch_max_wait_ms = 1, 1500
        self.answers = answers
        self.sent_with: list[tuple[int, int]] = []

    async def _proc_fetch_request(self, assignment: Any, node_id: int, request: Any) -> bool:
        self.sent_with.append((self._fetch_min_bytes, self._fetch_max_wait_ms))
        return self.answers.pop(0)


def test_fetches_batch_while_records_come_and_go_back_to_waiting_for_one_when_none_do() -> None:
    fetcher = ScriptedFetcher([True, True, False, False, True, False])
    batch_fetches(fetcher, 65536, 20)

    async def run() -> list[bool]:
        return [await fetcher._proc_fetch_request(None, 1, None) for _ in range(6)]

    assert asyncio.run(run()) == [True, True, False, False, True, False]
    assert fetcher.sent_with == [
        (1, 1500),  # quiet: the first record comes back at once
        (65536, 20),  # records came: the next fetch waits for more, 20 ms at most
        (65536, 20),
        (1, 1500),  # that one brought nothing: no empty answer every 20 ms while idle
        (1, 1500),
        (65536, 20),
    ]
    assert (fetcher._fetch_min_bytes, fetcher._fetch_max_wait_ms) == (1, 1500)


def test_aiokafkas_fetcher_builds_each_request_from_the_settings_batch_fetches_changes() -> None:
    # Were aiokafka to read them once (or rename them), batching would silently stop.
    source = inspect.getsource(Fetcher._get_actions_per_node)
    assert "self._fetch_max_wait_ms," in source and "self._fetch_min_bytes," in source
    assert inspect.iscoroutinefunction(Fetcher._proc_fetch_request)
    assert "_proc_fetch_request(" in inspect.getsource(Fetcher._fetch_requests_routine)
