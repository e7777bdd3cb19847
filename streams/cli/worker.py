"""`connector worker`: run the pipeline against KAFKA_BOOTSTRAP_SERVERS or the local broker."""

from __future__ import annotations

import logging
import logging.config
import time
from collections.abc import Callable
from typing import TypeVar

import click

from streams.cli.common import fail, resolve_bootstrap, say
from streams.exceptions import ConnectorError, KafkaClientError, TopicMismatchError
from streams.logs import logging_config
from streams.settings import Settings

T = TypeVar("T")
#: Seconds between tries while Kafka does not answer at start.
STARTUP_RETRY_S = 2.0


def until_kafka_answers(
    call: Callable[[], T], timeout: float, pause: Callable[[float], None] = time.sleep
) -> T:
    """`call()`, tried again while Kafka does not answer, for up to `timeout` seconds: a
    worker started while the broker restarts waits for it (it exited 1 at once)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return call()
        except KafkaClientError as exc:
            if time.monotonic() >= deadline:
                raise
            say(f"waiting for Kafka: {exc}")
            pause(STARTUP_RETRY_S)


def run_worker(settings: Settings, bootstrap: str, loglevel: str = "info") -> None:
    """Ensure topics, rebuild state, then run the Faust worker until it is stopped."""
    import faust

    from streams.kafka.topics import design_topics, ensure_topics
    from streams.worker.app import Pipeline
    from streams.worker.backfill import changelog_missing

    result = until_kafka_answers(
        lambda: ensure_topics(bootstrap, settings.kafka, design_topics(settings.topics)),
        settings.pipeline.startup_timeout,
    )
    if result.mismatched:
        raise TopicMismatchError("; ".join(result.mismatched))
    if changelog_missing(bootstrap, settings.kafka, settings.topics):
        raise ConnectorError(
            f"{settings.topics.name(settings.topics.links_topic)} is empty while outcomes "
            "exist: links would be lost. Run `connector links backfill` once (workers stopped)"
        )
    pipeline = Pipeline(settings, bootstrap)
    tuning = settings.pipeline
    closers: list[Callable[[], None]] = []
    if tuning.metrics_port is not None:
        from streams.worker.ops import OpsServer

        server = OpsServer(
            tuning.metrics_host, tuning.metrics_port, pipeline.metrics.registry, pipeline.readiness
        )
        server.start()
        closers.append(server.stop)
        if tuning.lag_interval > 0:
            from streams.kafka.lagmetrics import LagSampler
            from streams.kafka.topics import worker_topics

            topics = worker_topics(settings.topics)
            sampler = LagSampler(
                bootstrap, settings.kafka, {settings.app_id: topics}, tuning.lag_interval
            )
            pipeline.metrics.watch(sampler)
            sampler.start()
            closers.append(sampler.stop)
        base = f"http://{tuning.metrics_host}:{server.port}"
        say(f"metrics on {base}/metrics, liveness on {base}/health, readiness on {base}/ready")
    say(f"worker {settings.app_id}: loading tenants and links from {bootstrap}")
    pipeline.prepare()
    say(f"worker {settings.app_id}: {len(pipeline.tenants.all())} tenants, starting agents")
    level = loglevel.upper().replace("CRIT", "CRITICAL").replace("WARN", "WARNING")
    worker = faust.Worker(
        pipeline.app,
        loglevel=loglevel,
        quiet=True,
        redirect_stdouts=False,
        logging_config=logging_config(level, settings.log_format),
    )
    # Faust's start-up spinner writes terminal escape codes into log files, and its log
    # handler turns the root logger to DEBUG whatever the level asked for.
    worker.spinner = None
    try:
        worker.execute_from_commandline()
    finally:
        for close in closers:
            close()
        pipeline.close()


#: `--loglevel` names (Faust's) for the standard level names of CONNECTOR_LOG_LEVEL.
LEVELS = {"CRITICAL": "crit", "ERROR": "error", "WARNING": "warn", "INFO": "info", "DEBUG": "debug"}


def level_name(setting: str) -> str:
    """The `--loglevel` of a CONNECTOR_LOG_LEVEL value (`INFO`, `warning`, `warn` ...)."""
    name = setting.strip().upper()
    name = {"WARN": "WARNING", "CRIT": "CRITICAL"}.get(name, name)
    if name not in LEVELS:
        raise click.BadParameter(f"CONNECTOR_LOG_LEVEL={setting!r}: use one of {', '.join(LEVELS)}")
    return LEVELS[name]


@click.command()
@click.option(
    "--loglevel",
    type=click.Choice(list(LEVELS.values())),
    default=None,
    help="Log level (default: CONNECTOR_LOG_LEVEL, INFO).",
)
@click.pass_obj
def worker(settings: Settings, loglevel: str | None) -> None:
    """Run the planner and sink agents (local Kafka is started when no cluster is set)."""
    loglevel = loglevel or level_name(settings.log_level)
    level = loglevel.upper().replace("CRIT", "CRITICAL").replace("WARN", "WARNING")
    logging.config.dictConfig(logging_config(level, settings.log_format))
    try:
        run_worker(settings, resolve_bootstrap(settings, start=True), loglevel)
    except ConnectorError as exc:
        fail(str(exc))
