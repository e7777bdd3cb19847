"""The receiver adapter contract: capabilities, value types and the `ReceiverClient` ABC."""

from __future__ import annotations

import abc
import datetime as dt
import enum
from dataclasses import dataclass
from types import TracebackType
from typing import ClassVar, Literal, Self

from adapters.errors import NotSupported
from adapters.options import OptionSpec

UserStatus = Literal["active", "inactive"]
UserType = Literal["prospect", "member"]


class Capability(enum.StrEnum):
    """One thing a receiver's API can do (the guide's 'required calls')."""

    PROSPECT_CREATE = "prospect_create"
    PROSPECT_UPDATE = "prospect_update"
    PROSPECT_SAVE = "prospect_save"
    MEMBER_CREATE = "member_create"
    MEMBER_UPDATE = "member_update"
    MEMBER_SAVE = "member_save"
    CONVERT_PROSPECT = "convert_prospect"
    STAFF_LIST = "staff_list"
    STAFF_BY_EMAIL = "staff_by_email"
    LEAD_SOURCE_LIST = "lead_source_list"
    LEAD_SOURCE_CREATE = "lead_source_create"
    LEAD_SOURCE_UPDATE = "lead_source_update"
    PERSON_LOOKUP = "person_lookup"
    STAFF_OWNER = "staff_owner"


@dataclass(frozen=True, slots=True)
class ClubRef:
    """One club of the tenant, known by its InTouch ID and its ID in the receiver."""

    intouch_club_id: str
    receiver_club_id: str


@dataclass(frozen=True, slots=True)
class Person:
    """A prospect or member as sent to a receiver: the guide's 16 fields plus links."""

    first_name: str
    last_name: str
    status: UserStatus = "active"
    user_type: UserType = "prospect"
    birthdate: dt.date | None = None
    gender: str | None = None
    address1: str | None = None
    # InTouch has no second address line today; kept so receivers that have one get None.
    address2: str | None = None
    city: str | None = None
    zipcode: str | None = None
    state: str | None = None
    country: str | None = None
    mobile_phone: str | None = None
    home_phone: str | None = None
    work_phone: str | None = None
    company: str | None = None
    email: str | None = None
    intouch_id: str | None = None
    staff_owner_receiver_id: str | None = None
    lead_source_receiver_id: str | None = None


@dataclass(frozen=True, slots=True)
class ReceiverStaff:
    """A staff record as the receiver holds it; the Connector only reads staff."""

    id: str
    email: str | None
    name: str | None = None


@dataclass(frozen=True, slots=True)
class ReceiverPerson:
    """A prospect or member a lookup found, with what tells whose record it is."""

    id: str
    external_id: str | None = None
    email: str | None = None
    user_type: UserType | None = None


@dataclass(frozen=True, slots=True)
class ReceiverLeadSource:
    """A lead source as the receiver holds it."""

    id: str
    name: str


class ReceiverClient(abc.ABC):
    """An async client for one tenant's receiver; every call absent from `capabilities`
    raises `NotSupported` without touching the network. Creating calls take an
    `idempotency_key`, sent where the receiver honours one."""

    #: Registry name of the adapter (profile name for REST receivers), used in messages.
    name: str = "receiver"

    #: Custom options the adapter reads from `ReceiverConfig.options` (and `.secrets`).
    options: ClassVar[tuple[OptionSpec, ...]] = ()

    #: Full-SaaS platforms: their own API address, for tenants turned up without a host.
    base_url: ClassVar[str | None] = None

    @property
    @abc.abstractmethod
    def capabilities(self) -> frozenset[Capability]:
        """What this receiver can do."""

    # Prospects -------------------------------------------------------------------------------

    async def create_prospect(
        self, club: ClubRef, person: Person, *, idempotency_key: str | None = None
    ) -> str:
        """Create a prospect; return its receiver ID."""
        raise NotSupported(Capability.PROSPECT_CREATE, self.name)

    async def update_prospect(self, club: ClubRef, receiver_id: str, person: Person) -> None:
        """Update the prospect with `receiver_id`."""
        raise NotSupported(Capability.PROSPECT_UPDATE, self.name)

    async def save_prospect(
        self,
        club: ClubRef,
        person: Person,
        receiver_id: str | None,
        *,
        idempotency_key: str | None = None,
    ) -> str:
        """Create or update a prospect in one call; return its receiver ID."""
        raise NotSupported(Capability.PROSPECT_SAVE, self.name)

    # Members ---------------------------------------------------------------------------------

    async def create_member(
        self, club: ClubRef, person: Person, *, idempotency_key: str | None = None
    ) -> str:
        """Create a member; return its receiver ID."""
        raise NotSupported(Capability.MEMBER_CREATE, self.name)

    async def update_member(self, club: ClubRef, receiver_id: str, person: Person) -> None:
        """Update the member with `receiver_id`."""
        raise NotSupported(Capability.MEMBER_UPDATE, self.name)

    async def save_member(
        self,
        club: ClubRef,
        person: Person,
        receiver_id: str | None,
        *,
        idempotency_key: str | None = None,
    ) -> str:
        """Create or update a member in one call; return its receiver ID."""
        raise NotSupported(Capability.MEMBER_SAVE, self.name)

    async def convert_prospect(
        self,
        club: ClubRef,
        receiver_id: str,
        person: Person,
        *,
        idempotency_key: str | None = None,
    ) -> str:
        """Turn a prospect into a member; return the member's receiver ID (may be the same)."""
        raise NotSupported(Capability.CONVERT_PROSPECT, self.name)

    # Staff (read only: the Connector never creates or updates staff) ---------------------------

    async def list_staff(self, club: ClubRef | None) -> list[ReceiverStaff]:
        """Every staff of the client, or of one club when `club` is given."""
        raise NotSupported(Capability.STAFF_LIST, self.name)

    async def find_staff_by_email(self, email: str) -> ReceiverStaff | None:
        """The staff with this email, or None."""
        raise NotSupported(Capability.STAFF_BY_EMAIL, self.name)

    # Lead sources ----------------------------------------------------------------------------

    async def list_lead_sources(self) -> list[ReceiverLeadSource]:
        """Every lead source of the client."""
        raise NotSupported(Capability.LEAD_SOURCE_LIST, self.name)

    async def create_lead_source(self, name: str, *, idempotency_key: str | None = None) -> str:
        """Create a lead source; return its receiver ID."""
        raise NotSupported(Capability.LEAD_SOURCE_CREATE, self.name)

    async def update_lead_source(self, receiver_id: str, name: str) -> None:
        """Rename the lead source with `receiver_id`."""
        raise NotSupported(Capability.LEAD_SOURCE_UPDATE, self.name)

    # Reconciliation --------------------------------------------------------------------------

    async def find_people(self, email: str | None, external_id: str | None) -> list[ReceiverPerson]:
        """People matching the InTouch ID (`external_id`) or the email; the caller decides
        which, if any, is provably the one it looks for."""
        raise NotSupported(Capability.PERSON_LOOKUP, self.name)

    @property
    def stores_external_id(self) -> bool:
        """Whether the receiver keeps our InTouch ID on its people (and lookups return it)."""
        return False

    @property
    def takes_idempotency_keys(self) -> bool:
        """Whether a repeated creating call with the same key is harmless to the receiver."""
        return False

    # Lifecycle -------------------------------------------------------------------------------

    @abc.abstractmethod
    async def aclose(self) -> None:
        """Release pooled connections."""

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
