"""The planner: decode an inbound change, gather its tenant and links, plan, send commands."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from typing import Any

from adapters.errors import AdapterError
from streams.core.model import Entity, Record, Status
from streams.core.planning import (
    Plan,
    entity_of_event,
    plan_lead_source_change,
    plan_staff_change,
    plan_user_change,
    skipped_change,
)
from streams.core.replay import (
    COMMAND_SUBJECT,
    INBOUND_SUBJECTS,
    REPLAY_SUBJECT,
    Position,
    ReplayMark,
    command_headers,
    replay_mark,
)
from streams.core.validation import event_problems
from streams.exceptions import (
    ConfigurationError,
    InvalidEventError,
    PlanningError,
    RecordDecodeError,
)
from streams.worker.context import WorkerContext
from streams.worker.publishing import Headers, Source, source_of

log = logging.getLogger(__name__)


class Planner:
    """Turns inbound changes into commands; anything wrong with one goes to the DLQ."""

    def __init__(
        self,
        context: WorkerContext,
    ) -> None:
        self.ctx = context

    async def replay(self, message: Any) -> None:
        """A record of the replay topic: an inbound change is planned like a live one, marked
        with its replay; a dead-lettered command goes back to the commands topic."""
        source = source_of(message)
        mark = replay_mark(source.headers)
        if mark is not None and mark.subject in INBOUND_SUBJECTS:
            await self.plan(mark.subject, message, mark)
        elif mark is not None and mark.subject == COMMAND_SUBJECT:
            await self._forward(source, mark)
        else:
            unknown = RecordDecodeError(
                f"a replayed record must name its subject ({', '.join(INBOUND_SUBJECTS)} "
                f"or {COMMAND_SUBJECT}) in its {REPLAY_SUBJECT} header"
            )
            await self.ctx.publish.dead_letter(source, "decode", unknown, attempts=1)

    async def _forward(self, source: Source, mark: ReplayMark) -> None:
        """Send a replayed command on to the sink, marked; its headers (where it was planned
        from, the replay, the earlier tries) go with it, so another failure keeps them."""
        try:
            command = self.ctx.codecs["Command"].decode(source.value)
        except RecordDecodeError as exc:
            await self.ctx.publish.dead_letter(source, "decode", exc, attempts=1)
            return
        command["replay_id"] = mark.replay_id
        await self.ctx.publish.command(command, source.headers)

    async def plan_batch(self, subject: str, messages: Sequence[Any]) -> None:
        """Plan changes one after the other, then send all their commands with one wait for
        the broker's acks (none of these plans reads what another one sends)."""
        outbox: list[tuple[Record, Headers]] = []
        for message in messages:
            await self.plan(subject, message, outbox=outbox)
        if outbox:
            await self.ctx.publish.commands(outbox)

    async def plan(
        self,
        subject: str,
        message: Any,
        mark: ReplayMark | None = None,
        *,
        outbox: list[tuple[Record, Headers]] | None = None,
    ) -> None:
        """Decode, find the tenant, plan, send commands (or add them to `outbox`, sent by the
        caller); anything wrong goes to the DLQ."""
        source = source_of(message)
        self.ctx.metrics.events.labels(source.topic).inc()
        try:
            event = self.ctx.codecs[subject].decode(source.value)
        except RecordDecodeError as exc:
            await self.ctx.publish.dead_letter(source, "decode", exc, attempts=1)
            return
        client_id = event["client_id"]
        try:
            plan = self._plan(subject, event)
        except (PlanningError, ConfigurationError, AdapterError) as exc:
            await self.ctx.publish.dead_letter(source, "planner", exc, attempts=1, client=client_id)
            return
        except Exception as exc:
            # A bug must not stop the agent (Faust would ack the event anyway): keep the record.
            log.exception("planning failed unexpectedly")
            await self.ctx.publish.dead_letter(source, "planner", exc, attempts=1, client=client_id)
            return
        replay_id = None if mark is None else mark.replay_id
        headers = command_headers(
            Position(source.topic, source.partition, source.offset), source.headers
        )
        for command in plan.commands:
            if outbox is None:
                await self.ctx.publish.command({**command, "replay_id": replay_id}, headers)
            else:
                outbox.append(({**command, "replay_id": replay_id}, headers))
        if plan.skipped:
            # Every change gets an outcome, a skipped one too (with the reason).
            entity = entity_of_event(subject, event)
            change = {**skipped_change(event, entity), "replay_id": replay_id}
            await self.ctx.publish.outcome(change, Status.SKIPPED, message=plan.skipped)
            self.ctx.metrics.skipped.labels(str(plan.skip or "other")).inc()

    def _plan(self, subject: str, event: Record) -> Plan:
        """Gather what the decision needs (tenant, capabilities, links), then decide."""
        now = dt.datetime.now(dt.UTC)
        problems = event_problems(subject, event, now.date())
        if problems:
            raise InvalidEventError("; ".join(problems))
        tenant = self.ctx.tenants.require(event["client_id"])
        caps = self.ctx.receivers.get(tenant).capabilities
        client_id, intouch_id = event["client_id"], event["intouch_id"]
        entity = entity_of_event(subject, event)
        if entity is Entity.LEAD_SOURCE:
            link = self.ctx.links.lead_source(client_id, intouch_id)
            return plan_lead_source_change(event, capabilities=caps, link=link, now=now)
        if entity is Entity.STAFF:
            link = self.ctx.links.staff(client_id, intouch_id)
            return plan_staff_change(event, capabilities=caps, link=link, now=now)
        owner = event.get("staff_owner_id")
        source = event.get("lead_source_id")
        return plan_user_change(
            event,
            capabilities=caps,
            clubs=tenant.clubs,
            link=self.ctx.links.user(client_id, intouch_id),
            staff_link=self.ctx.links.staff(client_id, owner) if owner else None,
            lead_source_link=self.ctx.links.lead_source(client_id, source) if source else None,
            now=now,
        )
