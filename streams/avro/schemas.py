"""The Avro contracts in `schemas/`: loaded, their named types inlined, canonicalised."""

from __future__ import annotations

import json
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

from fastavro.schema import parse_schema, to_parsing_canonical_form

from streams.exceptions import SchemaNotRegisteredError

NAMESPACE = "com.intouch.connector"
# Files in dependency order: a schema may name types defined by files before it.
SUBJECTS = (
    "EntityKey",
    "UserChanged",
    "StaffChanged",
    "LeadSourceChanged",
    "Command",
    "Outcome",
    "DeadLetter",
    "TenantConfigured",
)
_PRIMITIVES = {"null", "boolean", "int", "long", "float", "double", "bytes", "string"}

Schema = dict[str, Any]


def schemas_dir() -> Path:
    return Path(str(resources.files("schemas")))


def _expand(node: Any, defs: Mapping[str, Schema], seen: set[str], namespace: str) -> Any:
    """Inline named references so each schema stands alone (Avro defines a name once)."""
    if isinstance(node, str):
        if node in _PRIMITIVES:
            return node
        full = node if "." in node else f"{namespace}.{node}"
        if full in seen:
            return full
        if full not in defs:
            raise SchemaNotRegisteredError(f"schema refers to unknown type {node!r}")
        return _expand(defs[full], defs, seen, namespace)
    if isinstance(node, list):
        return [_expand(item, defs, seen, namespace) for item in node]
    if not isinstance(node, dict):
        return node
    out = dict(node)
    kind = node.get("type")
    if kind in ("record", "enum", "fixed"):
        ns = node.get("namespace", namespace)
        full = node["name"] if "." in node["name"] else f"{ns}.{node['name']}"
        seen.add(full)
        namespace = ns
    if kind == "record":
        out["fields"] = [
            {**field, "type": _expand(field["type"], defs, seen, namespace)}
            for field in node["fields"]
        ]
    elif kind == "array":
        out["items"] = _expand(node["items"], defs, seen, namespace)
    elif kind == "map":
        out["values"] = _expand(node["values"], defs, seen, namespace)
    elif isinstance(kind, dict | list):
        out["type"] = _expand(kind, defs, seen, namespace)
    return out


def _collect(node: Any, namespace: str, defs: dict[str, Schema]) -> None:
    if isinstance(node, list):
        for item in node:
            _collect(item, namespace, defs)
        return
    if not isinstance(node, dict):
        return
    kind = node.get("type")
    if kind in ("record", "enum", "fixed"):
        ns = node.get("namespace", namespace)
        full = node["name"] if "." in node["name"] else f"{ns}.{node['name']}"
        defs[full] = node
        namespace = ns
    for field in node.get("fields", ()):
        _collect(field["type"], namespace, defs)
    for key in ("items", "values"):
        if key in node:
            _collect(node[key], namespace, defs)
    if isinstance(kind, dict | list):
        _collect(kind, namespace, defs)


def load_current_schemas(directory: Path | None = None) -> dict[str, Schema]:
    """The current `.avsc` files, each expanded to stand alone, by subject."""
    directory = directory or schemas_dir()
    raw = {name: json.loads((directory / f"{name}.avsc").read_text()) for name in SUBJECTS}
    defs: dict[str, Schema] = {}
    for name in SUBJECTS:
        _collect(raw[name], NAMESPACE, defs)
    return {name: _expand(raw[name], defs, set(), NAMESPACE) for name in SUBJECTS}


def canonical(schema: Schema) -> str:
    return str(to_parsing_canonical_form(parse_schema(schema, _write_hint=False)))
