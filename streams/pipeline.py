"""The Faust app: planner agents turn changes into commands, the sink agent runs them."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import faust

from adapters.base import Capability as Cap
from adapters.base import ClubRef, Person, ReceiverClient, ReceiverStaff
from adapters.errors import AdapterError, RetryableError
from streams.codec import Codecs, default_codecs
from streams.exceptions import (
    ConfigurationError,
    ConnectorError,
    DecodeError,
    RetriesExhaustedError,
    UnknownTenantError,
)
from streams.links import LinkStore, OutcomeFollower
from streams.metrics import Metrics
from streams.planning import (
    LeadSourceMode,
    Plan,
    PlanningError,
    UserCall,
    creates,
    decide_user_call,
    lead_source_mode,
    match_lead_source,
    match_staff,
    normalize_email,
    person_from_command,
    plan_lead_source_change,
    plan_staff_change,
    plan_user_change,
    target_type,
)
from streams.receivers import ReceiverPool
from streams.settings import Settings
from streams.sink import KeyedLanes, OrderedAcks, backoff_delay
from streams.tenant import Tenant
from streams.tenant_directory import TenantDirectory

log = logging.getLogger(__name__)

Record = dict[str, Any]


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class Source:
    """Where a record came from, for dead letters."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes | None]]


def source_of(message: Any) -> Source:
    raw = message.headers or []
    items = raw.items() if isinstance(raw, Mapping) else raw
    headers = [(str(k), None if v is None else bytes(v)) for k, v in items]
    return Source(
        message.topic, message.partition, message.offset, message.key, message.value, headers
    )


class StaffCache:
    """Receiver staff lists per client, kept a short, configurable time."""

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._entries: dict[str, tuple[float, list[ReceiverStaff]]] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def get(
        self, client_id: str, load: Callable[[], Awaitable[list[ReceiverStaff]]]
    ) -> list[ReceiverStaff]:
        lock = self._locks.setdefault(client_id, asyncio.Lock())
        async with lock:
            entry = self._entries.get(client_id)
            if entry and time.monotonic() - entry[0] < self.ttl:
                return entry[1]
            staff = await load()
            self._entries[client_id] = (time.monotonic(), staff)
            return staff


