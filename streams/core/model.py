"""Values the core shares: records, entities, outcome statuses and what a link table knows."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

#: A decoded Avro record: the shape every topic's values and keys take in Python.
Record = dict[str, Any]

#: The guide's person fields, in the order of UserChanged.
PERSON_FIELDS = (
    "first_name",
    "last_name",
    "status",
    "birthdate",
    "gender",
    "address1",
    "address2",
    "city",
    "zipcode",
    "state",
    "country",
    "mobile_phone",
    "home_phone",
    "work_phone",
    "company",
    "email",
)


class Entity(enum.StrEnum):
    """What an event, command or outcome is about (the `entity` of EntityKey)."""

    USER = "USER"
    STAFF = "STAFF"
    LEAD_SOURCE = "LEAD_SOURCE"


class Status(enum.StrEnum):
    """An outcome's status (OutcomeStatus in Outcome.avsc)."""

    PENDING_CREATE = "PENDING_CREATE"
    LINKED = "LINKED"
    SUCCEEDED = "SUCCEEDED"
    SKIPPED = "SKIPPED"
    FAILED = "FAILED"
    UNLINKED = "UNLINKED"
    UNKNOWN = "UNKNOWN"
    PARKED = "PARKED"
    #: The creating call after a PENDING_CREATE marker was refused in a way that proves the
    #: receiver made nothing (`decisions.left_nothing`): the marker is void.
    NOT_APPLIED = "NOT_APPLIED"


#: Outcomes that settle a link: its receiver ID (none for UNLINKED), version and fingerprint.
SETTLING_STATUSES = frozenset({Status.LINKED, Status.SUCCEEDED, Status.UNLINKED})

#: Outcomes that end a command for good (a parked one is no longer waiting).
FINAL_STATUSES = SETTLING_STATUSES | {Status.SKIPPED, Status.FAILED}

_ENTITY_OF_KIND = {"LINK_STAFF": Entity.STAFF, "SYNC_LEAD_SOURCE": Entity.LEAD_SOURCE}


def entity_of(record: Mapping[str, Any]) -> Entity:
    """The entity of a command (by its kind) or of an outcome (its `entity` field)."""
    kind = record.get("kind")
    if kind is not None:
        return _ENTITY_OF_KIND.get(str(kind), Entity.USER)
    return Entity(record.get("entity", Entity.USER))


@dataclass(frozen=True)
class Pending:
    """A creating call (create, save, convert) that started and has not settled: its
    outcome is unknown until a later attempt reconciles it with the receiver."""

    call: str
    #: When the call started (epoch seconds, on its writer's clock): a late apply can land up
    #: to its timeout later.
    at: float
    #: The command whose call of this name was the first in doubt (None in rows written
    #: before it was kept): every repeat sends that command's idempotency key, so a newer
    #: command repeating it blind is deduplicated against the call that may have landed.
    command_id: str | None = None
    #: When this process first held the marker, on its own monotonic clock (None: unknown).
    #: The marker is written before the call starts, so the call is at most this old: a
    #: measure of its age that no difference between two hosts' clocks can shorten.
    noticed: float | None = None


@dataclass(frozen=True)
class UserLink:
    """What the link table knows of one user in one receiver."""

    receiver_id: str | None = None
    user_type: str | None = None
    version: int = -1
    fingerprint: str | None = None
    pending: Pending | None = None


@dataclass(frozen=True)
class EntityLink:
    """A staff or lead-source link; `receiver_id` None means 'looked, no match'."""

    receiver_id: str | None
    version: int
    fingerprint: str | None
    pending: Pending | None = None


def is_stale(version: int, link: UserLink | EntityLink | None) -> bool:
    """The one version rule: a change no newer than the applied one never overwrites it."""
    return link is not None and version <= link.version
