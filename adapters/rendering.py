"""Requests rendered from a profile, and values read back from the receiver's answers."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from adapters.errors import PermanentError, ResponseShapeError
from adapters.fields import FieldMap
from adapters.profile import PLACEHOLDER, CallSpec

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
    """Set `value` at a dotted key; a numeric part is an array index (`phones.0.number`)."""
    parts = dotted.split(".")
    node: Any = target
    for part, following in itertools.pairwise(parts):
        empty: Any = [] if following.isdigit() else {}
        node = _slot(node, part, empty)
    leaf = parts[-1]
    if isinstance(node, list):
        _slot(node, leaf, None)
        node[int(leaf)] = value
    else:
        node[leaf] = value


def _slot(node: Any, part: str, empty: Any) -> Any:
    if isinstance(node, list):
        index = int(part)
        while len(node) <= index:
            node.append(None)
        if node[index] is None:
            node[index] = empty
        return node[index]
    if node.get(part) is None:
        node[part] = empty
    return node[part]


def _wire(value: Any) -> Any:
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def render_body(spec: CallSpec, values: Values, what: str = "request") -> dict[str, Any]:
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
            value = mapping.convert(values.get(ours), what)
            if value is None and spec.omit_none:
                continue
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
    """A receiver ID of any JSON type (text, UUID, integer, integral float) as our text."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, str | int) or value == "":
        raise ResponseShapeError(f"{what}: no receiver ID at {where!r} in the response")
    return str(value)


def optional_text(value: Any) -> str | None:
    return None if value is None else str(value)
