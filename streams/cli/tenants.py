"""`connector turnup` and `connector tenants`: publish, list, show and remove tenants."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import click

from adapters.errors import AdapterError
from adapters.profile import ReceiverProfile
from streams.cli.common import fail, resolve_bootstrap
from streams.exceptions import ConnectorError, TurnupError
from streams.settings import Settings
from streams.tenancy.directory import TenantDirectory
from streams.tenancy.publishing import publish_tenant, remove_tenant
from streams.tenancy.tenant import Tenant, tenant_to_json
from streams.tenancy.turnup import load_turnup_file, parse_pair, validate_turnup

DEFAULT_CLI_TIMEOUT = 30.0


def _tenants_topic(settings: Settings) -> str:
    return settings.topics.name(settings.topics.tenants_topic)


def _current_directory(settings: Settings, timeout: float) -> list[Tenant]:
    """Every tenant, read to the end within `timeout` (an unreachable broker included)."""
    found = TenantDirectory(resolve_bootstrap(settings), settings.kafka, _tenants_topic(settings))
    try:
        found.start(timeout)
        found.wait_until_current(timeout)
        return found.all()
    finally:
        found.stop()


def embedded_profile(client_id: str, path: Path) -> ReceiverProfile:
    """The profile of a file, named for this client and registered here for validation."""
    from adapters.profile import load_profile
    from adapters.registry import register_profile
    from streams.tenancy.tenant import embedded_profile_name

    try:
        loaded = load_profile(path)
    except AdapterError as exc:
        raise TurnupError(str(exc)) from None
    profile = loaded.model_copy(update={"name": embedded_profile_name(client_id, loaded.name)})
    register_profile(profile, replace=True)
    return profile


@click.command("turnup")
@click.option("--file", "file", type=click.Path(path_type=Path, dir_okay=False), help="YAML.")
@click.option("--client", "client_id", help="The client's ID in InTouch.")
@click.option("--receiver-client", "receiver_client_id", help="The client's ID in the receiver.")
@click.option("--adapter", help="Adapter or REST profile name from the adapter registry.")
@click.option(
    "--profile-file",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    help="A REST profile of your own, turned up with the client (instead of --adapter): "
    "workers need no copy of the file.",
)
@click.option("--club", "clubs", multiple=True, metavar="INTOUCH=RECEIVER", help="Repeatable.")
@click.option("--host", help="Receiver host or IP, optionally ':port' (none for SaaS).")
@click.option("--scheme", default=None, help="http or https (default https).")
@click.option("--username", help="API user of the receiver.")
@click.option("--secret-ref", help="Name of the secret: env var or file in CONNECTOR_SECRETS_DIR.")
@click.option("--base-path", help="Path prefix of the receiver API, e.g. /api/v1.")
@click.option("--option", "options", multiple=True, metavar="KEY=VALUE", help="Repeatable.")
@click.option("--dry-run", is_flag=True, help="Validate and print; publish nothing.")
@click.option("--timeout", type=float, default=DEFAULT_CLI_TIMEOUT, show_default=True)
@click.pass_obj
def turnup(
    settings: Settings,
    file: Path | None,
    client_id: str | None,
    receiver_client_id: str | None,
    adapter: str | None,
    profile_file: Path | None,
    clubs: tuple[str, ...],
    host: str | None,
    scheme: str | None,
    username: str | None,
    secret_ref: str | None,
    base_path: str | None,
    options: tuple[str, ...],
    dry_run: bool,
    timeout: float,
) -> None:
    """Turn up a client: validate it and publish its TenantConfigured (latest per client wins).

    The password is never given here: --secret-ref names it, and each worker reads it from
    its environment or secrets folder.
    """
    flags = {
        "--client": client_id,
        "--receiver-client": receiver_client_id,
        "--adapter": adapter,
        "--profile-file": profile_file,
        "--club": clubs or None,
        "--host": host,
        "--scheme": scheme,
        "--username": username,
        "--secret-ref": secret_ref,
        "--base-path": base_path,
        "--option": options or None,
    }
    try:
        if file is not None:
            given = [flag for flag, value in flags.items() if value is not None]
            if given:
                raise TurnupError(f"--file carries the whole turn-up: drop {', '.join(given)}")
            tenant = load_turnup_file(file)
        else:
            if profile_file is not None:
                if adapter is not None:
                    raise TurnupError("give --adapter or --profile-file, not both")
                if client_id is None:
                    raise TurnupError("missing --client (or give --file)")
                profile = embedded_profile(client_id, profile_file)
                adapter = profile.name
            missing = [
                flag
                for flag in ("--client", "--receiver-client", "--adapter")
                if flags[flag] is None and not (flag == "--adapter" and adapter)
            ]
            if missing:
                raise TurnupError(f"missing {', '.join(missing)} (or give --file)")
            assert client_id is not None and receiver_client_id is not None and adapter
            option_pairs = [parse_pair(text, "--option") for text in options]
            option_names = [name for name, _ in option_pairs]
            repeated = sorted({name for name in option_names if option_names.count(name) > 1})
            if repeated:
                raise TurnupError(f"--option {', '.join(repeated)} given twice: keep one")
            tenant = validate_turnup(
                client_id=client_id,
                receiver_client_id=receiver_client_id,
                adapter=adapter,
                clubs=[parse_pair(text, "--club") for text in clubs],
                host=host,
                scheme=scheme or "https",
                username=username,
                secret_ref=secret_ref,
                base_path=base_path,
                options=dict(option_pairs),
            )
            if profile_file is not None:
                tenant = dataclasses.replace(
                    tenant, profile=profile.model_dump_json(exclude_defaults=True)
                )
    except TurnupError as exc:
        fail(str(exc), 2)
    if dry_run:
        click.echo(json.dumps(tenant_to_json(tenant), indent=2))
        return
    topic = _tenants_topic(settings)
    try:
        published = publish_tenant(
            resolve_bootstrap(settings), settings.kafka, topic, tenant, timeout=timeout
        )
    except ConnectorError as exc:
        fail(str(exc), 1)
    click.echo(json.dumps(tenant_to_json(tenant), indent=2))
    click.echo(
        f"turned up client {tenant.client_id} on {tenant.adapter} with {len(tenant.clubs)} "
        f"club(s): {published.topic} partition {published.partition} offset {published.offset}",
        err=True,
    )


@click.group("tenants")
def tenants() -> None:
    """Tenants turned up on the compacted tenants topic."""


def _clubs_text(tenant: Tenant) -> str:
    return ",".join(f"{intouch}={receiver}" for intouch, receiver in tenant.clubs.items())


@tenants.command("list")
@click.option("--timeout", type=float, default=DEFAULT_CLI_TIMEOUT, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Every tenant's record as a JSON list.")
@click.pass_obj
def tenants_list(settings: Settings, timeout: float, as_json: bool) -> None:
    """A table of every tenant: client, adapter, clubs, host (or JSON with --json)."""
    try:
        found = _current_directory(settings, timeout)
    except ConnectorError as exc:
        fail(str(exc), 1)
    if as_json:
        click.echo(json.dumps([tenant_to_json(t) for t in found], indent=2))
        return
    rows = [("CLIENT", "ADAPTER", "CLUBS", "HOST")]
    rows += [
        (
            t.client_id,
            t.adapter,
            _clubs_text(t),
            t.connection.base_url if t.connection else "-",
        )
        for t in found
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        click.echo("  ".join([*cells, row[3]]))
    if not found:
        click.echo(f"no tenants on {_tenants_topic(settings)}", err=True)


def _find(settings: Settings, client_id: str, timeout: float) -> Tenant:
    try:
        found = {t.client_id: t for t in _current_directory(settings, timeout)}
    except ConnectorError as exc:
        fail(str(exc), 1)
    if client_id not in found:
        fail(f"no tenant {client_id} on {_tenants_topic(settings)}", 1)
    return found[client_id]


@tenants.command("show")
@click.argument("client_id")
@click.option("--timeout", type=float, default=DEFAULT_CLI_TIMEOUT, show_default=True)
@click.pass_obj
def tenants_show(settings: Settings, client_id: str, timeout: float) -> None:
    """One tenant as JSON (its secret appears as the reference, never the value)."""
    click.echo(json.dumps(tenant_to_json(_find(settings, client_id, timeout)), indent=2))


@tenants.command("remove")
@click.argument("client_id")
@click.option("--timeout", type=float, default=DEFAULT_CLI_TIMEOUT, show_default=True)
@click.pass_obj
def tenants_remove(settings: Settings, client_id: str, timeout: float) -> None:
    """Forget a tenant: publish a tombstone for it (workers drop it live)."""
    _find(settings, client_id, timeout)
    try:
        published = remove_tenant(
            resolve_bootstrap(settings),
            settings.kafka,
            _tenants_topic(settings),
            client_id,
            timeout=timeout,
        )
    except ConnectorError as exc:
        fail(str(exc), 1)
    click.echo(
        f"removed client {client_id}: tombstone at {published.topic} partition "
        f"{published.partition} offset {published.offset}",
        err=True,
    )
