"""How a reference receiver is set up: its mode (which calls it offers), auth and seed data."""

from __future__ import annotations

import enum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from adapters.http import AuthConfig
from adapters.reference.faults import NO_FAULTS, FaultSpec

DEFAULT_BASE_PATH = "/api/v1"
DEFAULT_CLIENTS: dict[str, list[str]] = {"C100": ["CL1", "CL2"], "C200": ["CL9"]}


class ReceiverMode(enum.StrEnum):
    """Which calls the receiver offers; each mode matches one profile in adapters/profiles."""

    FULL = "full"
    SAVE_ONLY = "save-only"
    LEAD_SOURCES_LIST_ONLY = "lead-sources-list-only"
    LEAD_SOURCES_CREATE_ONLY = "lead-sources-create-only"
    NO_STAFF = "no-staff"
    STAFF_BY_EMAIL_ONLY = "staff-by-email-only"
    NO_LEAD_SOURCE_UPDATE = "no-lead-source-update"
    NO_CONVERT = "no-convert"
    NO_EXTERNAL_ID = "no-external-id"
    IDEMPOTENT = "idempotent"
    #: Another platform's shape (adapters/reference/contacts.py) over the same store.
    CONTACTS = "contacts"

    @property
    def profile_name(self) -> str:
        """The adapter profile written for this mode."""
        return "reference" if self is ReceiverMode.FULL else f"reference-{self.value}"


ROUTES = (
    "save_prospect",
    "create_prospect",
    "update_prospect",
    "save_member",
    "create_member",
    "update_member",
    "convert_prospect",
    "list_staff",
    "staff_by_email",
    "list_lead_sources",
    "create_lead_source",
    "update_lead_source",
    "find_person",
)

MODE_ABSENT_ROUTES: dict[ReceiverMode, frozenset[str]] = {
    ReceiverMode.FULL: frozenset(),
    ReceiverMode.SAVE_ONLY: frozenset(
        {"create_prospect", "update_prospect", "create_member", "update_member"}
    ),
    ReceiverMode.LEAD_SOURCES_LIST_ONLY: frozenset({"create_lead_source", "update_lead_source"}),
    ReceiverMode.LEAD_SOURCES_CREATE_ONLY: frozenset({"list_lead_sources", "update_lead_source"}),
    ReceiverMode.NO_STAFF: frozenset({"list_staff", "staff_by_email"}),
    ReceiverMode.STAFF_BY_EMAIL_ONLY: frozenset({"list_staff"}),
    ReceiverMode.NO_LEAD_SOURCE_UPDATE: frozenset({"update_lead_source"}),
    ReceiverMode.NO_CONVERT: frozenset({"convert_prospect"}),
    # Every call; its profile sends no external ID, so people are found by email only.
    ReceiverMode.NO_EXTERNAL_ID: frozenset(),
    # No lookup: a repeated create is made harmless by its idempotency key alone.
    ReceiverMode.IDEMPOTENT: frozenset({"find_person"}),
    ReceiverMode.CONTACTS: frozenset(
        {
            "create_prospect",
            "update_prospect",
            "create_member",
            "update_member",
            "list_staff",
            "create_lead_source",
            "update_lead_source",
        }
    ),
}


class ReferenceAuth(BaseModel):
    """What the receiver demands of callers; `none` lets everyone in."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["none", "basic", "bearer", "api_key"] = "none"
    username: str = "connector"
    secret: SecretStr = SecretStr("")
    header: str = "X-Api-Key"

    def as_client_auth(self) -> AuthConfig:
        """The matching credentials for an adapter."""
        if self.kind == "none":
            return AuthConfig()
        return AuthConfig(
            kind=self.kind, username=self.username, secret=self.secret, header=self.header
        )


class ReferenceConfig(BaseModel):
    """How to start a reference receiver."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(default=0, ge=0, le=65535, description="0 picks a free port.")
    base_path: str = DEFAULT_BASE_PATH
    mode: ReceiverMode = ReceiverMode.FULL
    auth: ReferenceAuth = Field(default_factory=ReferenceAuth)
    clients: dict[str, list[str]] = Field(default_factory=lambda: dict(DEFAULT_CLIENTS))
    faults: FaultSpec = NO_FAULTS
    route_faults: dict[str, FaultSpec] = Field(default_factory=dict)
    seed: int | None = Field(default=None, description="Random seed of fault draws.")
