"""`clients.watermarks` asks again while a new topic's leader is not ready, and only then."""

from __future__ import annotations

from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException

from streams.kafka import clients


class Flaky:
    """Answers `errors` first (one per call), then (0, 10 + partition)."""

    def __init__(self, *errors: int) -> None:
        self.errors = list(errors)
        self.calls = 0

    def get_watermark_offsets(self, tp: Any, timeout: float) -> tuple[int, int]:
        self.calls += 1
        if self.errors:
            raise KafkaException(KafkaError(self.errors.pop(0)))
        return 0, 10 + tp.partition


def test_not_leader_yet_is_asked_again() -> None:
    consumer = Flaky(KafkaError.NOT_LEADER_FOR_PARTITION, KafkaError.LEADER_NOT_AVAILABLE)
    assert clients.watermarks(consumer, "t", 2, timeout=10) == {0: (0, 10), 1: (0, 11)}
    assert consumer.calls == 4


def test_a_broker_restarting_under_the_request_is_asked_again() -> None:
    # Seen when a worker started while the broker restarted: it exited instead of waiting.
    consumer = Flaky(KafkaError._DESTROY_BROKER, KafkaError._ALL_BROKERS_DOWN)
    assert clients.watermarks(consumer, "t", 1, timeout=10) == {0: (0, 10)}
    assert consumer.calls == 3
    # Seen in a soak (a worker exited 1): "Local: Unknown partition", the metadata not back.
    consumer = Flaky(KafkaError._UNKNOWN_PARTITION)
    assert clients.watermarks(consumer, "t", 1, timeout=10) == {0: (0, 10)}
    assert consumer.calls == 2


def test_an_error_that_will_not_pass_is_raised_at_once() -> None:
    consumer = Flaky(KafkaError.TOPIC_AUTHORIZATION_FAILED)
    with pytest.raises(KafkaException):
        clients.watermarks(consumer, "t", 1, timeout=10)
    assert consumer.calls == 1


def test_a_leader_that_never_comes_ends_at_the_timeout() -> None:
    consumer = Flaky(*[KafkaError.NOT_LEADER_FOR_PARTITION] * 1000)
    with pytest.raises(KafkaException):
        clients.watermarks(consumer, "t", 1, timeout=0.5)
    assert 2 <= consumer.calls < 10
