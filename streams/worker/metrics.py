"""Prometheus metrics of one worker: events, commands, skips, outcomes, dead letters, receiver
calls, retries by cause, in-flight commands and breakers per client, link table size, process.

Label values are closed sets (entity, status, kind, stage, error class, call, cause) or the
client ID, never free text.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Generic, TypeVar

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

#: The label of a dead letter whose client is unknown (an undecodable key).
UNKNOWN_CLIENT = "unknown"

M = TypeVar("M", Counter, Gauge, Histogram)


class Labelled(Generic[M]):
    """A labelled metric whose children are kept by label values: prometheus_client's
    `labels` checks its arguments and takes a lock on every call, several times per event.
    Bounded: label values are closed sets or client IDs (see above)."""

    def __init__(self, metric: M) -> None:
        self.metric: M = metric
        self._children: dict[tuple[str, ...], M] = {}

    def labels(self, *values: str) -> M:
        child = self._children.get(values)
        if child is None:
            child = self._children[values] = self.metric.labels(*values)
        return child


class Metrics:
    """The worker's metrics; one registry per pipeline so tests can read them."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)  # memory, CPU, open files of the worker
        PlatformCollector(registry=self.registry)
        self.events = Labelled(
            Counter("connector_events", "Inbound events planned", ["topic"], registry=self.registry)
        )
        self.commands = Labelled(
            Counter("connector_commands", "Commands issued", ["kind"], registry=self.registry)
        )
        self.skipped = Labelled(Counter(
            "connector_planner_skipped", "Changes that became no command", ["reason"],
            registry=self.registry,
        ))  # fmt: skip
        self.replans = Labelled(Counter(
            "connector_replans", "Users planned again after a link they reference moved",
            ["result"], registry=self.registry,
        ))  # fmt: skip
        self.outcomes = Labelled(Counter(
            "connector_outcomes", "Sink outcomes", ["client", "entity", "status"],
            registry=self.registry,
        ))  # fmt: skip
        self.link_rows_repaired = Counter(
            "connector_link_rows_repaired",
            "Link rows written again after an older row of their entity landed behind them",
            registry=self.registry,
        )
        self.dead_letters = Labelled(Counter(
            "connector_dead_letters", "Records sent to the DLQ", ["client", "stage", "error"],
            registry=self.registry,
        ))  # fmt: skip
        self.calls = Labelled(Histogram(
            "connector_receiver_call_seconds", "Receiver call latency",
            ["client", "call", "result"], registry=self.registry,
        ))  # fmt: skip
        self.retries = Labelled(Counter(
            "connector_retries", "Retried receiver calls, by cause", ["client", "cause"],
            registry=self.registry,
        ))  # fmt: skip
        self.in_flight = Labelled(Gauge(
            "connector_sink_in_flight", "Commands running against a receiver now", ["client"],
            registry=self.registry,
        ))  # fmt: skip

    def watch(self, collector: Collector) -> None:
        """Add a collector read at scrape time (breakers, link table size)."""
        self.registry.register(collector)


class BreakerCollector(Collector):
    """`connector_breaker_open{client}`: 1 while a client's circuit breaker is open."""

    def __init__(self, breakers: Callable[[], Iterable[tuple[str, Any]]]) -> None:
        self._breakers = breakers

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "connector_breaker_open",
            "1 while the client's circuit breaker is open (its work is parked)",
            labels=["client"],
        )
        now = time.time()
        for client, breaker in self._breakers():
            family.add_metric([client], 1.0 if breaker.is_open(now) else 0.0)
        yield family


class LinkTableCollector(Collector):
    """`connector_link_table_keys`: the link table's size (RocksDB's estimate of its keys)."""

    def __init__(self, estimate: Callable[[], int]) -> None:
        self._estimate = estimate

    def collect(self) -> Iterator[GaugeMetricFamily]:
        yield GaugeMetricFamily(
            "connector_link_table_keys",
            "Keys in this worker's link table (an estimate: links, pending calls, index)",
            value=float(self._estimate()),
        )
