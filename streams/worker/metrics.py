"""Prometheus counters of one worker: events, commands, skips, outcomes, dead letters, calls."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram


class Metrics:
    """Counters for each outcome; one registry per pipeline so tests can read them."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.events = Counter(
            "connector_events", "Inbound events planned", ["topic"], registry=self.registry
        )
        self.commands = Counter(
            "connector_commands", "Commands issued", ["kind"], registry=self.registry
        )
        self.skipped = Counter(
            "connector_planner_skipped", "Changes that became no command", ["reason"],
            registry=self.registry,
        )  # fmt: skip
        self.outcomes = Counter(
            "connector_outcomes", "Sink outcomes", ["entity", "status"], registry=self.registry
        )
        self.dead_letters = Counter(
            "connector_dead_letters", "Records sent to the DLQ", ["stage", "error"],
            registry=self.registry,
        )  # fmt: skip
        self.calls = Histogram(
            "connector_receiver_call_seconds", "Receiver call latency", ["call", "result"],
            registry=self.registry,
        )  # fmt: skip
        self.retries = Counter(
            "connector_retries", "Retried receiver calls", ["error"], registry=self.registry
        )
