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

from rocksdict import BlockBasedOptions, Options, Rdict, WriteBatch, WriteOptions

from streams.core.decisions import SkipReason
from streams.core.model import (
    FINAL_STATUSES,
    SETTLING_STATUSES,
    EntityLink,
    Pending,
    Status,
    UserLink,
)
from streams.exceptions import KafkaClientError, KafkaTimeoutError
from streams.kafka import clients
from streams.settings import KafkaSettings
from streams.worker.rows import FORMAT, dump_row, load_row

log = logging.getLogger(__name__)

_PREFIX = {"USER": "u", "STAFF": "s", "LEAD_SOURCE": "l"}


#: Where the follower stopped on the links changelog.
_OFFSETS = "__link_offsets"
#: Set once a store caught up with the changelog (see `LinkStore.rebuilt`), to the format
#: (`rows.FORMAT`) it was rebuilt in: a store of another (format 1 marked b"1") is rebuilt,
#: and the user states with it.
_REBUILT = "__rebuilt"


def without_wal() -> WriteOptions:
    """Writes of a store being rebuilt: lost in a crash, and then rebuilt again anyway."""
    options = WriteOptions()
    options.disable_wal = True  # type: ignore[method-assign,assignment]  # a property (stubs: a method)
    return options


def compacting(db: Rdict, on: bool) -> None:
    """Pause (while a store is rebuilt) or resume RocksDB's background compactions.

    A rebuild writes each key about once: compacting its files as they come cost half as much
    CPU again as taking the rows (at a million links), on the cores the rebuild needs. Paused,
    its level-0 files pile up (RocksDB stalls no writes for them then) and a read checks each
    one's bloom filter; the rebuilt store compacts them in the background once it is ready.
    """
    db.set_options({"disable_auto_compactions": "false" if on else "true"})


#: Each store's memtable (RocksDB's default is 64 MiB, up to two of them per store).
WRITE_BUFFER_BYTES = 16 * 2**20


def store_options() -> Options:
    """How the link store and the user states open RocksDB: smaller memtables than the
    defaults, flushed to disk sooner (the worker's RSS, not its speed, is what they bound),
    and bloom filters."""
    options = Options()
    options.create_if_missing(True)
    options.set_write_buffer_size(WRITE_BUFFER_BYTES)
    options.set_max_write_buffer_number(2)
    table = BlockBasedOptions()
    # A bloom filter per table file: a key absent from the store (every row of a store being
    # rebuilt asks for its old one first) is answered without reading each file's blocks.
    table.set_bloom_filter(10, False)
    options.set_block_based_table_factory(table)
    return options


