"""Link tables (InTouch ID ↔ receiver ID) in RocksDB, materialized from the links changelog."""

from __future__ import annotations

import heapq
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from enum import Enum
from pathlib import Path
from typing import Any

from rocksdict import Rdict, WriteOptions

from streams.core.decisions import SkipReason
from streams.core.model import (
    FINAL_STATUSES,
    SETTLING_STATUSES,
    EntityLink,
    Pending,
    Status,
    UserLink,
)
from streams.worker.rocks import Writes, compacting, store_options, without_wal
from streams.worker.rows import FORMAT, dump_row, load_row

log = logging.getLogger(__name__)

_PREFIX = {"USER": "u", "STAFF": "s", "LEAD_SOURCE": "l"}


#: Where the follower stopped on the links changelog.
_OFFSETS = "__link_offsets"
#: Set once a store caught up with the changelog (see `LinkStore.rebuilt`), to the format
#: (`rows.FORMAT`) it was rebuilt in: a store of another (format 1 marked b"1") is rebuilt,
#: and the user states with it.
_REBUILT = "__rebuilt"


def _key(entity: str, client_id: str, intouch_id: str) -> str:
    return f"{_PREFIX[entity]}/{client_id}/{intouch_id}"


def entity_key(key: str) -> dict[str, str]:
    """The EntityKey (client, entity, InTouch ID) of a row's store key: its commands and
    outcomes are keyed by it."""
    entity = next(name for name, prefix in _PREFIX.items() if key.startswith(f"{prefix}/"))
    client_id, intouch_id = key[2:].split("/", 1)
    return {"client_id": client_id, "entity": entity, "intouch_id": intouch_id}


def _owner_key(client_id: str, receiver_id: str) -> str:
    """The reverse index of user links: a receiver person record -> its InTouch user."""
    return f"r/{client_id}/{receiver_id}"


def _marker(row: Mapping[str, Any]) -> Any:
    """A row's pending marker as stored (None: no call in doubt)."""
    return row.get("pending") or row.get("pending_create")


def _pending(row: Mapping[str, Any], noticed: float) -> Pending | None:
    found = row.get("pending")
    if found is not None:
        return Pending(
            call=found["call"], at=found["at"], command_id=found.get("command"), noticed=noticed
        )
    if row.get("pending_create"):
        # A marker written before calls were recorded.
        return Pending(call="create", at=0.0, noticed=noticed)
    return None


def _epoch(when: Any) -> float:
    return float(when.timestamp()) if hasattr(when, "timestamp") else float(when)


#: The store keys of rows (users, staff, lead sources); the rest are indexes and offsets.
_ROW_PREFIXES = frozenset(f"{prefix}/" for prefix in _PREFIX.values())


def fold(
    row: Mapping[str, Any],
    outcome: Mapping[str, Any],
    position: tuple[int, int],
    state: Mapping[str, Any] | None = None,
) -> dict[str, Any] | None:
    """The row after folding in the outcome at (outcomes partition, offset); None when the
    row holds that outcome or a later one already. The row keeps that `position`, and of a
    user, the latest `state` (the command run, see `references.state_of`) it was given."""
    if tuple(row.get("position", (-1, -1))) >= position:
        return None
    new = dict(row)
    new["position"] = list(position)
    if state is not None and _latest(state) > _latest(row.get("state")):
        new["state"] = dict(state)
    status = outcome["status"]
    parked = new.get("parked", [])
    if status == Status.PARKED and outcome["command_id"] not in parked:
        new["parked"] = [*parked, outcome["command_id"]]
        new["parked_version"] = max(new.get("parked_version", -1), outcome["version"])
    elif status in FINAL_STATUSES and outcome["command_id"] in parked:
        new["parked"] = [c for c in parked if c != outcome["command_id"]]
    if status == Status.PENDING_CREATE:
        call, earlier = outcome.get("call") or "create", new.get("pending") or {}
        # A repeat of a call still in doubt keeps the first command's (see `Pending`).
        first = earlier.get("command") if earlier.get("call") == call else None
        new["pending"] = {
            "call": call,
            "at": _epoch(outcome["occurred_at"]),
            "command": first or outcome["command_id"],
        }
    elif status in SETTLING_STATUSES:
        new.update(
            receiver_id=outcome["receiver_id"] if status != Status.UNLINKED else None,
            version=outcome["version"],
            fingerprint=outcome.get("fingerprint"),
        )
        new.pop("pending", None)
        new.pop("pending_create", None)
        if outcome.get("user_type"):
            new["user_type"] = outcome["user_type"]
    elif status == Status.NOT_APPLIED:
        # The call after the marker made nothing: no record can be in doubt any more (a
        # creating call is made only once an earlier doubt is settled or harmless).
        new.pop("pending", None)
        new.pop("pending_create", None)
    elif (
        status == Status.SKIPPED
        and outcome.get("message") == SkipReason.UNCHANGED
        and new.get("fingerprint") == outcome.get("fingerprint")
        and outcome["version"] > new.get("version", -1)
    ):
        # The receiver holds this version already: it is the applied one from now on, so
        # an older version planned again later (a re-plan from a snapshot that had not seen
        # this one) is stale instead of overwriting it.
        new["version"] = outcome["version"]
    return new


