"""Users' latest planned InTouch state and the staff and lead sources they reference, in
RocksDB, materialized from the commands topic."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rocksdict import Rdict

from streams.avro.codec import AvroCodec
from streams.core.model import Entity, Record
from streams.exceptions import RecordDecodeError
from streams.settings import KafkaSettings
from streams.worker.links import LinkFollower, LinkStore

log = logging.getLogger(__name__)

#: The commands that carry a user's InTouch state.
USER_KINDS = frozenset({"UPSERT_PROSPECT", "UPSERT_MEMBER", "CONVERT_TO_MEMBER"})

#: The user fields that reference another entity, and which.
_REFERENCES = (("staff_owner_id", Entity.STAFF), ("lead_source_id", Entity.LEAD_SOURCE))


def _state_key(client_id: str, intouch_id: str) -> str:
    return f"v/{client_id}/{intouch_id}"


def _command_key(client_id: str, intouch_id: str) -> str:
    return f"c/{client_id}/{intouch_id}"


def _ref_prefix(entity: str, client_id: str, referenced: str) -> str:
    return f"i/{entity}/{client_id}/{referenced}/"


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
    """The latest command of every user (newest version; the later of one version), and an
    index (entity, client, referenced InTouch ID) -> the users whose latest state names it."""

    def __init__(self, path: Path, codec: AvroCodec) -> None:
        path.mkdir(parents=True, exist_ok=True)
        self._db = Rdict(str(path / "users"))
        self._codec = codec
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def get(self, client_id: str, intouch_id: str) -> UserState | None:
        with self._lock:
            raw = self._db.get(_command_key(client_id, intouch_id))
            meta = self._db.get(_state_key(client_id, intouch_id))
        if raw is None or meta is None:
            return None
        return UserState(self._codec.decode(raw), int(json.loads(meta)["partition"]))

    def apply(self, raw: bytes, command: Mapping[str, Any], position: tuple[int, int]) -> bool:
        """Keep `command` (read at (partition, offset)) when it is the user's latest."""
        client_id, intouch_id = command["client_id"], command["intouch_id"]
        key = _state_key(client_id, intouch_id)
        with self._lock:
            found = self._db.get(key)
            meta: dict[str, Any] = json.loads(found) if found is not None else {}
            latest = (command["version"], *position)
            if tuple(meta.get("latest", (-1, -1, -1))) >= latest:
                return False
            user = command["user"]
            refs = {str(e): user.get(f) for f, e in _REFERENCES if user.get(f)}
            for entity, referenced in meta.get("refs", {}).items():
                if refs.get(entity) != referenced:
                    del self._db[_ref_prefix(entity, client_id, referenced) + intouch_id]
            for entity, referenced in refs.items():
                self._db[_ref_prefix(entity, client_id, referenced) + intouch_id] = b""
            meta = {"latest": list(latest), "partition": position[0], "refs": refs}
            self._db[_command_key(client_id, intouch_id)] = raw
            self._db[key] = json.dumps(meta).encode()
            return True

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
        found = []
        with self._lock:
            for key in self._db.keys(from_key=prefix):
                if not (isinstance(key, str) and key.startswith(prefix)):
                    break
                found.append(key)
        return found

    def offsets(self) -> dict[int, int]:
        """Next command offset to read per partition."""
        with self._lock:
            raw = self._db.get("__command_offsets")
        return {int(p): o for p, o in json.loads(raw).items()} if raw is not None else {}

    def save_offsets(self, offsets: Mapping[int, int]) -> None:
        with self._lock:
            self._db["__command_offsets"] = json.dumps(dict(offsets)).encode()


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
    ) -> None:
        super().__init__(links, bootstrap, kafka, topic)
        self.codec = codec
        self.states = states
        self.on_user = on_user

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
        return self.states.offsets()

    def _save_offsets(self, offsets: Mapping[int, int]) -> None:
        self.states.save_offsets(offsets)
