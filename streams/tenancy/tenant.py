"""A tenant (guide, 'Turnup'): its value types, its Avro record and the auth it asks for."""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal, cast, get_args

from pydantic import ValidationError

from adapters.base import ClubRef
from adapters.http import AuthKind
from adapters.profile import ReceiverProfile
from adapters.registry import get_factory, register_profile
from streams.exceptions import TurnupError

Scheme = Literal["http", "https"]
SCHEMES: tuple[str, ...] = get_args(Scheme)
AUTH_KINDS: tuple[str, ...] = get_args(AuthKind)

#: Option that picks the auth variant when the receiver accepts several (e.g. bearer vs api_key).
AUTH_OPTION = "auth"

#: Option capping the calls a second the connector makes to this tenant's receiver.
RATE_LIMIT_OPTION = "rate_limit"

#: Options the connector reads itself; the others are the adapter's.
CONNECTOR_OPTIONS = frozenset({AUTH_OPTION, RATE_LIMIT_OPTION})


def rate_limit_of(tenant: Tenant) -> float | None:
    """The tenant's calls-a-second cap, if its turn-up sets one (validated at turn-up)."""
    value = tenant.options.get(RATE_LIMIT_OPTION)
    return None if value is None else float(value)


@dataclass(frozen=True)
class Connection:
    """How to reach a receiver: its host (None for a full-SaaS platform, whose address is the
    adapter's) and credentials; the password is named by `secret_ref`, never held."""

    host: str | None
    scheme: Scheme = "https"
    username: str | None = None
    secret_ref: str | None = None
    base_path: str | None = None

    @property
    def base_url(self) -> str:
        """Scheme, host and base path, for people (the adapter builds its own)."""
        if self.host is None:
            return "(the platform's own address)"
        return f"{self.scheme}://{self.host}{self.base_path or ''}"


@dataclass(frozen=True)
class Tenant:
    """One InTouch client turned up on one receiver."""

    client_id: str
    receiver_client_id: str
    adapter: str
    #: InTouch club ID -> the club's ID in the receiver.
    clubs: Mapping[str, str]
    #: None for full SaaS receivers.
    connection: Connection | None
    options: Mapping[str, str] = field(default_factory=dict)
    configured_at: dt.datetime = field(default_factory=lambda: now_millis())
    #: A REST profile turned up with the client (JSON), registered as `adapter` by each worker.
    profile: str | None = None

    def __post_init__(self) -> None:
        # Read-only views: a tenant is shared by every agent of a worker.
        object.__setattr__(self, "clubs", MappingProxyType(dict(self.clubs)))
        object.__setattr__(self, "options", MappingProxyType(dict(self.options)))

    def club_ref(self, intouch_club_id: str) -> ClubRef | None:
        """The club as adapters take it, or None when the club is not turned up."""
        receiver_club_id = self.clubs.get(intouch_club_id)
        if receiver_club_id is None:
            return None
        return ClubRef(intouch_club_id, receiver_club_id)


