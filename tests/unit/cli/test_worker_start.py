"""A worker started while Kafka does not answer waits for it, within its start-up budget."""

from __future__ import annotations

import pytest

from streams.cli.worker import until_kafka_answers
from streams.exceptions import KafkaClientError, TopicMismatchError


def test_a_broker_that_comes_back_is_waited_for() -> None:
    tries: list[int] = []
    pauses: list[float] = []

    def ensure() -> str:
        tries.append(1)
        if len(tries) < 3:
            raise KafkaClientError("cannot list topics: Broker transport failure")
        return "topics"

    assert until_kafka_answers(ensure, timeout=60, pause=pauses.append) == "topics"
    assert len(tries) == 3 and len(pauses) == 2


def test_past_its_budget_or_on_another_error_the_worker_stops() -> None:
    def down() -> None:
        raise KafkaClientError("cannot list topics: Broker transport failure")

    with pytest.raises(KafkaClientError):
        until_kafka_answers(down, timeout=0.0, pause=lambda _: None)

    def mismatched() -> None:
        raise TopicMismatchError("users has 3 partitions")

    with pytest.raises(TopicMismatchError):
        until_kafka_answers(mismatched, timeout=60, pause=lambda _: None)
