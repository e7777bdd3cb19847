"""From a turned-up tenant to its receiver client: resolved secret, adapter config, registry."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path
from typing import Literal, cast
from urllib.parse import urlsplit

from pydantic import ValidationError

from adapters.base import ReceiverClient
from adapters.config import ReceiverConfig
from adapters.errors import MisconfiguredError
from adapters.http import DEFAULT_TIMEOUTS, AuthConfig, Timeouts
from adapters.options import OptionError, secret_name, typed_options
from adapters.registry import create_adapter, declared_options, saas_base_url
from streams.exceptions import TurnupError
from streams.tenancy.secrets import SecretResolver
from streams.tenancy.tenant import (
    CONNECTOR_OPTIONS,
    Tenant,
    auth_kind_for,
    register_embedded_profile,
)


def receiver_config_for(
    tenant: Tenant, resolver: SecretResolver, timeouts: Timeouts = DEFAULT_TIMEOUTS
) -> ReceiverConfig:
    """The adapter config of a tenant, its secret resolved now (env or secret file)."""
    register_embedded_profile(tenant)
    connection = tenant.connection
    saas = saas_base_url(tenant.adapter)
    hosted = connection is not None and connection.host is not None
    if not hosted and saas is None:
        raise TurnupError(
            f"client {tenant.client_id}: adapter {tenant.adapter!r} needs a receiver host, "
            "and the turn-up has none; turn it up again with --host"
        )
    scheme: str
    if connection is not None and connection.host is not None:
        scheme, host, base_path = connection.scheme, connection.host, connection.base_path or ""
    else:
        assert saas is not None
        address = urlsplit(saas)
        scheme, host, base_path = address.scheme, address.netloc, address.path
    kind = auth_kind_for(tenant)
    secret = None
    if kind != "none" and connection is not None and connection.secret_ref is not None:
        secret = resolver.resolve(connection.secret_ref)
    declared = declared_options(tenant.adapter)
    given = {k: v for k, v in tenant.options.items() if k not in CONNECTOR_OPTIONS}
    try:
        options = typed_options(declared, given)
        secrets = {
            spec.name: resolver.resolve(secret_name(spec, given[spec.name]))
            for spec in declared
            if spec.secret and spec.name in given
        }
    except OptionError as exc:
        raise TurnupError(f"client {tenant.client_id}: {exc}") from None
    try:
        return ReceiverConfig(
            scheme=cast(Literal["http", "https"], scheme),
            host=host,
            base_path=base_path,
            receiver_client_id=tenant.receiver_client_id,
            auth=AuthConfig(
                kind=kind,
                username=connection.username if kind == "basic" and connection else None,
                secret=secret,
            ),
            options=options,
            secrets=secrets,
            timeouts=timeouts,
        )
    except ValidationError as exc:
        # Messages only: pydantic's text repeats the inputs.
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors(include_input=False)
        )
        raise TurnupError(f"client {tenant.client_id}: {problems}") from None


def open_receiver(
    tenant: Tenant, resolver: SecretResolver, timeouts: Timeouts = DEFAULT_TIMEOUTS
) -> ReceiverClient:
    """The tenant's receiver client from the adapter registry; close it with `aclose()`."""
    config = receiver_config_for(tenant, resolver, timeouts)
    try:
        return create_adapter(tenant.adapter, config)
    except MisconfiguredError as exc:
        raise TurnupError(f"client {tenant.client_id}: {exc}") from exc


class ReceiverPool:
    """One receiver client per tenant, rebuilt when the tenant's turn-up changes."""

    def __init__(self, secrets_dir: Path | None, timeouts: Timeouts = DEFAULT_TIMEOUTS) -> None:
        self.resolver = SecretResolver(secrets_dir)
        self.timeouts = timeouts
        self._clients: dict[str, tuple[dt.datetime, ReceiverClient]] = {}
        self._retired: set[asyncio.Task[None]] = set()

    def get(self, tenant: Tenant) -> ReceiverClient:
        cached = self._clients.get(tenant.client_id)
        if cached is not None and cached[0] == tenant.configured_at:
            return cached[1]
        client = open_receiver(tenant, self.resolver, self.timeouts)
        if cached is not None:
            task = asyncio.get_running_loop().create_task(cached[1].aclose())
            self._retired.add(task)
            task.add_done_callback(self._retired.discard)
        self._clients[tenant.client_id] = (tenant.configured_at, client)
        return client

    async def aclose(self) -> None:
        for _, client in self._clients.values():
            await client.aclose()
        self._clients.clear()
