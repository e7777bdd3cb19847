"""Consumer lag as Prometheus metrics, named as kafka-lag-exporter names them.

A sampler reads each group's committed offsets and the topics' end offsets every few seconds.
Lag in seconds is estimated the way kafka-lag-exporter does it: from the history of end
offsets it has seen, the time at which the log's end passed the committed offset (linear
between two samples); a committed offset older than the history gives at least its age.

    kafka_consumergroup_group_offset{group,topic,partition}       committed offset
    kafka_consumergroup_group_lag{group,topic,partition}          messages behind
    kafka_consumergroup_group_lag_seconds{group,topic,partition}  seconds behind (estimate)
    kafka_consumergroup_group_max_lag{group}, ..._max_lag_seconds{group}, ..._sum_lag{group}
    kafka_partition_latest_offset{topic,partition}                end offset
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from streams.exceptions import ConnectorError
from streams.kafka.lag import LagReader, PartitionLag
from streams.settings import KafkaSettings

log = logging.getLogger(__name__)

#: End-offset samples kept per partition (at a 15 s interval: an hour of history).
HISTORY = 240


def lag_seconds(committed: int | None, now: float, history: Sequence[tuple[float, int]]) -> float:
    """Seconds since the log's end passed `committed`, from (time, end offset) samples in
    time order; 0 when the group is at the end."""
    if not history:
        return 0.0
    position = committed or 0
    if position >= history[-1][1]:
        return 0.0
    previous: tuple[float, int] | None = None
    for at, end in history:
        if end > position:
            if previous is None:
                return max(0.0, now - at)  # behind all we have seen: at least this long
            before, end_before = previous
            share = (position - end_before) / (end - end_before) if end > end_before else 0.0
            return max(0.0, now - (before + share * (at - before)))
        previous = (at, end)
    return 0.0


@dataclass(frozen=True)
class GroupSample:
    group: str
    rows: list[PartitionLag]
    seconds: dict[tuple[str, int], float]


class LagSampler(Collector):
    """Samples consumer groups' lag in a background thread; a Prometheus collector."""

    def __init__(
        self,
        bootstrap: str,
        kafka: KafkaSettings,
        groups: Mapping[str, Sequence[str]],
        interval: float = 15.0,
    ) -> None:
        self.bootstrap = bootstrap
        self.kafka = kafka
        self.groups = {group: list(topics) for group, topics in groups.items()}
        self.interval = interval
        self._ends: dict[tuple[str, int], deque[tuple[float, int]]] = {}
        self._samples: dict[str, GroupSample] = {}
        self._errors = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.last_success: float | None = None

    def sample(self, reader: LagReader, now: float | None = None) -> None:
        """Read every group's offsets once."""
        now = time.time() if now is None else now
        samples = {}
        for group, topics in self.groups.items():
            rows = reader.group_lag(group, topics)
            with self._lock:
                for row in rows:
                    history = self._ends.setdefault(
                        (row.topic, row.partition), deque(maxlen=HISTORY)
                    )
                    if not history or history[-1][1] != row.end:
                        history.append((now, row.end))
                seconds = {
                    (r.topic, r.partition): lag_seconds(
                        r.committed, now, self._ends[(r.topic, r.partition)]
                    )
                    for r in rows
                }
            samples[group] = GroupSample(group, rows, seconds)
        with self._lock:
            self._samples.update(samples)
            self.last_success = now

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="lag-sampler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _run(self) -> None:
        with LagReader(self.bootstrap, self.kafka) as reader:
            while not self._stop.is_set():
                try:
                    self.sample(reader)
                except ConnectorError as exc:
                    with self._lock:
                        self._errors += 1
                    log.warning("cannot sample consumer lag: %s", exc)
                self._stop.wait(self.interval)

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        with self._lock:
            samples = list(self._samples.values())
            errors = self._errors
        labels = ["group", "topic", "partition"]
        offset = GaugeMetricFamily(
            "kafka_consumergroup_group_offset", "Committed offset of the group", labels=labels
        )
        lag = GaugeMetricFamily(
            "kafka_consumergroup_group_lag", "Messages the group is behind", labels=labels
        )
        seconds = GaugeMetricFamily(
            "kafka_consumergroup_group_lag_seconds",
            "Seconds the group is behind (estimated from the end offsets' history)",
            labels=labels,
        )
        max_lag = GaugeMetricFamily(
            "kafka_consumergroup_group_max_lag", "Largest partition lag", labels=["group"]
        )
        max_seconds = GaugeMetricFamily(
            "kafka_consumergroup_group_max_lag_seconds",
            "Largest partition lag in seconds",
            labels=["group"],
        )
        sum_lag = GaugeMetricFamily(
            "kafka_consumergroup_group_sum_lag", "Lag summed over partitions", labels=["group"]
        )
        latest = GaugeMetricFamily(
            "kafka_partition_latest_offset",
            "End offset of the partition",
            labels=["topic", "partition"],
        )
        seen: set[tuple[str, int]] = set()
        for sample in samples:
            for row in sample.rows:
                where = [sample.group, row.topic, str(row.partition)]
                offset.add_metric(where, float(row.committed or 0))
                lag.add_metric(where, float(row.lag))
                seconds.add_metric(where, sample.seconds.get((row.topic, row.partition), 0.0))
                if (row.topic, row.partition) not in seen:
                    seen.add((row.topic, row.partition))
                    latest.add_metric([row.topic, str(row.partition)], float(row.end))
            lags = [r.lag for r in sample.rows] or [0]
            max_lag.add_metric([sample.group], float(max(lags)))
            sum_lag.add_metric([sample.group], float(sum(lags)))
            max_seconds.add_metric([sample.group], max(sample.seconds.values(), default=0.0))
        failures = CounterMetricFamily(
            "connector_lag_sample_errors", "Lag samples that could not be read"
        )
        failures.add_metric([], float(errors))
        yield from (offset, lag, seconds, max_lag, max_seconds, sum_lag, latest, failures)