class SentFingerprints:
    """Fingerprint of the last command planned per entity, bounded (least recently used out).

    An entity missing here (after a restart, or evicted) is planned anyway, and the sink
    drops the command if the receiver already has exactly that.
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._entries: OrderedDict[tuple[str, str, str], str] = OrderedDict()

    def get(self, key: tuple[str, str, str]) -> str | None:
        value = self._entries.get(key)
        if value is not None:
            self._entries.move_to_end(key)
        return value

    def put(self, key: tuple[str, str, str], fingerprint: str) -> None:
        self._entries[key] = fingerprint
        self._entries.move_to_end(key)
        while len(self._entries) > self.capacity:
            self._entries.popitem(last=False)


class Pipeline:
    """One worker: the Faust app, its agents, the link store and the tenant directory."""

    def __init__(self, settings: Settings, bootstrap: str, codecs: Codecs | None = None) -> None:
        self.settings = settings
        self.bootstrap = bootstrap
        self.codecs = codecs or default_codecs()
        self.metrics = Metrics()
        tuning = settings.pipeline
        names = settings.topics
        self.app = faust.App(
            settings.app_id,
            broker=f"kafka://{bootstrap}",
            store="memory://",
            # Faust keeps table files there even with no tables; never the working directory.
            datadir=str(tuning.data_dir / settings.app_id / "faust"),
            autodiscover=False,
            web_enabled=False,
            topic_disable_leader=True,
            producer_acks=-1,
            consumer_auto_offset_reset="earliest",
            broker_commit_interval=1.0,
            broker_session_timeout=tuning.session_timeout,
            broker_heartbeat_interval=min(3.0, tuning.session_timeout / 3),
            stream_buffer_maxsize=max(1024, tuning.sink_max_in_flight * 4),
            **settings.kafka.faust_broker_kwargs(),
        )

        def raw_topic(name: str) -> Any:
            return self.app.topic(names.name(name), key_serializer="raw", value_serializer="raw")

        self.users_topic = raw_topic(names.users_topic)
        self.staff_topic = raw_topic(names.staff_topic)
        self.lead_sources_topic = raw_topic(names.lead_sources_topic)
        self.commands_topic = raw_topic(names.commands_topic)
        self.outcomes_topic = raw_topic(names.outcomes_topic)
        self.dlq_topic = raw_topic(names.dlq_topic)

        self.links = LinkStore(tuning.data_dir / settings.app_id)
        self.follower = OutcomeFollower(
            self.links,
            bootstrap,
            settings.kafka,
            names.name(names.outcomes_topic),
            self.codecs["Outcome"],
        )
        self.tenants = TenantDirectory(
            bootstrap,
            settings.kafka,
            names.name(names.tenants_topic),
            codec=self.codecs["TenantConfigured"],
        )
        self.receivers = ReceiverPool(tuning.secrets_dir)
        self.staff_cache = StaffCache(tuning.staff_cache_ttl)
        self.planned: SentFingerprints = SentFingerprints(tuning.planned_cache_size)
        self.acks: OrderedAcks[Any, Any] = OrderedAcks()
        self.lanes: KeyedLanes[Any] = KeyedLanes(
            tuning.sink_max_in_flight, self._run_command, self._release
        )
        self._sink_stream: Any = None

        self.app.agent(self.users_topic, name="plan-users")(self._planner("UserChanged"))
        self.app.agent(self.staff_topic, name="plan-staff")(self._planner("StaffChanged"))
        self.app.agent(self.lead_sources_topic, name="plan-lead-sources")(
            self._planner("LeadSourceChanged")
        )
        self.app.agent(self.commands_topic, name="sink")(self._sink)

    # -- lifecycle ---------------------------------------------------------------------------
    def prepare(self, timeout: float = 120.0) -> None:
        """Load tenants and rebuild links from the outcomes log before any agent runs."""
        self.tenants.start()
        self.follower.start()
        self.tenants.wait_until_current(timeout)
        self.follower.wait_until_current(timeout)

    def close(self) -> None:
        self.follower.stop()
        self.tenants.stop()
        self.links.close()

    # -- planner -----------------------------------------------------------------------------
    def _planner(self, subject: str) -> Callable[[Any], Awaitable[None]]:
        async def agent(stream: Any) -> None:
            async for event in stream.events():
                await self.plan(subject, event.message)

        agent.__name__ = f"plan_{subject}"
        return agent

    async def plan(self, subject: str, message: Any) -> None:
        """Decode, find the tenant, plan, send commands; anything wrong goes to the DLQ."""
        source = source_of(message)
        self.metrics.events.labels(source.topic).inc()
        try:
            event = self.codecs[subject].decode(source.value)
        except DecodeError as exc:
            await self.dead_letter(source, "decode", exc, attempts=1)
            return
        try:
            tenant = self._tenant(event["client_id"])
            client = self.receivers.get(tenant)
            plan = self._plan(subject, event, tenant, client.capabilities)
        except (PlanningError, ConfigurationError, UnknownTenantError, AdapterError) as exc:
            await self.dead_letter(source, "planner", exc, attempts=1, client=event["client_id"])
            return
        except Exception as exc:
            # A bug must not stop the agent (Faust would ack the event anyway): keep the record.
            log.exception("planning failed unexpectedly")
            await self.dead_letter(source, "planner", exc, attempts=1, client=event["client_id"])
            return
        for command in plan.commands:
            self.metrics.commands.labels(command["kind"]).inc()
            await self._send(self.commands_topic, self._key_of(command), "Command", command)
            self.planned.put(
                (command["client_id"], self._entity_of(command), command["intouch_id"]),
                command["fingerprint"],
            )
        if plan.skipped:
            self.metrics.skipped.labels(plan.skipped.split(":")[0]).inc()

    def _plan(
        self, subject: str, event: Mapping[str, Any], tenant: Tenant, caps: frozenset[Cap]
    ) -> Plan:
        now = utcnow()
        client_id, intouch_id = event["client_id"], event["intouch_id"]
        if subject == "LeadSourceChanged":
            entity = "LEAD_SOURCE"
        elif subject == "StaffChanged" or event.get("user_type") == "STAFF":
            entity = "STAFF"
        else:
            entity = "USER"
        last_sent = self.planned.get((client_id, entity, intouch_id))
        if entity == "LEAD_SOURCE":
            link = self.links.lead_source(client_id, intouch_id)
            return plan_lead_source_change(
                event, capabilities=caps, link=link, last_sent=last_sent, now=now
            )
        if entity == "STAFF":
            link = self.links.staff(client_id, intouch_id)
            return plan_staff_change(
                event, capabilities=caps, link=link, last_sent=last_sent, now=now
            )
        owner = event.get("staff_owner_id")
        source = event.get("lead_source_id")
        return plan_user_change(
            event,
            capabilities=caps,
            clubs=tenant.clubs,
            link=self.links.user(client_id, intouch_id),
            staff_link=self.links.staff(client_id, owner) if owner else None,
            lead_source_link=self.links.lead_source(client_id, source) if source else None,
            last_sent=last_sent,
            now=now,
        )

    def _tenant(self, client_id: str) -> Tenant:
        tenant = self.tenants.get(client_id)
        if tenant is None:
            raise UnknownTenantError(f"client {client_id!r} is not turned up")
        return tenant

    @staticmethod
    def _entity_of(record: Mapping[str, Any]) -> str:
        kind = record.get("kind")
        if kind == "LINK_STAFF":
            return "STAFF"
        if kind == "SYNC_LEAD_SOURCE":
            return "LEAD_SOURCE"
        return str(record.get("entity", "USER"))

    def _key_of(self, record: Mapping[str, Any]) -> bytes:
        entity = self._entity_of(record)
        key = {
            "client_id": record["client_id"],
            "entity": entity,
            "intouch_id": record["intouch_id"],
        }
        return self.codecs["EntityKey"].encode(key)

    async def _send(self, topic: Any, key: bytes | None, subject: str, value: Record) -> Any:
        pending = await topic.send(key=key, value=self.codecs[subject].encode(value))
        return await pending

    # -- sink --------------------------------------------------------------------------------
    async def _sink(self, stream: Any) -> None:
        manual = stream.noack()
        self._sink_stream = manual
        async for event in manual.events():
            message = event.message
            self.acks.track(message.tp, message.offset, event)
            await self.lanes.submit(message.key or b"", event)

    async def _release(self, event: Any) -> None:
        message = event.message
        for done in self.acks.complete(message.tp, message.offset):
            await self._sink_stream.ack(done)

    async def _run_command(self, event: Any) -> None:
        source = source_of(event.message)
        try:
            command = self.codecs["Command"].decode(source.value)
        except DecodeError as exc:
            await self.dead_letter(source, "decode", exc, attempts=1)
            return
        await self.execute(command, source)

    async def execute(self, command: Record, source: Source) -> None:
        """Run one command with retries; permanent or exhausted failures are dead-lettered."""
        tuning = self.settings.pipeline
        started = time.monotonic()
        attempt = 0
        while True:
            attempt += 1
            try:
                tenant = self._tenant(command["client_id"])
                client = self.receivers.get(tenant)
                await self._execute_once(command, tenant, client, attempt)
                return
            except RetryableError as exc:
                elapsed = time.monotonic() - started
                delay = backoff_delay(
                    attempt,
                    base=tuning.retry_base_delay,
                    cap=tuning.retry_max_delay,
                    retry_after=exc.retry_after,
                )
                if (
                    attempt >= tuning.retry_max_attempts
                    or elapsed + delay > tuning.retry_max_elapsed
                ):
                    final = RetriesExhaustedError(
                        f"gave up after {attempt} attempts in {elapsed:.1f}s: "
                        f"{type(exc).__name__}: {exc}"
                    )
                    await self._fail(command, source, final, attempt)
                    return
                self.metrics.retries.labels(type(exc).__name__).inc()
                await asyncio.sleep(delay)
            except (AdapterError, ConnectorError, PlanningError) as exc:
                await self._fail(command, source, exc, attempt)
                return
            except Exception as exc:
                # A bug must not wedge the lane; if even the DLQ write fails, the command stays
                # unacked and comes back after a restart.
                log.exception("command %s failed unexpectedly", command["command_id"])
                await self._fail(command, source, exc, attempt)
                return

    async def _fail(self, command: Record, source: Source, exc: Exception, attempts: int) -> None:
        await self.outcome(
            command, "FAILED", message=f"{type(exc).__name__}: {exc}", attempts=attempts
        )
        await self.dead_letter(source, "sink", exc, attempts=attempts, client=command["client_id"])

    async def _execute_once(
        self, command: Record, tenant: Tenant, client: ReceiverClient, attempt: int
    ) -> None:
        kind = command["kind"]
        if kind == "LINK_STAFF":
            await self._link_staff(command, client, attempt)
        elif kind == "SYNC_LEAD_SOURCE":
            await self._sync_lead_source(command, client, attempt)
        else:
            await self._upsert_user(command, tenant, client, attempt)

    async def _timed(self, call: str, work: Awaitable[Any]) -> Any:
        started = time.monotonic()
        result = "error"
        try:
            value = await work
            result = "ok"
            return value
        finally:
            self.metrics.calls.labels(call, result).observe(time.monotonic() - started)

    async def _upsert_user(
        self, command: Record, tenant: Tenant, client: ReceiverClient, attempt: int
    ) -> None:
        client_id, intouch_id = command["client_id"], command["intouch_id"]
        link = self.links.user(client_id, intouch_id)
        if link is not None and command["version"] <= link.version:
            await self.outcome(command, "SKIPPED", message="stale or already applied")
            return
        if link is not None and link.receiver_id and link.fingerprint == command["fingerprint"]:
            # The fingerprint covers type, club, owner and lead source: nothing would change.
            await self.outcome(command, "SKIPPED", message="the receiver has this already")
            return
        club = tenant.club_ref(command["club_id"])
        if club is None:
            raise PlanningError(
                f"club {command['club_id']!r} of client {client_id!r} is not turned up"
            )
        person = person_from_command(command)
        receiver_id = link.receiver_id if link else None
        linked_type = link.user_type if link else None
        uncertain = receiver_id is None and link is not None and link.pending_create
        # A create may have happened before a crash or timeout: look before creating again.
        if uncertain and client.supports(Cap.PERSON_LOOKUP):
            receiver_id = await self._timed(
                "find_person", client.find_person(person.email, intouch_id)
            )
            linked_type = target_type(command["user"]) if receiver_id else None
        target = target_type(command["user"])
        call, rid = decide_user_call(target, receiver_id, linked_type, client.capabilities)
        if creates(call, rid):
            await self.outcome(command, "PENDING_CREATE", user_type=target, call=call.value)
        new_id = await self._timed(call.value, self._user_call(client, call, club, person, rid))
        await self.outcome(
            command, "LINKED", receiver_id=new_id, user_type=target, call=call.value,
            attempts=attempt,
        )  # fmt: skip

    @staticmethod
    async def _user_call(
        client: ReceiverClient, call: UserCall, club: ClubRef, person: Person, rid: str | None
    ) -> str:
        if call is UserCall.SAVE_PROSPECT:
            return await client.save_prospect(club, person, rid)
        if call is UserCall.SAVE_MEMBER:
            return await client.save_member(club, person, rid)
        if call is UserCall.CREATE_PROSPECT:
            return await client.create_prospect(club, person)
        if call is UserCall.CREATE_MEMBER:
            return await client.create_member(club, person)
        assert rid is not None, call
        if call is UserCall.UPDATE_PROSPECT:
            await client.update_prospect(club, rid, person)
        elif call is UserCall.UPDATE_MEMBER:
            await client.update_member(club, rid, person)
        else:
            return await client.convert_prospect(club, rid, person)
        return rid

    async def _link_staff(self, command: Record, client: ReceiverClient, attempt: int) -> None:
        staff = command["staff"]
        link = self.links.staff(command["client_id"], command["intouch_id"])
        if link is not None and command["version"] <= link.version:
            await self.outcome(command, "SKIPPED", message="stale or already applied")
            return
        email = normalize_email(staff.get("email"))
        match: ReceiverStaff | None = None
        call = "none"
        if email and client.supports(Cap.STAFF_BY_EMAIL):
            call = "find_staff_by_email"
            found = await self._timed(call, client.find_staff_by_email(email))
            match = match_staff(email, [found] if found else [])
        elif email and client.supports(Cap.STAFF_LIST):
            call = "list_staff"

            async def load() -> list[ReceiverStaff]:
                result: list[ReceiverStaff] = await self._timed(call, client.list_staff(None))
                return result

            match = match_staff(email, await self.staff_cache.get(command["client_id"], load))
        if match is None:
            reason = "no receiver staff with this email" if email else "staff has no email"
            await self.outcome(command, "UNLINKED", call=call, message=reason, attempts=attempt)
            return
        await self.outcome(command, "LINKED", receiver_id=match.id, call=call, attempts=attempt)

    async def _sync_lead_source(
        self, command: Record, client: ReceiverClient, attempt: int
    ) -> None:
        name = command["lead_source"]["name"]
        link = self.links.lead_source(command["client_id"], command["intouch_id"])
        if link is not None and command["version"] <= link.version:
            await self.outcome(command, "SKIPPED", message="stale or already applied")
            return
        if link is not None and link.receiver_id is not None:
            if link.fingerprint == command["fingerprint"]:
                await self.outcome(command, "SKIPPED", message="name unchanged")
            elif client.supports(Cap.LEAD_SOURCE_UPDATE):
                await self._timed(
                    "update_lead_source", client.update_lead_source(link.receiver_id, name)
                )
                await self.outcome(
                    command, "SUCCEEDED", receiver_id=link.receiver_id,
                    call="update_lead_source", attempts=attempt,
                )  # fmt: skip
            else:
                await self.outcome(command, "SKIPPED", message="no lead source update call")
            return
        mode = lead_source_mode(client.capabilities)
        if mode in (LeadSourceMode.LIST_AND_CREATE, LeadSourceMode.LIST_ONLY):
            sources = await self._timed("list_lead_sources", client.list_lead_sources())
            found = match_lead_source(name, sources)
            if found is not None:
                await self.outcome(
                    command, "LINKED", receiver_id=found.id, call="list_lead_sources",
                    attempts=attempt,
                )  # fmt: skip
                return
            if mode is LeadSourceMode.LIST_ONLY:
                await self.outcome(
                    command, "FAILED", call="list_lead_sources", attempts=attempt,
                    message=f"no lead source {name!r} in the receiver, which cannot create one",
                )  # fmt: skip
                return
        if mode is None:
            await self.outcome(command, "SKIPPED", message="the receiver has no lead source calls")
            return
        new_id = await self._timed("create_lead_source", client.create_lead_source(name))
        await self.outcome(
            command, "LINKED", receiver_id=new_id, call="create_lead_source", attempts=attempt
        )

    # -- outcomes and dead letters -------------------------------------------------------------
    async def outcome(
        self,
        command: Record,
        status: str,
        *,
        receiver_id: str | None = None,
        call: str | None = None,
        user_type: str | None = None,
        message: str | None = None,
        attempts: int = 1,
    ) -> None:
        """Publish an outcome, wait for the broker, and apply it to the link table at once."""
        entity = self._entity_of(command)
        record = {
            "outcome_id": str(uuid.uuid4()),
            "command_id": command["command_id"],
            "client_id": command["client_id"],
            "club_id": command.get("club_id"),
            "entity": entity,
            "intouch_id": command["intouch_id"],
            "version": command["version"],
            "status": status,
            "receiver_id": receiver_id,
            "call": call,
            "user_type": user_type,
            "fingerprint": command["fingerprint"],
            "message": message,
            "attempts": attempts,
            "occurred_at": utcnow(),
        }
        key = self._key_of(record)
        metadata = await self._send(self.outcomes_topic, key, "Outcome", record)
        self.links.apply(record, (metadata.partition, metadata.offset))
        self.metrics.outcomes.labels(entity, status).inc()

    async def dead_letter(
        self,
        source: Source,
        stage: str,
        exc: BaseException,
        *,
        attempts: int,
        client: str | None = None,
    ) -> None:
        """Keep the original record with the reason; the pipeline goes on."""
        error = type(exc).__name__
        log.warning(
            "dead letter from %s[%d]@%d (%s): %s: %s",
            source.topic, source.partition, source.offset, stage, error, exc,
        )  # fmt: skip
        record = {
            "dead_letter_id": str(uuid.uuid4()),
            "failed_at": utcnow(),
            "stage": stage,
            "source_topic": source.topic,
            "source_partition": source.partition,
            "source_offset": source.offset,
            "key": source.key,
            "value": source.value,
            "headers": [{"key": k, "value": v} for k, v in source.headers],
            "error_class": error,
            "error_message": str(exc),
            "attempts": attempts,
            "client_id": client,
        }
        await self._send(self.dlq_topic, source.key, "DeadLetter", record)
        self.metrics.dead_letters.labels(stage, error).inc()
