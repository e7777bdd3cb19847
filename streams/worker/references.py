"""Users' latest planned InTouch state and the staff and lead sources they reference, in
RocksDB, materialized from the commands topic."""

from __future__ import annotations

import base64
import binascii
import logging
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rocksdict import Rdict, WriteOptions

from streams.avro.codec import AvroCodec
from streams.core.model import Entity, Record
from streams.exceptions import RecordDecodeError
from streams.kafka import clients
from streams.settings import KafkaSettings
from streams.worker.follower import LinkFollower
from streams.worker.links import LinkStore
from streams.worker.rocks import Writes, compacting, store_options, without_wal
from streams.worker.rows import FORMAT, dump_row, load_row

log = logging.getLogger(__name__)

#: The commands that carry a user's InTouch state.
USER_KINDS = frozenset({"UPSERT_PROSPECT", "UPSERT_MEMBER", "CONVERT_TO_MEMBER"})

#: The user fields that reference another entity, and which.
_REFERENCES = (("staff_owner_id", Entity.STAFF), ("lead_source_id", Entity.LEAD_SOURCE))


def _state_key(client_id: str, intouch_id: str) -> str:
    """A user's latest state: one entry (`_state_entry`) with the command in it."""
    return f"v/{client_id}/{intouch_id}"


def _partition_key(partition: int, client_id: str, intouch_id: str) -> str:
    """The users of a commands partition that reference a staff owner or lead source."""
    return f"p/{partition}/{client_id}/{intouch_id}"


#: Where the store keeps its format (`rows.FORMAT`): one of another format is started over
#: (the link store, of that format too, is then rebuilt from the changelog with it).
_FORMAT_KEY = "__format"

#: Users' references read at a time by `UserStates.with_references`.
_SCAN_BATCH = 1000


def _state_entry(latest: tuple[int, ...], entry: bytes, raw: bytes) -> bytes:
    """`version/partition/offset`, the user's partition index entry (what it names and the
    receiver IDs its command carried, JSON) and the command as written to the commands
    topic, a line each (neither of the first two holds a newline; the command may)."""
    version, partition, offset = latest
    return b"%d/%d/%d\n%b\n%b" % (version, partition, offset, entry, raw)


def _read_entry(value: bytes) -> tuple[tuple[int, ...], bytes, bytes]:
    """(latest, index entry, command) of a `_state_entry`."""
    head, entry, raw = value.split(b"\n", 2)
    return tuple(int(n) for n in head.split(b"/")), entry, raw


def _ref_prefix(entity: str, client_id: str, referenced: str) -> str:
    return f"i/{entity}/{client_id}/{referenced}/"


@dataclass(frozen=True)
class Reference:
    """What a user's latest state names ({entity: InTouch ID}) and the receiver IDs its
    command carried for them (staff owner, lead source)."""

    refs: dict[str, str]
    carried: tuple[str | None, str | None]

    @classmethod
    def of(cls, entry: bytes) -> Reference:
        """The reference a partition index entry holds (see `UserStates.references_of`)."""
        found = load_row(entry)
        return cls(found["refs"], tuple(found["carried"]))


def state_of(raw: bytes, command: Mapping[str, Any], position: tuple[int, int]) -> dict[str, Any]:
    """A user command read at (commands partition, offset) as a state `UserStates` keeps, in
    JSON terms (a link row carries it: a rebuilt worker need not read the commands)."""
    user = command["user"]
    return {
        "client_id": command["client_id"],
        "intouch_id": command["intouch_id"],
        "latest": [command["version"], *position],
        "refs": {str(e): user.get(f) for f, e in _REFERENCES if user.get(f)},
        "carried": [command["staff_owner_receiver_id"], command["lead_source_receiver_id"]],
        "command": base64.b64encode(raw).decode(),
    }


@dataclass(frozen=True)
class UserState:
    """A user's latest planned command: its InTouch state, the receiver IDs it carried, and
    the commands partition it lives on (the owner of that partition plans it again)."""

    command: Record
    partition: int

    @property
    def user(self) -> Record:
        return dict(self.command["user"])


