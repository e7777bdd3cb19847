"""`connector schemas`: freezing a changed Avro contract as a new registered version."""

from __future__ import annotations

import click

from streams.cli.common import fail


# -- schemas -----------------------------------------------------------------
@click.group()
def schemas() -> None:
    """Avro contracts in schemas/."""


@schemas.command("register")
def schemas_register() -> None:
    """Freeze changed .avsc files as new registry versions, after a compatibility check."""
    from streams.avro.compat import incompatibilities
    from streams.avro.registry import FileRegistry
    from streams.avro.schemas import load_current_schemas

    registry = FileRegistry()
    for subject, schema in load_current_schemas().items():
        problems = incompatibilities(registry, subject, schema)
        if problems:
            fail(f"{subject}: " + "; ".join(problems))
        click.echo(f"{subject}\tid {registry.register(subject, schema)}")
