"""The worker's Faust app: topics, the planner and sink agents, ordered acks, start and stop."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import sys
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import faust

from adapters.http import Timeouts
from streams.avro.codec import Codecs, default_codecs
from streams.core.breaker import Breakers
from streams.core.retry import RetryPolicy
from streams.exceptions import KafkaClientError, PublishError, RecordDecodeError
from streams.kafka.fetching import BatchingTransport
from streams.kafka.reader import read_tail
from streams.kafka.writer import AsyncProducer
from streams.settings import REBALANCE_TIMEOUT_S, Settings
from streams.tenancy.directory import TenantDirectory
from streams.tenancy.receivers import ReceiverPool
from streams.worker.context import WorkerContext
from streams.worker.executor import Executor
from streams.worker.follower import LinkFollower
from streams.worker.links import LinkStore, entity_key
from streams.worker.metrics import BreakerCollector, LinkTableCollector, Metrics
from streams.worker.ops import Readiness
from streams.worker.ownership import Ownership
from streams.worker.planner import Planner
from streams.worker.publishing import Publisher, Source
from streams.worker.references import CommandFollower, UserStates
from streams.worker.replanner import Replanner
from streams.worker.sink import CommandStream

log = logging.getLogger(__name__)

#: Longest a clean stop waits for the lanes and receiver clients to close.
SHUTDOWN_TIMEOUT = 10.0

#: Longest an assignment waits for the link state to catch up with the links changelog.
CATCH_UP_TIMEOUT = 120.0

#: How often the reader threads (link follower, tenant directory) are checked.
READER_CHECK_INTERVAL = 1.0

#: Inbound changes planned together, their commands' acks awaited once (at most), and
#: the longest a batch waits to fill (a change's added latency when traffic is light).
PLAN_BATCH = 256
PLAN_BATCH_WITHIN = 0.02

#: How often users whose references moved are planned again.
REPLAN_INTERVAL = 0.2

#: The most outcomes read past a pending marker's row to find outcomes it missed.
RECOVER_LIMIT = 200_000

#: How often the rows that a late, older row landed behind are written again.
REPAIR_INTERVAL = 1.0

#: Exit status of a worker that could not write an outcome or dead letter (EX_TEMPFAIL):
#: it stops rather than skip one; its unacknowledged commands come back after a restart.
EXIT_CANNOT_PUBLISH = 75


@functools.lru_cache(maxsize=65536)
def _client_of(codec: Any, key: bytes) -> str:
    """The client of an EntityKey (cached: keys repeat); undecodable keys share one budget."""
    try:
        return str(codec.decode(key)["client_id"])
    except RecordDecodeError:
        return ""


@contextlib.contextmanager
def held(events: Sequence[Any]) -> Iterator[None]:
    """Keep Faust from acknowledging `events` unless the block completes.

    Faust acknowledges a `take_events` batch, and an `events()` event, in a `finally`: when
    the agent is cancelled (a stopping worker) before their commands are written, they would
    be acknowledged anyway and the consumer's last commit would skip them, so those changes
    would never be planned. An extra reference on each message, let go only after the block,
    leaves such events unacknowledged: nothing past them is committed, and they are read
    again after a restart.
    """
    for event in events:
        event.message.incref()
    yield
    for event in events:
        event.message.decref()


class _ParkedIsNotStuck(logging.Filter):
    """Faust reports a stream whose offsets stop moving for minutes as stuck ("report as bug").
    Parked work waits for its tenant's breaker on purpose, for as long as the park budget:
    for the parking topic that report is an INFO line, not an ERROR."""

    MARKERS = ("Stream stopped processing", "Has not committed", "has not started processing")

    def __init__(self, parked_topic: str) -> None:
        super().__init__()
        self.parked_topic = parked_topic

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.WARNING:
            text = record.getMessage()
            if self.parked_topic in text and any(m in text for m in self.MARKERS):
                record.msg, record.args = text.split("\n", 1)[0], None
                record.msg += " (parked work waiting for its tenant's receiver)"
                record.levelno, record.levelname = logging.INFO, "INFO"
        return True


class _App(faust.App):
    """Faust's app, telling the pipeline the moment a rebalance starts, before any revoke."""

    rebalance_listeners: list[Callable[[], None]]

    def on_rebalance_start(self) -> None:
        super().on_rebalance_start()
        for listener in self.rebalance_listeners:
            listener()

    def _new_transport(self) -> Any:
        return BatchingTransport(self.conf.broker_consumer, self)