class UserStates:
    """The latest command of every user (newest version; the later of one version), and two
    indexes: (entity, client, referenced InTouch ID) -> the users whose latest state names it,
    and commands partition -> its users that name any (with the receiver IDs they carried)."""

    def __init__(self, path: Path, codec: AvroCodec) -> None:
        path.mkdir(parents=True, exist_ok=True)
        self._path = str(path / "users")
        self._db = Rdict(self._path, store_options())
        self._codec = codec
        self._lock = threading.Lock()
        #: While rebuilding: the states kept and not written yet (see `Writes`).
        self._gathered: Writes | None = None
        if self._db.get(_FORMAT_KEY) != FORMAT:
            if next(iter(self._db.keys()), None) is not None:
                log.warning("user states %s are of an older format: starting over", path)
            self._start_over()

    def _start_over(self) -> None:
        """An empty store of this format (call with the lock held, or before it is shared)."""
        self._db.close()
        Rdict.destroy(self._path)
        self._db = Rdict(self._path, store_options())
        self._db[_FORMAT_KEY] = FORMAT

    def rebuild(self) -> None:
        """Start empty, without the write-ahead log until `rebuilt` (the link store is being
        rebuilt: the states come with its rows)."""
        with self._lock:
            self._start_over()
            self._db.set_write_options(without_wal())
            compacting(self._db, False)
            self._gathered = Writes(self._db, from_empty=True)

    def rebuilt(self) -> None:
        """Made durable; writes go through the write-ahead log again."""
        with self._lock:
            self._write_gathered()
            self._gathered = None
            self._db.flush()
            self._db.set_write_options(WriteOptions())
            compacting(self._db, True)

    def _read(self, key: str) -> Any:
        """A stored value, or one gathered and not written yet (call with the lock held)."""
        return self._db.get(key) if self._gathered is None else self._gathered.get(key)

    def _write_gathered(self) -> None:
        """Write the states gathered while rebuilding (call with the lock held)."""
        if self._gathered is not None:
            self._gathered.write()

    def empty(self) -> bool:
        """Whether no state was ever kept and no command read here (a new data dir)."""
        with self._lock:
            self._write_gathered()
            return self._db.get("__command_offsets") is None and not self._keys_from("v/", 1)

    def close(self) -> None:
        with self._lock:
            self._write_gathered()
            self._db.close()

    def _entry(self, client_id: str, intouch_id: str) -> tuple[tuple[int, ...], bytes, bytes]:
        with self._lock:
            value = self._read(_state_key(client_id, intouch_id))
        return ((), b"", b"") if value is None else _read_entry(bytes(value))

    def get(self, client_id: str, intouch_id: str) -> UserState | None:
        latest, _, raw = self._entry(client_id, intouch_id)
        return UserState(self._codec.decode(raw), latest[1]) if latest else None

    def state(self, client_id: str, intouch_id: str) -> dict[str, Any] | None:
        """The user's latest state as `state_of` gives it (what a link row carries)."""
        latest, _, raw = self._entry(client_id, intouch_id)
        if not latest:
            return None
        return state_of(raw, self._codec.decode(raw), (latest[1], latest[2]))

    def apply(self, raw: bytes, command: Mapping[str, Any], position: tuple[int, int]) -> bool:
        """Keep `command` (read at (partition, offset)) when it is the user's latest."""
        user = command["user"]
        return self._keep(
            command["client_id"],
            command["intouch_id"],
            (command["version"], *position),
            {str(e): user.get(f) for f, e in _REFERENCES if user.get(f)},
            [command["staff_owner_receiver_id"], command["lead_source_receiver_id"]],
            raw,
        )

    def keep(self, state: Mapping[str, Any]) -> bool:
        """Keep a state (`state_of`, or carried by a link row) when it is the user's latest."""
        return self._keep(
            state["client_id"],
            state["intouch_id"],
            tuple(state["latest"]),
            state["refs"],
            state["carried"],
            state["command"],
        )

    def _keep(
        self,
        client_id: str,
        intouch_id: str,
        latest: tuple[int, ...],
        refs: Mapping[str, str],
        carried: list[str | None],
        command: bytes | str,
    ) -> bool:
        """Keep the user's state unless it has this one or a later one; `command` as written
        to the commands topic, or in base64 (as a link row carries it: decoded only if kept)."""
        key = _state_key(client_id, intouch_id)
        partition = latest[1]
        with self._lock:
            # The state and its indexes in one write (with more states while rebuilding).
            batch = self._gathered if self._gathered is not None else Writes(self._db)
            found = batch.get(key)
            if found is not None:
                old, old_entry, _ = _read_entry(found)
                if old >= latest:
                    return False
                old_refs: dict[str, str] = load_row(old_entry)["refs"]
                for entity, referenced in old_refs.items():
                    if refs.get(entity) != referenced:
                        batch.delete(_ref_prefix(entity, client_id, referenced) + intouch_id)
                if old_refs and (old[1] != partition or not refs):
                    batch.delete(_partition_key(old[1], client_id, intouch_id))
            entry = dump_row({"refs": refs, "carried": carried})
            for entity, referenced in refs.items():
                batch.put(_ref_prefix(entity, client_id, referenced) + intouch_id, b"", read=False)
            if refs:
                batch.put(_partition_key(partition, client_id, intouch_id), entry, read=False)
            raw = command if isinstance(command, bytes) else binascii.a2b_base64(command)
            batch.put(key, _state_entry(latest, entry, raw))
            if batch is not self._gathered or batch.full():
                batch.write()
            return True

    def with_references(self, partition: int) -> Iterator[tuple[str, str, Reference]]:
        """(client, InTouch ID, what it references and carried) of the users of a commands
        partition whose latest state names a staff owner or lead source, read lazily (a
        thousand at a time, so the readers are not held up)."""
        for client_id, intouch_id, entry in self.references_of(partition):
            yield client_id, intouch_id, Reference.of(entry)

    def references_of(self, partition: int) -> Iterator[tuple[str, str, bytes]]:
        """`with_references` not decoded: (client, InTouch ID, the entry `Reference.of`
        reads). Users naming the same references with the same receiver IDs have equal ones."""
        prefix = start = f"p/{partition}/"
        while True:
            with self._lock:
                self._write_gathered()
                batch = []
                for key, value in self._db.items(from_key=start):
                    if not (isinstance(key, str) and key.startswith(prefix)):
                        break
                    batch.append((key, value))
                    if len(batch) == _SCAN_BATCH:
                        break
            for key, value in batch:
                client_id, intouch_id = key[len(prefix) :].split("/", 1)
                yield client_id, intouch_id, value
            if len(batch) < _SCAN_BATCH:
                return
            start = batch[-1][0] + "\x00"  # the next key after the last one read

    def referencing(self, entity: str, client_id: str, referenced: str) -> list[str]:
        """The users whose latest state names this staff or lead source."""
        prefix = _ref_prefix(entity, client_id, referenced)
        return [key[len(prefix) :] for key in self._keys(prefix)]

    def users(self) -> Iterator[tuple[str, str]]:
        """Every (client, InTouch ID) with a state."""
        for key in self._keys("v/"):
            client_id, intouch_id = key[2:].split("/", 1)
            yield client_id, intouch_id

    def _keys(self, prefix: str) -> list[str]:
        with self._lock:
            self._write_gathered()
            return self._keys_from(prefix)

    def _keys_from(self, prefix: str, limit: int | None = None) -> list[str]:
        found: list[str] = []
        for key in self._db.keys(from_key=prefix):
            if not (isinstance(key, str) and key.startswith(prefix)) or len(found) == limit:
                break
            found.append(key)
        return found

    def offsets(self) -> dict[int, int]:
        """Next command offset to read per partition."""
        with self._lock:
            raw = self._db.get("__command_offsets")  # written at once (not gathered)
        return {int(p): o for p, o in load_row(raw).items()} if raw is not None else {}

    def save_offsets(self, offsets: Mapping[int, int]) -> None:
        with self._lock:
            self._write_gathered()
            self._db["__command_offsets"] = dump_row(dict(offsets))