class Taken(Enum):
    """What a changelog row was to the stored row of its key (true only when stored)."""

    #: Newer than the stored row (or none stored): it is the row now.
    STORED = "stored"
    #: At the stored row's position: read twice, or a repair; nothing to do.
    SAME = "same"
    #: Older than the stored row: written late, after a newer row of its key. Compaction keeps
    #: the last-written row, so the newest must be written again after it (a repair).
    STALE = "stale"

    def __bool__(self) -> bool:
        return self is Taken.STORED


#: The members as module globals: `Taken.STORED` is a slow lookup (0.3 us in Python 3.11),
#: and each changelog row takes a few.
_STORED, _SAME, STALE = Taken.STORED, Taken.SAME, Taken.STALE


def taken(stored: Sequence[int] | None, position: Sequence[int]) -> Taken:
    """The row at `position` against the stored row's position (one key's rows share one
    outcomes partition: positions order them as their outcomes were written)."""
    old, new = tuple(stored or (-1, -1)), tuple(position)
    return _STORED if new > old else _SAME if new == old else STALE


def _latest(state: Mapping[str, Any] | None) -> tuple[int, ...]:
    return tuple(state["latest"]) if state else (-1, -1, -1)


class LinkStore:
    """Users, staff and lead-source links per client, one row per entity.

    A row changes only by folding in an outcome (`apply`, by the outcome's writer, which then
    writes the row to the links changelog) or by taking a changelog row (`store_row`, the
    follower). Each row keeps the position of the last outcome folded in, so a row that
    arrives late, twice or out of order never replaces a newer one.
    """

    def __init__(self, path: Path) -> None:
        path.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._db = Rdict(str(path / "links"), store_options())
        #: Until `rebuilt`: a new store, written without RocksDB's write-ahead log (half the
        #: cost of a row); one that never got there (or made from the outcomes topic, which
        #: nothing follows any more) is started again from the changelog.
        self.rebuilding = self._db.get(_REBUILT) != FORMAT
        if self.rebuilding and next(iter(self._db.keys()), None) is not None:
            log.warning(
                "link store %s was never rebuilt from the changelog in this format: rebuilding",
                path,
            )
            self._db.close()
            Rdict.destroy(str(path / "links"))
            self._db = Rdict(str(path / "links"), store_options())
        #: While rebuilding: the rows taken and not written yet (see `Writes`).
        self._gathered: Writes | None = None
        if self.rebuilding:
            self._db.set_write_options(without_wal())
            compacting(self._db, False)
            self._gathered = Writes(self._db, from_empty=True)  # new, or destroyed above
        self._lock = threading.Lock()
        #: Told (entity, client, InTouch ID) after a staff or lead-source link got another
        #: receiver ID (or none): the users referencing it are planned again.
        self.on_reference_change: Callable[[str, str, str], None] | None = None
        #: Told the user state a row taken from the changelog carries (see `fold`).
        self.on_state: Callable[[Mapping[str, Any]], object] | None = None
        #: Offsets, per outcomes partition, of outcomes this worker wrote and applied itself:
        #: the follower need not decode and apply them again.
        self._own: dict[int, list[int]] = {}
        #: When this process first held each pending marker (monotonic; see
        #: `Pending.noticed`); one it found stored when it opened the store counts from then.
        self._noticed: dict[str, float] = {}
        self._opened = time.monotonic()

    def close(self) -> None:
        with self._lock:
            self._write_gathered()
            self._db.close()

    def _read(self, key: str) -> Any:
        """A stored value, or one gathered and not written yet (call with the lock held)."""
        return self._db.get(key) if self._gathered is None else self._gathered.get(key)

    def _write_gathered(self) -> None:
        """Write the rows gathered while rebuilding (call with the lock held)."""
        if self._gathered is not None:
            self._gathered.write()

    def _get(self, key: str) -> dict[str, Any] | None:
        with self._lock:
            raw = self._read(key)
        return None if raw is None else dict(load_row(raw))

    def _noticed_at(self, key: str) -> float:
        return self._noticed.get(key, self._opened)

    def user(self, client_id: str, intouch_id: str) -> UserLink | None:
        key = _key("USER", client_id, intouch_id)
        row = self._get(key)
        if row is None:
            return None
        return UserLink(
            receiver_id=row.get("receiver_id"),
            user_type=row.get("user_type"),
            version=row.get("version", -1),
            fingerprint=row.get("fingerprint"),
            pending=_pending(row, self._noticed_at(key)),
        )

    def position_of(self, entity: str, client_id: str, intouch_id: str) -> tuple[int, int] | None:
        """(outcomes partition, offset) of the outcome an entity's row folded in last."""
        row = self._get(_key(entity, client_id, intouch_id))
        if row is None or "position" not in row:
            return None
        partition, offset = row["position"]
        return int(partition), int(offset)

    def estimate_keys(self) -> int:
        """RocksDB's estimate of the keys in the table (cheap: no scan)."""
        with self._lock:
            self._write_gathered()
            value = self._db.property_int_value("rocksdb.estimate-num-keys")
        return int(value or 0)

    def has_parked(self, entity: str, client_id: str, intouch_id: str) -> bool:
        """Whether commands of this entity wait in the parking topic (later ones queue behind)."""
        row = self._get(_key(entity, client_id, intouch_id))
        return bool(row and row.get("parked"))

    def newest_parked(self, entity: str, client_id: str, intouch_id: str) -> int | None:
        """The highest version of this entity that waits in the parking topic, if any."""
        row = self._get(_key(entity, client_id, intouch_id))
        if not row or not row.get("parked"):
            return None
        return int(row.get("parked_version", -1))

    def owner_of(self, client_id: str, receiver_id: str) -> str | None:
        """The InTouch user linked to a receiver person record, if any."""
        with self._lock:
            raw = self._read(_owner_key(client_id, receiver_id))
        return None if raw is None else str(raw.decode())

    def staff(self, client_id: str, intouch_id: str) -> EntityLink | None:
        return self._entity("STAFF", client_id, intouch_id)

    def lead_source(self, client_id: str, intouch_id: str) -> EntityLink | None:
        return self._entity("LEAD_SOURCE", client_id, intouch_id)

    def _entity(self, entity: str, client_id: str, intouch_id: str) -> EntityLink | None:
        key = _key(entity, client_id, intouch_id)
        row = self._get(key)
        if row is None:
            return None
        pending = _pending(row, self._noticed_at(key))
        if row.get("version", -1) < 0 and pending is None:
            return None
        return EntityLink(
            row.get("receiver_id"), row.get("version", -1), row.get("fingerprint"), pending
        )

    def apply_own(
        self,
        outcome: Mapping[str, Any],
        position: tuple[int, int],
        state: Mapping[str, Any] | None = None,
    ) -> tuple[str, bytes] | None:
        """`apply` an outcome this worker wrote; return the changed row (store key, value) for
        the changelog, or None when the store held this outcome or a later one already."""
        return self.apply(outcome, position, state)

    def mark_own(self, position: tuple[int, int]) -> None:
        """The changelog row at `position` was written (and applied) here: the follower skips
        it when it gets there."""
        with self._lock:
            heapq.heappush(self._own.setdefault(position[0], []), position[1])

    def applied_here(self, position: tuple[int, int]) -> bool:
        """Whether the changelog row at `position` went through `mark_own` (forgotten now, with
        any earlier one the follower passed before it was written down)."""
        partition, offset = position
        if partition not in self._own:
            return False  # none (read unlocked: one marked meanwhile is applied twice, harmless)
        with self._lock:
            own = self._own.get(partition)
            while own and own[0] < offset:
                heapq.heappop(own)
            if own and own[0] == offset:
                heapq.heappop(own)
                return True
        return False

    def apply(
        self,
        outcome: Mapping[str, Any],
        position: tuple[int, int],
        state: Mapping[str, Any] | None = None,
    ) -> tuple[str, bytes] | None:
        """Fold one outcome at (outcomes partition, offset) into its row unless a later one
        was folded in already; return the new row (store key, value) or None."""
        key = _key(outcome["entity"], outcome["client_id"], outcome["intouch_id"])
        return self._store(key, lambda old: fold(old, outcome, position, state))

    def store_row(self, key: str, value: bytes) -> Taken:
        """Keep a changelog row unless the stored one folded in its outcome or a later one;
        say which (see `taken`)."""
        row = load_row(value)
        if not (isinstance(row, dict) and key[:2] in _ROW_PREFIXES):
            raise ValueError(f"not a link row: {key!r}")
        verdict = _STORED

        def newer(old: Mapping[str, Any]) -> dict[str, Any] | None:
            nonlocal verdict
            verdict = taken(old.get("position"), row["position"])
            return row if verdict is _STORED else None

        if self._store(key, newer, value) is None:
            return verdict
        if row.get("state") and self.on_state is not None:
            self.on_state(row["state"])
        return _STORED

    def row(self, key: str) -> bytes | None:
        """The stored row of a store key as the changelog carries it (a repair writes it)."""
        with self._lock:
            raw = self._read(key)
        return None if raw is None else bytes(raw)

    def _store(
        self,
        key: str,
        change: Callable[[Mapping[str, Any]], dict[str, Any] | None],
        encoded: bytes | None = None,
    ) -> tuple[str, bytes] | None:
        """The one write path of a row: `change` gives the new row from the stored one (None:
        keep it); the reverse index follows a user's receiver ID, and a staff or lead-source
        link that got another receiver ID has the users referencing it planned again."""
        with self._lock:
            # The row and its reverse index in one write (with more rows while rebuilding).
            writes = self._gathered if self._gathered is not None else Writes(self._db)
            raw = writes.get(key)
            old: dict[str, Any] = load_row(raw) if raw is not None else {}
            new = change(old)
            if new is None:
                return None
            before, after = old.get("receiver_id"), new.get("receiver_id")
            marker = _marker(new)
            if marker != _marker(old):  # a call now in doubt (or again), or settled
                if marker:
                    self._noticed[key] = time.monotonic()
                else:
                    self._noticed.pop(key, None)
            value = encoded if encoded is not None else dump_row(new)
            if key.startswith("u/") and before != after:
                self._reindex(writes, key, before, after)
            writes.put(key, value)
            if writes is not self._gathered or writes.full():
                writes.write()
        if (
            before != after
            and not key.startswith("u/")
            and self.on_reference_change
            and not self.rebuilding  # the first assignment, after it, checks every user
        ):
            # After the write: whoever reads the link from now on sees the new receiver ID.
            entity = "STAFF" if key.startswith("s/") else "LEAD_SOURCE"
            client_id, intouch_id = key[2:].split("/", 1)
            self.on_reference_change(entity, client_id, intouch_id)
        return key, value

    def _reindex(self, writes: Writes, key: str, old: str | None, new: str | None) -> None:
        """Move the reverse index from the user's old receiver record to its new one."""
        client_id, intouch_id = key[2:].split("/", 1)
        if old is not None and old != new:
            owner_key = _owner_key(client_id, old)
            if writes.get(owner_key) == intouch_id.encode():
                writes.delete(owner_key)
        if new is not None:
            owner_key = _owner_key(client_id, new)
            # A store being rebuilt takes rows that were checked when written: no read here.
            owner = None if self.rebuilding else writes.get(owner_key)
            if owner is not None and owner != intouch_id.encode():
                # The executor never links a taken record; an old log may hold such a link.
                log.warning(
                    "receiver record %s of client %s was linked to %s, now to %s",
                    new, client_id, owner.decode(), intouch_id,
                )  # fmt: skip
            writes.put(owner_key, intouch_id.encode())

    def rebuilt(self) -> None:
        """The store caught up with the changelog once: made durable, kept from now on (its
        writes go through the write-ahead log again)."""
        with self._lock:
            if self.rebuilding:
                self._write_gathered()
                self._gathered = None
                self._db.flush()
                self._db.set_write_options(WriteOptions())
                compacting(self._db, True)
                self._db[_REBUILT] = FORMAT
                self.rebuilding = False

    def rows(self) -> Iterator[tuple[str, bytes]]:
        """Every row (users, staff, lead sources) as (store key, value), a thousand at a time."""
        start: str = ""
        while True:
            with self._lock:
                self._write_gathered()
                batch = []
                for key, value in self._db.items(from_key=start):
                    batch.append((key, value))
                    if len(batch) == 1000:
                        break
            for key, value in batch:
                if isinstance(key, str) and key[:2] in _ROW_PREFIXES:
                    yield key, value
            if len(batch) < 1000:
                return
            start = str(batch[-1][0]) + "\x00"  # the next key after the last one read

    def offsets(self) -> dict[int, int]:
        """Next changelog offset to read per partition."""
        with self._lock:
            raw = self._db.get(_OFFSETS)  # written at once (not gathered)
        return {int(p): o for p, o in load_row(raw).items()} if raw is not None else {}

    def save_offsets(self, offsets: Mapping[int, int]) -> None:
        """Keep where the follower stopped (with the rows it took before, if not written yet)."""
        with self._lock:
            self._write_gathered()
            self._db[_OFFSETS] = dump_row(dict(offsets))

    def counts(self) -> dict[str, int]:
        """Linked entities per kind (for summaries)."""
        counts = {"users": 0, "staff": 0, "lead_sources": 0}
        names = {"u": "users", "s": "staff", "l": "lead_sources"}
        with self._lock:
            self._write_gathered()
            for key, raw in self._db.items():
                kind = names.get(key[0]) if isinstance(key, str) and key[1:2] == "/" else None
                if kind and load_row(raw).get("receiver_id"):
                    counts[kind] += 1
        return counts
