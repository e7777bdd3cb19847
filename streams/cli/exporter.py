"""`connector lag-exporter`: consumer lag as Prometheus metrics, from outside the workers.

The workers export their own group's lag too, but a stopped group exports nothing: this
process keeps watching it (as kafka-lag-exporter does), so "lag growing" and "worker down"
alerts have data when every worker is gone.
"""

from __future__ import annotations

import signal
import threading

import click

from streams.cli.common import fail, resolve_bootstrap, say
from streams.exceptions import ConnectorError
from streams.settings import Settings


@click.command("lag-exporter")
@click.option(
    "--group", "groups", multiple=True, help="Consumer group to watch (repeatable; default: the "
    "worker group, CONNECTOR_APP_ID)."
)  # fmt: skip
@click.option(
    "--topic", "topics", multiple=True, help="Topic to watch (repeatable; default: the topics "
    "a worker consumes)."
)  # fmt: skip
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to serve on.")
@click.option("--port", default=9308, show_default=True, type=int, help="Port (0: any free).")
@click.option(
    "--interval", default=5.0, show_default=True, type=float, help="Seconds between samples."
)
@click.pass_obj
def lag_exporter(
    settings: Settings,
    groups: tuple[str, ...],
    topics: tuple[str, ...],
    host: str,
    port: int,
    interval: float,
) -> None:
    """Serve consumer lag on /metrics (kafka-lag-exporter's metric names) until stopped."""
    from prometheus_client import CollectorRegistry

    from streams.kafka.lag import LagReader
    from streams.kafka.lagmetrics import LagSampler
    from streams.kafka.topics import worker_topics
    from streams.worker.ops import OpsServer, Readiness

    try:
        bootstrap = resolve_bootstrap(settings, start=False)
        watched = list(topics) or worker_topics(settings.topics)
        sampler = LagSampler(
            bootstrap,
            settings.kafka,
            {group: watched for group in groups or (settings.app_id,)},
            interval,
        )
        with LagReader(bootstrap, settings.kafka) as reader:
            sampler.sample(reader)  # a first sample now: a bad topic or broker fails here
    except ConnectorError as exc:
        fail(str(exc))
    registry = CollectorRegistry()
    registry.register(sampler)

    def readiness() -> Readiness:
        return Readiness([] if sampler.last_success else ["no lag sample yet"])

    server = OpsServer(host, port, registry, readiness)
    server.start()
    sampler.start()
    say(f"lag of {', '.join(sampler.groups)} on http://{host}:{server.port}/metrics")
    stopped = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopped.set())
    stopped.wait()
    sampler.stop()
    server.stop()