class CommandFollower(LinkFollower):
    """Reads every partition of the commands topic into the user states, from where it stopped.

    After a user's state changed, `on_user` is told when a reference it carries differs from
    today's link: the state was planned before the link appeared, moved or went away.
    """

    thread_name = "command-follower"

    def __init__(
        self,
        states: UserStates,
        links: LinkStore,
        bootstrap: str,
        kafka: KafkaSettings,
        topic: str,
        codec: AvroCodec,
        on_user: Callable[[str, str], None],
        group_id: str | None = None,
    ) -> None:
        super().__init__(links, bootstrap, kafka, topic)
        self.codec = codec
        self.states = states
        self.on_user = on_user
        #: The sink's consumer group: a new data dir starts at its committed offsets (decided
        #: now: the link follower may put states from rows into the store before this starts).
        self.group_id = group_id if states.empty() else None

    def _take(self, key: bytes | None, value: bytes | None, position: tuple[int, int]) -> None:
        try:
            command = self.codec.decode(value)
        except RecordDecodeError as exc:
            log.warning("skipping undecodable command at %s: %s", position, exc)
            return
        if command["kind"] not in USER_KINDS or command.get("user") is None or value is None:
            return
        if self.states.apply(value, command, position) and self._outdated(command):
            self.on_user(command["client_id"], command["intouch_id"])

    def _outdated(self, command: Mapping[str, Any]) -> bool:
        """Whether a reference of the command differs from the link read now (after the state
        was written: a link written later finds this user in the index)."""
        client_id, user = command["client_id"], command["user"]
        owner, source = user.get("staff_owner_id"), user.get("lead_source_id")
        staff = self.store.staff(client_id, owner) if owner else None
        lead_source = self.store.lead_source(client_id, source) if source else None
        carried = (command["staff_owner_receiver_id"], command["lead_source_receiver_id"])
        now = (
            staff.receiver_id if staff else None,
            lead_source.receiver_id if lead_source else None,
        )
        return now != carried

    def _stored_offsets(self) -> dict[int, int]:
        """Where this store stopped; for a new data dir, the sink group's committed offsets:
        every command before them was run, and its state came with its outcome's link row."""
        if self.group_id is None:
            return self.states.offsets()
        from confluent_kafka import TopicPartition

        probe = clients.consumer(self.bootstrap, self.kafka, self.group_id)
        try:
            with clients.kafka_errors(f"no committed offsets of {self.group_id}"):
                count = clients.partition_count(probe, self.topic, self.bootstrap, 30)
                found = probe.committed(
                    [TopicPartition(self.topic, p) for p in range(count)], timeout=30
                )
        finally:
            probe.close()
        committed = {tp.partition: tp.offset for tp in found if tp.offset >= 0}
        log.info("user states start at the committed offsets of %s: %s", self.topic, committed)
        return committed

    def _save_offsets(self, offsets: Mapping[int, int]) -> None:
        self.states.save_offsets(offsets)
