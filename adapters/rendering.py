"""Requests rendered from a profile, and values read back from the receiver's answers."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from adapters.errors import PermanentError, ResponseShapeError
from adapters.profile import PLACEHOLDER, CallSpec, FieldMap

Values = Mapping[str, Any]


def render_path(template: str, values: Values, what: str) -> str:
    """Fill `{placeholders}` with URL-quoted values; a missing value is a permanent error."""

    def fill(match: Any) -> str:
        value = values.get(match.group(1))
        if value is None:
            raise PermanentError(f"{what}: no value for {{{match.group(1)}}} in the path")
        return quote(str(value), safe="")

    return PLACEHOLDER.sub(fill, template)


def render_query(query: Mapping[str, str], values: Values) -> dict[str, str]:
    """Query parameters whose placeholders all have values; the others are left out."""
    params: dict[str, str] = {}
    for name, template in query.items():
        wanted = PLACEHOLDER.findall(template)
        if any(values.get(key) is None for key in wanted):
            continue
        params[name] = PLACEHOLDER.sub(lambda m: str(values[m.group(1)]), template)
    return params


def _put(target: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, leaf = dotted.split(".")
    for part in parents:
        target = target.setdefault(part, {})
    target[leaf] = value


def _wire(value: Any) -> Any:
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def render_body(spec: CallSpec, values: Values) -> dict[str, Any]:
    """The JSON body: our values under the receiver's keys, plus the profile's constants."""
    body: dict[str, Any] = {}
    for dotted, constant in spec.static.items():
        _put(body, dotted, constant)
    for ours, mapping in spec.body.items():
        value = _wire(values.get(ours))
        if value is None and spec.omit_none:
            continue
        if isinstance(mapping, FieldMap):
            target = mapping.to
            if isinstance(value, str):
                value = mapping.values.get(value, value)
        else:
            target = mapping
        _put(body, target, value)
    return body


def dig(data: Any, dotted: str) -> Any:
    """The value at a dotted path ('' is the root); None where the path does not exist."""
    if not dotted:
        return data
    for part in dotted.split("."):
        if isinstance(data, Mapping):
            data = data.get(part)
        elif isinstance(data, list) and part.isdigit() and int(part) < len(data):
            data = data[int(part)]
        else:
            return None
    return data


def as_id(value: Any, what: str, where: str) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int) or value == "":
        raise ResponseShapeError(f"{what}: no receiver ID at {where!r} in the response")
    return str(value)


def optional_text(value: Any) -> str | None:
    return None if value is None else str(value)