class Writes:
    """Puts and deletes gathered into one RocksDB write, read through until it is made.

    A store being rebuilt keeps one open across many rows (`LIMIT` entries), where a write per
    row cost as much as the rest of taking the row; otherwise each row is one `Writes`. One
    made for a store that was empty (`from_empty`), and that every row goes through from then
    on, remembers (in a bloom filter) the keys it was given: a key it never saw is in no store
    and asks RocksDB for nothing, as a rebuilt store sees most keys once (the changelog is
    compacted); a key seen (or a false positive, ~3% a million keys) is read as before.
    """

    #: Entries a store being rebuilt gathers before it writes them.
    LIMIT = 4096
    #: The seen-keys filter: one probe of 25 bits of the key's hash into 4 MiB (a probe
    #: fewer than two into 2 MiB, for the same false positives at the keys a rebuild reads).
    _SEEN_MASK = (1 << 25) - 1

    def __init__(self, db: Rdict, *, from_empty: bool = False) -> None:
        self._db = db
        self._batch = WriteBatch()
        self._entries = 0
        #: What `get` answers from: the keys put with `read` (and deleted) not written yet.
        self._values: dict[str, bytes | None] = {}
        self._seen = bytearray((self._SEEN_MASK + 1) // 8) if from_empty else None

    def get(self, key: str) -> bytes | None:
        """The value of `key`: gathered, or stored (a key put with `read=False` is not read)."""
        if key in self._values:
            return self._values[key]
        if self._seen is not None:
            bit = hash(key) & self._SEEN_MASK
            if not self._seen[bit >> 3] >> (bit & 7) & 1:
                return None
        found = self._db.get(key)
        return None if found is None else bytes(found)

    def put(self, key: str, value: bytes, *, read: bool = True) -> None:
        """Put `value`; `read=False`: `get` never asks for this key (an index entry, iterated
        only after `write`), so neither what is gathered for it nor the filter of seen keys
        need have it."""
        self._batch.put(key, value)
        self._entries += 1
        if read:
            self._values[key] = value
            if self._seen is not None:
                bit = hash(key) & self._SEEN_MASK
                self._seen[bit >> 3] |= 1 << (bit & 7)

    def delete(self, key: str) -> None:
        self._batch.delete(key)
        self._entries += 1
        self._values[key] = None

    def full(self) -> bool:
        return self._entries >= self.LIMIT

    def write(self) -> None:
        """Make the gathered writes (in one RocksDB write) and start again empty."""
        if self._entries:
            self._db.write(self._batch)
            self._batch = WriteBatch()
            self._entries = 0
            self._values = {}


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


def _pending(row: Mapping[str, Any]) -> Pending | None:
    found = row.get("pending")
    if found is not None:
        return Pending(call=found["call"], at=found["at"])
    if row.get("pending_create"):
        return Pending(call="create", at=0.0)  # a marker written before calls were recorded
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
        started = outcome["occurred_at"]
        new["pending"] = {"call": outcome.get("call") or "create", "at": _epoch(started)}
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
_STORED, _SAME, _STALE = Taken.STORED, Taken.SAME, Taken.STALE


def taken(stored: Sequence[int] | None, position: Sequence[int]) -> Taken:
    """The row at `position` against the stored row's position (one key's rows share one
    outcomes partition: positions order them as their outcomes were written)."""
    old, new = tuple(stored or (-1, -1)), tuple(position)
    return _STORED if new > old else _SAME if new == old else _STALE


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

    def user(self, client_id: str, intouch_id: str) -> UserLink | None:
        row = self._get(_key("USER", client_id, intouch_id))
        if row is None:
            return None
        return UserLink(
            receiver_id=row.get("receiver_id"),
            user_type=row.get("user_type"),
            version=row.get("version", -1),
            fingerprint=row.get("fingerprint"),
            pending=_pending(row),
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
        row = self._get(_key(entity, client_id, intouch_id))
        if row is None:
            return None
        pending = _pending(row)
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


#: The followers read what is not on the way of any event (other workers' rows, commands
#: for the replanner): librdkafka fetches at most every 100 ms rather than once a record
#: (its default answers as soon as one byte is there); rdk threads' CPU -0.2 ms/event at
#: 50 events/s. A catch-up (`wait_until_current`) waits at most that much longer.
FOLLOWER_FETCH: dict[str, str | int | float | bool] = {
    "fetch.wait.max.ms": 100,
    "fetch.min.bytes": 65536,
    # A rebuild takes rows slower than the broker sends them: librdkafka's default queue of
    # prefetched records (64 MiB) stayed full for all of it, in the worker's RSS.
    "queued.max.messages.kbytes": 8192,
}


class LinkFollower:
    """Reads every partition of the links changelog into the link store, from where it stopped.

    Every worker follows all partitions: staff and lead-source links are global, and a worker
    that takes over a partition must know its users' links. The changelog is compacted to the
    latest row per entity, so a worker with an empty data dir reads one row per entity however
    long the history; the outcomes topic stays the audit log, read by nothing here.

    Why a row per outcome is enough: the outcome's writer sends the row after the outcome's
    ack and acknowledges the command only after the row's; a lane cancelled in between (its
    partition revoked, the worker stopping) finishes that write first (`Publisher.settled`).
    An outcome whose row never reached the changelog belongs to a writer that died between
    the two acks; its command was not acknowledged and the next owner runs it again, as after
    a crash between the receiver call and the outcome: a create's pending marker, with its
    row, was acknowledged before the call, so the next owner first folds in the entity's
    outcomes past that row from the outcomes topic (`Publisher.recover`), then reconciles
    what is still unsettled instead of creating twice.

    Compaction keeps the last-written row of a key, not the newest: a row written late (by a
    worker that lost the partition, or a slow one) after a newer row would be what a worker
    with an empty data dir gets. The follower keeps such keys (`behind`) until a row at least
    as new follows. The owner of the key's commands partition writes the stored row again
    (see `due_repairs`, `Pipeline._repair_rows`); that repair, at the stored position, changes
    nothing anywhere. Any other worker does it too once the key stayed behind `ORPHAN_AFTER`
    (no owner, an owner that died first, or an owner whose own late row it was: a follower
    skips its own rows) — a few rows more, once, rather than a row that compaction loses.
    """

    thread_name = "link-follower"
    #: Seconds after which a worker repairs a row behind that it does not own (see above).
    ORPHAN_AFTER = 30.0

    def __init__(
        self,
        store: LinkStore,
        bootstrap: str,
        kafka: KafkaSettings,
        topic: str,
    ) -> None:
        self.store = store
        self.topic = topic
        self.bootstrap = bootstrap
        self.kafka = kafka
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.failure: BaseException | None = None
        self._positions: dict[int, int] = {}
        self._lock = threading.Lock()
        #: Store keys whose last changelog row is older than the stored one, with where that
        #: row is (changelog partition, offset; see `Taken.STALE`) and when it was read.
        self._behind: dict[str, tuple[int, int, float]] = {}

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=self.thread_name, daemon=True)
        self._thread.start()

    def _take(self, key: bytes | None, value: bytes | None, position: tuple[int, int]) -> None:
        """One record of the followed topic, at (partition, offset)."""
        if value is None or key is None:
            return
        if self.store.applied_here(position):
            if self._behind:  # this worker's row, written after a late one: the newest
                with self._lock:
                    self._behind.pop(key.decode(), None)
            return
        name = key.decode()
        try:
            verdict = self.store.store_row(name, value)
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("skipping an unreadable link row at %s: %s", position, exc)
            return
        if verdict is _STALE:
            log.info("link row %s at %s is older than the stored one", name, position)
            with self._lock:
                self._behind[name] = (*position, time.monotonic())
        elif self._behind:
            with self._lock:
                self._behind.pop(name, None)

    def behind(self) -> dict[str, int]:
        """Store keys whose last changelog row is older than the stored row, with that row's
        changelog partition: the stored row must be written there again."""
        with self._lock:
            return {key: partition for key, (partition, _, _) in self._behind.items()}

    def due_repairs(self, owns: Callable[[str], bool], now: float) -> dict[str, int]:
        """The keys of `behind` to repair now: those this worker `owns` (the commands
        partition of the store key), and any left behind longer than `ORPHAN_AFTER`."""
        with self._lock:
            behind = list(self._behind.items())
        return {
            key: partition
            for key, (partition, _, noticed) in behind
            if now - noticed > self.ORPHAN_AFTER or owns(key)
        }

    def repairing(self, key: str) -> None:
        """The stored row of `key` is being written again (call before sending it: a late row
        read from now on comes before the repair, or adds the key back)."""
        with self._lock:
            self._behind.pop(key, None)

    def _resume_at(self) -> dict[int, int]:
        """Where to start again after a restart (call with the lock held): at the first late
        row not repaired yet, so that a restart finds it again instead of forgetting it."""
        resume = dict(self._positions)
        for partition, offset, _ in self._behind.values():
            resume[partition] = min(resume.get(partition, offset), offset)
        return resume

    def _stored_offsets(self) -> dict[int, int]:
        return self.store.offsets()

    def _save_offsets(self, offsets: Mapping[int, int]) -> None:
        self.store.save_offsets(offsets)

    def alive(self) -> bool:
        """Started, still reading, and not failed."""
        return self._thread is not None and self._thread.is_alive() and self.failure is None

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=10)

    def wait_until_current(self, timeout: float) -> None:
        """Block until every record written before this call is in the store; give up after
        `timeout` seconds without progress."""

        probe = clients.consumer(self.bootstrap, self.kafka, f"link-probe-{id(self)}")
        try:
            with clients.kafka_errors(f"no end offsets of {self.topic} from {self.bootstrap}"):
                count = clients.partition_count(probe, self.topic, self.bootstrap, timeout)
                marks = clients.watermarks(probe, self.topic, count, timeout)
                targets = {p: high for p, (_, high) in marks.items()}
        finally:
            probe.close()
        deadline, seen = time.monotonic() + timeout, -1
        while time.monotonic() < deadline:
            with self._lock:
                behind = {p: t for p, t in targets.items() if self._positions.get(p, 0) < t}
                read = sum(self._positions.values())
            if not behind:
                return
            if self._thread is None or not self._thread.is_alive():
                raise KafkaClientError(f"the {self.thread_name} stopped")
            if read != seen:  # a long history takes long: only a reader that stalls fails
                deadline, seen = time.monotonic() + timeout, read
            time.sleep(0.05)
        raise KafkaTimeoutError(f"no progress on {self.topic} for {timeout:.0f}s")

    def _run(self) -> None:
        from confluent_kafka import OFFSET_BEGINNING, TopicPartition

        consumer = clients.consumer(
            self.bootstrap, self.kafka, f"link-follower-{id(self)}", FOLLOWER_FETCH
        )
        try:
            meta = consumer.list_topics(self.topic, timeout=30).topics[self.topic]
            stored = self._stored_offsets()
            with self._lock:
                self._positions = {p: stored.get(p, 0) for p in meta.partitions}
            consumer.assign(
                [
                    TopicPartition(self.topic, p, stored.get(p, OFFSET_BEGINNING))
                    for p in meta.partitions
                ]
            )
            last_save = time.monotonic()
            dirty = False
            while not self._stop.is_set():
                batch = consumer.consume(500, timeout=0.2)
                for message in batch:
                    partition, offset = message.partition(), message.offset()
                    if message.error() or partition is None or offset is None:
                        continue
                    self._take(message.key(), message.value(), (partition, offset))
                    with self._lock:
                        self._positions[partition] = offset + 1
                    dirty = True
                if dirty and (time.monotonic() - last_save > 1.0 or not batch):
                    with self._lock:
                        self._save_offsets(self._resume_at())
                    dirty = False
                    last_save = time.monotonic()
        except Exception as exc:
            log.exception("the %s failed", self.thread_name)
            self.failure = exc
        finally:
            consumer.close()
