"""Faust's "stream is stuck" report is an INFO line for parked work, and stays an ERROR
elsewhere."""

from __future__ import annotations

import logging

from streams.worker.app import _ParkedIsNotStuck

PARKED = "p.connector.parked.v1"


def record(text: str, *args: object) -> logging.LogRecord:
    return logging.LogRecord(
        "faust.transport.drivers.aiokafka", logging.ERROR, __file__, 1, text, args, None
    )


def test_a_stalled_parking_topic_is_reported_at_info() -> None:
    stalled = record(
        "Has not committed %s (last commit %s).\n\nThere are multiple possible explanations",
        f"TP(topic='{PARKED}', partition=2)",
        "6 minutes ago",
    )
    assert _ParkedIsNotStuck(PARKED).filter(stalled)
    assert (stalled.levelno, stalled.levelname) == (logging.INFO, "INFO")
    assert stalled.getMessage() == (
        f"Has not committed TP(topic='{PARKED}', partition=2) (last commit 6 minutes ago). "
        "(parked work waiting for its tenant's receiver)"
    )


def test_a_stalled_commands_topic_stays_an_error() -> None:
    stalled = record("Stream stopped processing, or is slow for %r", "TP(topic='p.commands')")
    assert _ParkedIsNotStuck(PARKED).filter(stalled)
    assert stalled.levelno == logging.ERROR
