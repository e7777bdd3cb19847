"""Custom options an adapter declares, and the check of a turn-up's options against them."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from adapters.errors import MisconfiguredError

OptionType = Literal["string", "integer", "number", "boolean"]

#: A secret option's value in a turn-up is this prefix and the secret's name, never the secret.
SECRET_PREFIX = "secret:"
_SECRET_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_TRUE = frozenset({"true", "yes", "1", "on"})
_FALSE = frozenset({"false", "no", "0", "off"})


class OptionSpec(BaseModel):
    """One custom option of an adapter: its name, type, whether it is required or secret."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    type: OptionType = "string"
    required: bool = False
    default: str | int | float | bool | None = None
    secret: bool = Field(default=False, description="Given by reference only, resolved by workers.")
    description: str = ""

    @model_validator(mode="after")
    def _consistent(self) -> OptionSpec:
        if self.secret and self.default is not None:
            raise ValueError(f"option {self.name}: a secret option has no default")
        if self.required and self.default is not None:
            raise ValueError(f"option {self.name}: required and default exclude each other")
        if self.default is not None:
            text = str(self.default)
            parse_option(self, text.lower() if self.type == "boolean" else text)
        return self


class OptionError(MisconfiguredError):
    """A turn-up's custom options do not match what the adapter declares."""


def parse_option(spec: OptionSpec, text: str) -> str | int | float | bool:
    """The typed value of an option given as text; an `OptionError` naming the option."""
    if spec.secret:
        return secret_name(spec, text)
    try:
        if spec.type == "integer":
            return int(text)
        if spec.type == "number":
            return float(text)
    except ValueError:
        article = "an" if spec.type == "integer" else "a"
        raise OptionError(f"option {spec.name}: {text!r} is not {article} {spec.type}") from None
    if spec.type == "boolean":
        lowered = text.strip().lower()
        if lowered in _TRUE | _FALSE:
            return lowered in _TRUE
        raise OptionError(f"option {spec.name}: {text!r} is not a boolean (true or false)")
    return text


def secret_name(spec: OptionSpec, text: str) -> str:
    """The secret's name in `secret:NAME`; the value is never echoed (it may be the secret)."""
    name = text.removeprefix(SECRET_PREFIX) if text.startswith(SECRET_PREFIX) else None
    if name is None or not _SECRET_NAME.fullmatch(name):
        raise OptionError(
            f"option {spec.name} is a secret: give it by reference, "
            f"{spec.name}={SECRET_PREFIX}NAME where NAME is an environment variable "
            "or a file in CONNECTOR_SECRETS_DIR "
            "(the value given is not shown)"
        )
    return name


def check_options(
    adapter: str, declared: Sequence[OptionSpec], given: Mapping[str, str]
) -> dict[str, str]:
    """The options to record: each known and well-typed, required ones present, secrets as refs."""
    by_name = {spec.name: spec for spec in declared}
    unknown = sorted(set(given) - set(by_name))
    if unknown:
        known = ", ".join(sorted(by_name)) or "none"
        raise OptionError(f"adapter {adapter!r} has no option(s) {unknown}; it declares: {known}")
    missing = sorted(s.name for s in declared if s.required and s.name not in given)
    if missing:
        raise OptionError(f"adapter {adapter!r} requires option(s) {missing}")
    checked: dict[str, str] = {}
    for name, text in given.items():
        spec = by_name[name]
        value = parse_option(spec, text)
        checked[name] = f"{SECRET_PREFIX}{value}" if spec.secret else text
    return checked


def typed_options(
    declared: Sequence[OptionSpec], given: Mapping[str, str]
) -> dict[str, str | int | float | bool | None]:
    """Non-secret options as their declared types, defaults filled in."""
    values: dict[str, str | int | float | bool | None] = {}
    for spec in declared:
        if spec.secret:
            continue
        text = given.get(spec.name)
        values[spec.name] = spec.default if text is None else parse_option(spec, text)
    return values