#: Seconds between the consumer's metadata refreshes (see `worker_app`).
METADATA_MAX_AGE = 10.0


def worker_app(app_id: str, bootstrap: str, settings: Settings, datadir: Path) -> _App:
    """The worker's Faust app (its settings and transport); `bench.floor` consumes with it."""
    tuning = settings.pipeline
    app = _App(
        app_id,
        broker=f"kafka://{bootstrap}",
        store="memory://",
        datadir=str(datadir),
        autodiscover=False,
        web_enabled=False,
        topic_disable_leader=True,
        producer_acks=-1,
        consumer_auto_offset_reset="earliest",
        broker_commit_interval=1.0,
        broker_session_timeout=tuning.session_timeout,
        # Set, not left to Faust's default: CONNECTOR_RECEIVER_TIMEOUT is checked against it.
        broker_rebalance_timeout=REBALANCE_TIMEOUT_S,
        broker_heartbeat_interval=min(3.0, tuning.session_timeout / 3),
        stream_buffer_maxsize=max(1024, tuning.sink_max_in_flight * 4),
        # Faust would wait for every unacked command before giving partitions up (or
        # stopping): a hanging receiver would stall the whole group. Revoked lanes are
        # cancelled instead; their commands come back to the next owner.
        stream_wait_empty=False,
        # After a broker restart the group leader can assign while its metadata still
        # lacks the topics: every worker then holds no partition, and the rebalance that
        # mends it waits for the next metadata refresh (5 minutes by default).
        consumer_metadata_max_age_ms=int(METADATA_MAX_AGE * 1000),
        **settings.kafka.faust_broker_kwargs(),
    )
    app.rebalance_listeners = []
    return app


