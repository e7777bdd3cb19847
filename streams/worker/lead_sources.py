"""Lead-source commands in the sink: the guide's three modes, safe under unknown outcomes."""

from __future__ import annotations

from adapters.base import Capability as Cap
from adapters.base import ReceiverClient, ReceiverLeadSource
from adapters.errors import AdapterError, AlreadyExists
from streams.core.decisions import (
    LeadSourceAction,
    create_after_no_match,
    failed_call_status,
    idempotency_key,
    lead_source_step,
    must_reconcile,
    no_match_message,
)
from streams.core.matching import match_lead_source
from streams.core.model import Pending, Record, Status
from streams.worker.context import WorkerContext
from streams.worker.users import Pace, Settle, Timed


class LeadSourceCommands:
    """Match by name (list+create, list only), create (with a marker first), or rename."""

    def __init__(self, context: WorkerContext, timed: Timed, settle: Settle, pace: Pace) -> None:
        self.ctx = context
        self._timed = timed
        self._settle = settle
        self._pace = pace

    async def sync(self, command: Record, client: ReceiverClient, attempt: int) -> None:
        name = command["lead_source"]["name"]
        link = self.ctx.links.lead_source(command["client_id"], command["intouch_id"])
        if must_reconcile(link) and await self.ctx.publish.recover(command):
            link = self.ctx.links.lead_source(command["client_id"], command["intouch_id"])
        step = lead_source_step(command, link, client.capabilities)
        action = step.action
        if step.skip is not None:
            await self.ctx.publish.outcome(command, Status.SKIPPED, message=step.skip)
            return
        if action is LeadSourceAction.UPDATE:
            assert link is not None and link.receiver_id is not None
            await self._timed(action.value, client.update_lead_source(link.receiver_id, name))
            await self.ctx.publish.outcome(
                command, Status.SUCCEEDED, receiver_id=link.receiver_id, call=action.value,
                attempts=attempt,
            )  # fmt: skip
            return
        if must_reconcile(link):
            assert link is not None and link.pending is not None
            await self._settle(link.pending)  # a create still in flight lands before we look
        if action is LeadSourceAction.LIST:
            found = await self._listed(name, client)
            if found is not None:
                await self._linked(command, found.id, action.value, attempt)
                return
            if not create_after_no_match(client.capabilities):
                await self.ctx.publish.outcome(
                    command, Status.FAILED, call=action.value, attempts=attempt,
                    message=no_match_message(name),
                )  # fmt: skip
                return
        # A list settled an earlier create in doubt; without one, this create repeats it blind
        # (`lead_source_step` allows that only where it is harmless).
        blind = must_reconcile(link) and action is not LeadSourceAction.LIST
        # From its marker to its outcome, a create is not abandoned when the lane is
        # cancelled (revocation, shutdown): cut off, it would still land, unrecorded.
        doubt = link.pending if link is not None else None
        await self._pace()  # before the marker and outside what a cancelled lane finishes
        await self.ctx.publish.finish(self._create(command, client, name, attempt, blind, doubt))

    async def _listed(self, name: str, client: ReceiverClient) -> ReceiverLeadSource | None:
        sources = await self._timed(LeadSourceAction.LIST.value, client.list_lead_sources())
        return match_lead_source(name, sources)

    async def _create(
        self,
        command: Record,
        client: ReceiverClient,
        name: str,
        attempt: int,
        blind: bool,
        doubt: Pending | None,
    ) -> None:
        call = LeadSourceAction.CREATE.value
        key = idempotency_key(command, call, doubt) if client.takes_idempotency_keys else None
        await self.ctx.publish.outcome(command, Status.PENDING_CREATE, call=call)
        try:
            new_id = await self._timed(
                call, client.create_lead_source(name, idempotency_key=key), paced=False
            )
        except AlreadyExists as exc:
            # Names are unique in the receiver: the one that has this name is ours.
            found = (
                await self._listed(name, client)
                if Cap.LEAD_SOURCE_LIST in (client.capabilities)
                else None
            )
            existing = found.id if found is not None else exc.receiver_id
            if existing is None:
                raise
            new_id = existing
        except AdapterError as exc:
            status = failed_call_status(exc, blind=blind)
            if status is not None:
                await self.ctx.publish.outcome(
                    command, status, call=call, attempts=attempt,
                    message=f"{type(exc).__name__}: {exc}",
                )  # fmt: skip
            raise
        await self._linked(command, new_id, call, attempt)

    async def _linked(self, command: Record, receiver_id: str, call: str, attempt: int) -> None:
        await self.ctx.publish.outcome(
            command, Status.LINKED, receiver_id=receiver_id, call=call, attempts=attempt
        )
