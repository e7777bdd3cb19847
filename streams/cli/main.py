"""The `connector` command line: one group whose commands are imported when they are called."""

from __future__ import annotations

import importlib

import click
from pydantic import AliasChoices, ValidationError
from pydantic_settings import BaseSettings

from streams.settings import Settings

# Each command is imported only when it is called (keeps `kafka status` fast).
LAZY_COMMANDS = {
    "receiver": "adapters.reference.cli:receiver",
    "turnup": "streams.cli.tenants:turnup",
    "tenants": "streams.cli.tenants:tenants",
    "generate": "demo.generate:generate",
    "worker": "streams.cli.worker:worker",
    "lag-exporter": "streams.cli.exporter:lag_exporter",
    "demo": "demo.command:demo",
    "kafka": "streams.cli.kafka:kafka",
    "topics": "streams.cli.kafka:topics",
    "schemas": "streams.cli.schemas:schemas",
    "lag": "streams.cli.lag:lag",
    "replay": "streams.cli.replay:replay",
    "dlq": "streams.cli.dlq:dlq",
    "links": "streams.cli.links:links",
}


def settings_errors(exc: ValidationError) -> list[str]:
    """One line per bad environment value: the variable, the value and what is allowed."""
    from streams import settings as settings_module

    model = getattr(settings_module, exc.title, None)
    lines = []
    for error in exc.errors():
        field = str(error["loc"][0]) if error["loc"] else ""
        name = field.upper()
        if isinstance(model, type) and issubclass(model, BaseSettings):
            info = model.model_fields.get(field)
            alias = info.validation_alias if info is not None else None
            if isinstance(alias, AliasChoices) and alias.choices:
                name = str(alias.choices[0])
            else:
                name = f"{model.model_config.get('env_prefix', '')}{field}".upper()
        value = error.get("input")
        shown = "" if isinstance(value, dict) else f"={value!r}"
        lines.append(f"{name}{shown}: {error['msg']}")
    return lines


class LazyGroup(click.Group):
    """A group whose extra commands are imported on first use; a bad setting in the
    environment is one line per variable, not a traceback."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except ValidationError as exc:
            for line in settings_errors(exc):
                click.echo(f"error: {line}", err=True)
            ctx.exit(2)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *LAZY_COMMANDS])

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in LAZY_COMMANDS:
            module_name, attr = LAZY_COMMANDS[cmd_name].split(":")
            try:
                module = importlib.import_module(module_name)
            except ModuleNotFoundError as exc:
                if exc.name != module_name:
                    raise
                return None
            command: click.Command = getattr(module, attr)
            return command
        return super().get_command(ctx, cmd_name)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="intouch-connector", prog_name="connector")
@click.pass_context
def main(ctx: click.Context) -> None:
    """Keep club-management platforms in sync with InTouch, on Apache Kafka."""
    settings = Settings()
    settings.validate_all()
    ctx.obj = settings