class Pipeline:
    """One worker: the Faust app and its agents over the planner, executor and link store."""

    def __init__(self, settings: Settings, bootstrap: str, codecs: Codecs | None = None) -> None:
        self.settings = settings
        self.bootstrap = bootstrap
        self.codecs = codecs or default_codecs()
        self.metrics = Metrics()
        tuning = settings.pipeline
        names = settings.topics
        # Faust keeps table files there even with no tables; never the working directory.
        self.app = worker_app(
            settings.app_id, bootstrap, settings, tuning.data_dir / settings.app_id / "faust"
        )

        def raw_topic(name: str) -> Any:
            return self.app.topic(names.name(name), key_serializer="raw", value_serializer="raw")

        self.links = LinkStore(tuning.data_dir / settings.app_id)
        self.follower = LinkFollower(
            self.links, bootstrap, settings.kafka, names.name(names.links_topic)
        )
        self.tenants = TenantDirectory(
            bootstrap,
            settings.kafka,
            names.name(names.tenants_topic),
            codec=self.codecs["TenantConfigured"],
        )
        # The whole call, not only each wait for a byte: a pending marker is looked up once
        # this and the grace have passed, and a revocation waits for a create under way.
        call_timeouts = Timeouts(read=tuning.receiver_timeout, total=tuning.receiver_timeout)
        self.receivers = ReceiverPool(tuning.secrets_dir, call_timeouts)
        # What the worker writes goes through one librdkafka producer, not Faust's: a record
        # not acknowledged within publish_timeout fails, and the Publisher stops the worker.
        self.producer = AsyncProducer.of(
            bootstrap,
            settings.kafka,
            {
                "linger.ms": tuning.producer_linger_ms,
                "message.timeout.ms": int(tuning.publish_timeout * 1000),
            },
        )

        def written_topic(name: str) -> Any:
            return self.producer.topic(names.name(name))

        self.publish = Publisher(
            self.codecs,
            commands=written_topic(names.commands_topic),
            outcomes=written_topic(names.outcomes_topic),
            link_changelog=written_topic(names.links_topic),
            dead_letters=written_topic(names.dlq_topic),
            parked=written_topic(names.parked_topic),
            links=self.links,
            metrics=self.metrics,
            timeout=tuning.publish_timeout,
            outcomes_after=functools.partial(
                read_tail, bootstrap, settings.kafka, names.name(names.outcomes_topic),
                limit=RECOVER_LIMIT,
            ),
        )  # fmt: skip
        context = WorkerContext(
            self.codecs, self.tenants, self.receivers, self.links, self.publish, self.metrics
        )
        self.planner = Planner(context)
        self.states = UserStates(tuning.data_dir / settings.app_id, self.codecs["Command"])
        if self.links.rebuilding:
            self.states.rebuild()
        self.commands_topic = commands_topic = names.name(names.commands_topic)
        self.replanner = Replanner(
            context,
            self.states,
            owns=lambda partition: self.ownership.owns(commands_topic, partition),
            is_open=lambda: self.ownership.is_open,
        )
        self.links.on_reference_change = self.replanner.reference_changed
        self.links.on_state = self.states.keep
        self.command_follower = CommandFollower(
            self.states,
            self.links,
            bootstrap,
            settings.kafka,
            commands_topic,
            self.codecs["Command"],
            on_user=self.replanner.user_outdated,
            group_id=settings.app_id,
        )
        self.executor = Executor(
            context,
            retry=RetryPolicy(
                max_attempts=tuning.retry_max_attempts,
                base_delay=tuning.retry_base_delay,
                max_delay=tuning.retry_max_delay,
                max_elapsed=tuning.retry_max_elapsed,
            ),
            staff_cache_ttl=tuning.staff_cache_ttl,
            settle_window=tuning.receiver_timeout + tuning.reconcile_grace,
            breakers=Breakers(tuning.breaker_failures, tuning.breaker_cooldown),
            park_budget=tuning.park_budget,
        )
        streams = {names.name(names.commands_topic), names.name(names.parked_topic)}
        self.ownership = Ownership(
            self._catch_up,
            self._stop_fatally,
            is_commands=lambda tp: tp.topic in streams,
        )

        def command_stream(run: Callable[[Source], Awaitable[None]]) -> CommandStream:
            return CommandStream(
                run,
                self.ownership,
                self._stop_fatally,
                max_in_flight=tuning.sink_max_in_flight,
                tenant_max_in_flight=tuning.sink_tenant_max_in_flight,
                max_queued=tuning.sink_max_queued,
                tenant_of=self._tenant_of,
            )

        self.sink = command_stream(self.executor.run)
        self.parked = command_stream(self.executor.run_parked)
        self.app.rebalance_listeners = [self.ownership.rebalance_started]
        self.app.on_partitions_revoked.connect(self._on_revoked)
        self.app.on_partitions_assigned.connect(self._on_assigned)
        self.app.timer(READER_CHECK_INTERVAL)(self._check_readers)
        self.app.timer(REPAIR_INTERVAL)(self._repair_rows)
        self.app.task(self._replan_loop)

        for subject, topic, name in (
            ("UserChanged", names.users_topic, "plan-users"),
            ("StaffChanged", names.staff_topic, "plan-staff"),
            ("LeadSourceChanged", names.lead_sources_topic, "plan-lead-sources"),
        ):
            self.app.agent(raw_topic(topic), name=name)(self._planner_agent(subject))
        self.app.agent(raw_topic(names.replay_topic), name="plan-replays")(self._replay_agent)
        self.app.agent(raw_topic(names.commands_topic), name="sink")(self.sink.agent)
        self.app.agent(raw_topic(names.parked_topic), name="parked")(self.parked.agent)
        self.app.on_before_shutdown.connect(self._on_shutdown)
        self.metrics.watch(BreakerCollector(self.executor.breakers.items))
        self.metrics.watch(LinkTableCollector(self.links.estimate_keys))
        logging.getLogger("faust.transport.drivers.aiokafka").addFilter(
            _ParkedIsNotStuck(names.name(names.parked_topic))
        )

    # -- lifecycle ---------------------------------------------------------------------------
    def prepare(self, timeout: float = 120.0) -> None:
        """Load tenants and rebuild links from the links changelog before any agent runs."""
        self.tenants.start()
        self.follower.start()
        self.command_follower.start()
        self.producer.start()
        self.tenants.wait_until_current(timeout)
        self.follower.wait_until_current(timeout)
        self.command_follower.wait_until_current(timeout)
        self.states.rebuilt()  # then the links: a crash in between rebuilds both again
        self.links.rebuilt()

    def _catch_up(self) -> None:
        """Before an assignment runs: links and user states current, then every user of the
        partitions it brings checked against today's links (a change noticed while they
        moved, or before a crash, is planned by this worker now)."""
        self.follower.wait_until_current(CATCH_UP_TIMEOUT)
        self.command_follower.wait_until_current(CATCH_UP_TIMEOUT)
        self.replanner.check_all(self.ownership.partitions(self.commands_topic))

    def readiness(self) -> Readiness:
        """What `/ready` answers: readers alive, an assignment held, link state current."""
        reasons = []
        if not self.tenants.alive():
            reasons.append("the tenant directory stopped reading")
        if not self.follower.alive():
            reasons.append("the link follower stopped reading")
        if not self.command_follower.alive():
            reasons.append("the command follower stopped reading")
        if not self.ownership.is_open:
            reasons.append("no assignment with current link state yet (starting or rebalancing)")
        return Readiness(reasons, {"partitions": self.ownership.owned})

    async def _on_revoked(self, sender: Any, /, *args: Any, signal: Any, **__: Any) -> None:
        """Stop the revoked partitions' work at once and forget their acks; outcomes being
        written get their rows written first, and creating calls under way their outcomes
        (`Publisher.finish`)."""
        gone = self.ownership.revoked(args[0])
        dropped = await self.sink.revoke(gone) + await self.parked.revoke(gone)
        try:
            # Rows of outcomes the cancelled lanes were writing reach the changelog before
            # the partitions go: their next owner reads them before running anything.
            await self.publish.settled()
        except Exception as exc:  # a row not written: stop rather than hand the work on
            self._stop_fatally(exc)
        if gone:
            log.info(
                "revoked %d partitions; %d commands left to the next owner", len(gone), dropped
            )

    async def _on_assigned(self, sender: Any, /, *args: Any, signal: Any, **__: Any) -> None:
        self.ownership.assigned(args[0])

    async def _check_readers(self) -> None:
        """A dead reader thread means stale links or tenants: stop rather than act on them."""
        for name, reader in (
            ("link follower", self.follower),
            ("command follower", self.command_follower),
            ("tenant directory", self.tenants),
        ):
            if not reader.alive():
                self._stop_fatally(KafkaClientError(f"the {name} stopped reading"))

    async def _repair_rows(self) -> None:
        """Write again the stored row of each entity whose last changelog row is older than
        it (see `LinkFollower`), through the producer that writes every row: entities of the
        commands partitions this worker runs now (one worker repairs a late row, not every
        follower that read it), and any left unrepaired past `LinkFollower.ORPHAN_AFTER`."""
        if not self.follower.behind() or not self.ownership.is_open:
            return
        partitions = self.settings.topics.commands_partitions

        def owns(key: str) -> bool:
            commands = self.publish.partition_of(entity_key(key), partitions)
            return self.ownership.owns(self.commands_topic, commands)

        for key, partition in self.follower.due_repairs(owns, time.monotonic()).items():
            value = self.links.row(key)
            if value is None:
                continue
            self.follower.repairing(key)
            log.info("writing link row %s again: an older row landed after it", key)
            try:
                await self.publish.link_row(key, value, partition)
            except PublishError as exc:
                self._stop_fatally(exc)

    async def _replan_loop(self) -> None:
        """Plan due users again, every REPLAN_INTERVAL after the last round (a round after an
        assignment checks every user and may take longer than that)."""
        while not self.app.should_stop:
            try:
                await self.replanner.run_due()
            except PublishError as exc:
                self._stop_fatally(exc)
            await asyncio.sleep(REPLAN_INTERVAL)

    async def _on_shutdown(self, sender: Any, /, *_: Any, signal: Any, **__: Any) -> None:
        """Faust stopped consuming: cancel the lanes, let creating calls under way end and
        record their outcomes (up to the receiver timeout), close every receiver client, then
        flush and stop the producer (within SHUTDOWN_TIMEOUT more)."""
        loop = asyncio.get_running_loop()
        allowed = SHUTDOWN_TIMEOUT + self.settings.pipeline.receiver_timeout
        deadline = loop.time() + allowed
        try:
            async with asyncio.timeout_at(deadline):
                await self.sink.close()
                await self.parked.close()
                try:
                    await self.publish.settled()
                except Exception as exc:  # a row not written: like a crash, nothing acked
                    self._stop_fatally(exc)
                await self.receivers.aclose()
                await self.producer.aclose(max(0.0, deadline - loop.time()))
        except TimeoutError:
            log.warning("lanes, receiver clients and producer not closed within %.0fs", allowed)

    def _stop_fatally(self, exc: BaseException) -> None:
        """An outcome or dead letter cannot be written: end the process now, like a crash.

        Nothing unwritten was acknowledged, so every such command and event is read again
        after a restart; carrying on would mean skipping or losing one.
        """
        log.critical(
            "the worker stops (exit %d): %s: %s; unacknowledged commands come back after a "
            "restart",
            EXIT_CANNOT_PUBLISH, type(exc).__name__, exc,
        )  # fmt: skip
        for handler in logging.getLogger().handlers:
            handler.flush()
        sys.stderr.flush()
        os._exit(EXIT_CANNOT_PUBLISH)

    def close(self) -> None:
        """Stop the reader threads and the producer (if `_on_shutdown` did not), then close
        the link store (after the Faust worker ended)."""
        self.producer.stop(SHUTDOWN_TIMEOUT)
        self.follower.stop()
        self.command_follower.stop()
        self.tenants.stop()
        self.links.close()
        self.states.close()

    # -- agents ------------------------------------------------------------------------------
    def _planner_agent(self, subject: str) -> Callable[[Any], Awaitable[None]]:
        async def agent(stream: Any) -> None:
            # Events are acknowledged once their whole batch's commands are.
            async for events in stream.take_events(PLAN_BATCH, PLAN_BATCH_WITHIN):
                try:
                    with held(events):
                        await self.planner.plan_batch(subject, [e.message for e in events])
                except PublishError as exc:
                    self._stop_fatally(exc)

        agent.__name__ = f"plan_{subject}"
        return agent

    async def _replay_agent(self, stream: Any) -> None:
        """Plans replayed changes and forwards replayed commands (`connector replay`, `dlq`)."""
        async for event in stream.events():
            try:
                with held([event]):
                    await self.planner.replay(event.message)
            except PublishError as exc:
                self._stop_fatally(exc)

    def _tenant_of(self, event: Any) -> str:
        return _client_of(self.codecs["EntityKey"], event.message.key or b"")
