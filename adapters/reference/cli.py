"""`connector receiver serve`: run the reference receiver until Ctrl-C."""

from __future__ import annotations

import asyncio
import contextlib

import click
from pydantic import SecretStr

from adapters.reference.config import (
    DEFAULT_BASE_PATH,
    ReceiverMode,
    ReferenceAuth,
    ReferenceConfig,
)
from adapters.reference.faults import FaultSpec
from adapters.reference.server import ReferenceReceiver

receiver = click.Group("receiver", help="The reference receiver used by the demo and the tests.")


@receiver.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8765, show_default=True, type=int, help="0 picks a free port.")
@click.option("--base-path", default=DEFAULT_BASE_PATH, show_default=True)
@click.option(
    "--mode",
    type=click.Choice([m.value for m in ReceiverMode]),
    default=ReceiverMode.FULL.value,
    show_default=True,
)
@click.option(
    "--client",
    "clients",
    multiple=True,
    metavar="CLIENT:CLUB[,CLUB...]",
    help="Seed a client and its clubs (repeatable); default C100:CL1,CL2 and C200:CL9.",
)
@click.option("--auth", type=click.Choice(["none", "basic", "bearer", "api_key"]), default="none")
@click.option("--username", default="connector", show_default=True)
@click.option(
    "--secret", envvar="REFERENCE_RECEIVER_SECRET", default="", help="Password/token/API key."
)
@click.option("--latency-ms", type=float, default=0.0, show_default=True)
@click.option("--jitter-ms", type=float, default=0.0, show_default=True)
@click.option("--error-rate", type=float, default=0.0, show_default=True, help="Share of 5xx.")
@click.option("--throttle-rate", type=float, default=0.0, show_default=True, help="Share of 429.")
@click.option("--retry-after", type=float, default=1.0, show_default=True)
@click.option("--timeout-rate", type=float, default=0.0, show_default=True, help="Share hung.")
@click.option("--hang-s", type=float, default=30.0, show_default=True)
@click.option("--seed", type=int, default=None, help="Random seed of fault draws.")
def serve(
    host: str,
    port: int,
    base_path: str,
    mode: str,
    clients: tuple[str, ...],
    auth: str,
    username: str,
    secret: str,
    latency_ms: float,
    jitter_ms: float,
    error_rate: float,
    throttle_rate: float,
    retry_after: float,
    timeout_rate: float,
    hang_s: float,
    seed: int | None,
) -> None:
    """Serve the reference receiver, print its URL, run until Ctrl-C."""
    seeded: dict[str, list[str]] = {}
    for entry in clients:
        client, _, clubs = entry.partition(":")
        if not client or not clubs:
            raise click.BadParameter(f"{entry!r}: expected CLIENT:CLUB[,CLUB...]")
        seeded[client] = clubs.split(",")
    config = ReferenceConfig(
        host=host,
        port=port,
        base_path=base_path,
        mode=ReceiverMode(mode),
        auth=ReferenceAuth.model_validate(
            {"kind": auth, "username": username, "secret": SecretStr(secret)}
        ),
        faults=FaultSpec(
            latency_ms=latency_ms,
            jitter_ms=jitter_ms,
            error_rate=error_rate,
            throttle_rate=throttle_rate,
            retry_after_s=retry_after,
            timeout_rate=timeout_rate,
            hang_s=hang_s,
        ),
        seed=seed,
        clients=seeded or ReferenceConfig().clients,
    )
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(config))


async def _serve(config: ReferenceConfig) -> None:
    async with ReferenceReceiver(config) as rr:
        click.echo(rr.api_url, nl=True)
        click.echo(
            f"mode={rr.mode.value} admin={rr.url}/_admin/state clients={list(config.clients)}",
            err=True,
        )
        await asyncio.Event().wait()