def now_millis() -> dt.datetime:
    """Now in UTC at the millisecond, the precision the record keeps."""
    now = dt.datetime.now(dt.UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


# -- the Avro record ----------------------------------------------------------------------------


def tenant_to_record(tenant: Tenant) -> dict[str, Any]:
    """The `TenantConfigured` record of a tenant (secret named, never included)."""
    connection = tenant.connection
    return {
        "client_id": tenant.client_id,
        "receiver_client_id": tenant.receiver_client_id,
        "adapter": tenant.adapter,
        "clubs": [
            {"intouch_club_id": intouch, "receiver_club_id": receiver}
            for intouch, receiver in tenant.clubs.items()
        ],
        "connection": None
        if connection is None
        else {
            "host": connection.host,
            "scheme": connection.scheme,
            "username": connection.username,
            "secret_ref": connection.secret_ref,
            "base_path": connection.base_path,
        },
        "options": dict(tenant.options),
        "configured_at": tenant.configured_at,
        "profile": tenant.profile,
    }


def tenant_from_record(record: Mapping[str, Any]) -> Tenant:
    """A tenant from a decoded `TenantConfigured` record."""
    raw = record.get("connection")
    connection = None
    if raw is not None:
        connection = Connection(
            host=raw["host"],
            scheme=cast(Scheme, raw["scheme"]),
            username=raw.get("username"),
            secret_ref=raw.get("secret_ref"),
            base_path=raw.get("base_path"),
        )
    configured_at: dt.datetime = record["configured_at"]
    if configured_at.tzinfo is None:
        configured_at = configured_at.replace(tzinfo=dt.UTC)
    return Tenant(
        client_id=record["client_id"],
        receiver_client_id=record["receiver_client_id"],
        adapter=record["adapter"],
        clubs={c["intouch_club_id"]: c["receiver_club_id"] for c in record["clubs"]},
        connection=connection,
        options=dict(record.get("options") or {}),
        configured_at=configured_at,
        profile=record.get("profile"),
    )


def embedded_profile_name(client_id: str, profile_name: str) -> str:
    """The adapter name of a profile turned up with one client: its own name, scoped to the
    client, so two clients' files never share (or shadow) a name."""
    client = re.sub(r"[^a-z0-9_.-]+", "-", client_id.lower()).strip("-") or "client"
    return f"{profile_name}.client-{client}"


def register_embedded_profile(tenant: Tenant) -> None:
    """Register the profile a tenant was turned up with (a no-op for registered adapters)."""
    if tenant.profile is None:
        return
    try:
        profile = ReceiverProfile.model_validate_json(tenant.profile)
    except ValidationError as exc:
        raise TurnupError(
            f"client {tenant.client_id}: its turned-up profile is not valid: "
            f"{exc.error_count()} problem(s), first: {exc.errors(include_input=False)[0]['msg']}"
        ) from None
    if profile.name != tenant.adapter:
        raise TurnupError(
            f"client {tenant.client_id}: its profile is named {profile.name!r}, "
            f"not {tenant.adapter!r}"
        )
    register_profile(profile, replace=True)


def tenant_to_json(tenant: Tenant) -> dict[str, Any]:
    """The record as JSON-ready data for people (`tenants show`)."""
    data = tenant_to_record(tenant)
    data["clubs"] = dict(tenant.clubs)
    data["configured_at"] = tenant.configured_at.isoformat()
    return data


# -- what the adapter registry tells us ------------------------------------------------------


def adapter_profile(adapter: str) -> ReceiverProfile | None:
    """The REST profile behind a registered adapter name, None for hand-written adapters.

    The registry exposes factories only; REST profiles are registered as
    `functools.partial(RestReceiverClient, profile)`, so the profile is read from there.
    """
    factory = get_factory(adapter)
    if isinstance(factory, functools.partial) and factory.args:
        profile = factory.args[0]
        if isinstance(profile, ReceiverProfile):
            return profile
    return None


def accepted_auth(adapter: str) -> tuple[str, ...]:
    """Auth variants the adapter takes; every variant when it does not declare them."""
    profile = adapter_profile(adapter)
    return tuple(profile.auth) if profile is not None else AUTH_KINDS


def auth_kind_for(tenant: Tenant) -> AuthKind:
    """Which auth the tenant's username and secret become, as the adapter asks for it."""
    accepted = accepted_auth(tenant.adapter)
    connection = tenant.connection
    has_secret = connection is not None and connection.secret_ref is not None
    has_user = connection is not None and connection.username is not None
    wanted = tenant.options.get(AUTH_OPTION)
    if wanted is not None:
        if wanted not in accepted:
            raise TurnupError(
                f"option {AUTH_OPTION}={wanted!r}: adapter {tenant.adapter!r} takes "
                f"{', '.join(accepted)}"
            )
        chosen = cast(AuthKind, wanted)
        if chosen != "none" and not has_secret:
            raise TurnupError(f"option {AUTH_OPTION}={chosen} needs --secret-ref")
        if chosen == "basic" and not has_user:
            raise TurnupError(f"option {AUTH_OPTION}=basic needs --username")
        return chosen
    if not has_secret:
        if "none" in accepted:
            if has_user:
                raise TurnupError("--username needs --secret-ref naming the password")
            return "none"
        raise TurnupError(
            f"adapter {tenant.adapter!r} needs auth ({', '.join(accepted)}): "
            "give --secret-ref naming the secret (and --username for basic auth)"
        )
    if has_user:
        if "basic" in accepted:
            return "basic"
        raise TurnupError(
            f"adapter {tenant.adapter!r} takes no username (auth {', '.join(accepted)}): "
            "drop --username"
        )
    for kind in ("bearer", "api_key"):
        if kind in accepted:
            return cast(AuthKind, kind)
    raise TurnupError(
        f"adapter {tenant.adapter!r} takes basic auth only: give --username with --secret-ref"
    )
