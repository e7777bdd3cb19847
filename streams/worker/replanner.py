"""Plans users again when a staff or lead-source link they reference appears, moves or goes."""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable, Iterable

from adapters.errors import AdapterError
from streams.core.planning import REPLAN_UNCHANGED, replan_user
from streams.exceptions import ConfigurationError
from streams.worker.context import WorkerContext
from streams.worker.references import Reference, UserStates

log = logging.getLogger(__name__)

#: Re-planned commands remembered (the state they came from, their fingerprint) at most.
_SENT_LIMIT = 100_000

#: Distinct reference entries whose answer `check_all` remembers at most.
_ANSWERS_LIMIT = 100_000


class Replanner:
    """Collects users to check (from the reader threads) and plans them on the event loop.

    Every worker follows every link and every user state, so each would notice a change: only
    the owner of the user's commands partition, with its state caught up, sends the re-plan.
    An assignment checks the users of the partitions it brings against today's links, so a
    change noticed while a partition moved, or before a crash, is planned by its next owner.
    """

    def __init__(
        self,
        context: WorkerContext,
        states: UserStates,
        *,
        owns: Callable[[int], bool],
        is_open: Callable[[], bool],
    ) -> None:
        self.ctx = context
        self.states = states
        self._owns = owns
        self._is_open = is_open
        self._due: set[tuple[str, str]] = set()
        self._lock = threading.Lock()
        self._sent: dict[tuple[str, str], tuple[str, str]] = {}

    # -- told from the reader threads --------------------------------------------------------
    def user_outdated(self, client_id: str, intouch_id: str) -> None:
        with self._lock:
            self._due.add((client_id, intouch_id))

    def reference_changed(self, entity: str, client_id: str, intouch_id: str) -> None:
        users = self.states.referencing(entity, client_id, intouch_id)
        with self._lock:
            self._due.update((client_id, user) for user in users)

    def check_all(self, partitions: Iterable[int]) -> int:
        """After an assignment (its states current): the users of the commands `partitions`
        whose latest command carried other receiver IDs for their staff owner or lead source
        than today's links become due; return how many.

        Only users that name one are read (one with none cannot be behind its links), lazily,
        and only the outdated ones are kept: the set is bounded by what must be planned again,
        not by the users a partition holds. A client's users mostly share a few staff owners
        and lead sources: the answer for one entry holds for every equal one (read once).
        """
        linked: dict[tuple[str, str, str], str | None] = {}
        answers: dict[tuple[str, bytes], bool] = {}

        def now(entity: str, client_id: str, referenced: str | None) -> str | None:
            if referenced is None:
                return None
            key = (entity, client_id, referenced)
            if key not in linked:
                links = self.ctx.links
                found = (links.staff if entity == "STAFF" else links.lead_source)(
                    client_id, referenced
                )
                linked[key] = found.receiver_id if found else None
            return linked[key]

        due = 0
        for partition in partitions:
            for client_id, intouch_id, entry in self.states.references_of(partition):
                outdated = answers.get((client_id, entry))
                if outdated is None:
                    ref = Reference.of(entry)
                    today = (
                        now("STAFF", client_id, ref.refs.get("STAFF")),
                        now("LEAD_SOURCE", client_id, ref.refs.get("LEAD_SOURCE")),
                    )
                    if len(answers) >= _ANSWERS_LIMIT:
                        answers.clear()
                    outdated = answers[(client_id, entry)] = today != ref.carried
                if outdated:
                    with self._lock:
                        self._due.add((client_id, intouch_id))
                    due += 1
        return due

    # -- on the event loop -------------------------------------------------------------------
    async def run_due(self) -> int:
        """Plan the due users of owned partitions again; return the commands sent."""
        if not self._is_open():
            return 0  # kept: an assignment is catching up, it decides who owns them
        with self._lock:
            due, self._due = self._due, set()
        sent = 0
        for client_id, intouch_id in sorted(due):
            sent += await self._replan(client_id, intouch_id)
        return sent

    async def _replan(self, client_id: str, intouch_id: str) -> int:
        state = self.states.get(client_id, intouch_id)
        if state is None or not self._owns(state.partition):
            return 0
        latest = state.command
        tenant = self.ctx.tenants.get(client_id)
        if tenant is None:
            return 0
        try:
            caps = self.ctx.receivers.get(tenant).capabilities
        except (ConfigurationError, AdapterError) as exc:
            log.warning("not planning user %s of %s again: %s", intouch_id, client_id, exc)
            return 0
        user = state.user
        owner, source = user.get("staff_owner_id"), user.get("lead_source_id")
        links = self.ctx.links
        plan = replan_user(
            user,
            planned_fingerprint=latest["fingerprint"],
            capabilities=caps,
            clubs=tenant.clubs,
            link=links.user(client_id, intouch_id),
            staff_link=links.staff(client_id, owner) if owner else None,
            lead_source_link=links.lead_source(client_id, source) if source else None,
            now=dt.datetime.now(dt.UTC),
        )
        if not plan.commands:
            unchanged = plan.skipped == REPLAN_UNCHANGED
            self.ctx.metrics.replans.labels("unchanged" if unchanged else "skipped").inc()
            return 0
        key = (client_id, intouch_id)
        for command in plan.commands:
            # Sent already from this very state, which is not followed yet: once sent.
            sent = (latest["command_id"], command["fingerprint"])
            if self._sent.get(key) == sent:
                continue
            if len(self._sent) >= _SENT_LIMIT:
                self._sent.clear()
            self._sent[key] = sent
            # Planned from no inbound record: its cause is the user's latest event (in it).
            await self.ctx.publish.command({**command, "replay_id": None})
            self.ctx.metrics.replans.labels("sent").inc()
            log.info(
                "user %s of client %s planned again: owner %s, lead source %s",
                intouch_id, client_id,
                command["staff_owner_receiver_id"], command["lead_source_receiver_id"],
            )  # fmt: skip
            return 1
        return 0
