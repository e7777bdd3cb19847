"""Checks that every registered version of a subject stays readable by a new reader schema."""

from __future__ import annotations

import io
from typing import Any

import fastavro
from fastavro.schema import parse_schema

from streams.avro.registry import FileRegistry
from streams.avro.schemas import Schema

VARIANTS = 16


def sample_record(schema: Schema, variant: int) -> Any:
    """A value of `schema` that walks union branches and enum symbols as `variant` grows."""
    named: dict[str, Any] = {}

    def gen(node: Any, v: int) -> Any:
        if isinstance(node, list):
            return gen(node[v % len(node)], v // len(node) + v)
        if isinstance(node, str):
            primitive = {
                "null": None,
                "boolean": v % 2 == 0,
                "int": v,
                "long": v * 1000,
                "float": v + 0.5,
                "double": v + 0.25,
                "bytes": bytes([v % 256]) * (v % 5),
                "string": f"s{v}",
            }
            if node in primitive:
                return primitive[node]
            return gen(named[node.rsplit(".", 1)[-1]], v)
        kind = node["type"]
        if kind in ("record", "enum", "fixed"):
            named[node["name"].rsplit(".", 1)[-1]] = node
        if kind == "record":
            return {f["name"]: gen(f["type"], v + i) for i, f in enumerate(node["fields"])}
        if kind == "enum":
            return node["symbols"][v % len(node["symbols"])]
        if kind == "array":
            return [gen(node["items"], v + i) for i in range(v % 3)]
        if kind == "map":
            return {f"k{i}": gen(node["values"], v + i) for i in range(v % 3)}
        if kind == "fixed":
            return b"\0" * node["size"]
        return gen(kind, v)

    return gen(schema, variant)


def incompatibilities(registry: FileRegistry, subject: str, reader: Schema) -> list[str]:
    """Why records written by a registered version of `subject` cannot be read by `reader`."""
    parsed_reader = parse_schema(reader)
    problems = []
    for version in registry.versions(subject):
        writer_schema = registry.schema_by_id(version.id)
        writer = parse_schema(writer_schema)
        for variant in range(VARIANTS):
            out = io.BytesIO()
            fastavro.schemaless_writer(out, writer, sample_record(writer_schema, variant))
            out.seek(0)
            try:
                fastavro.schemaless_reader(out, writer, parsed_reader)
            except Exception as exc:
                problems.append(f"v{version.version} (id {version.id}) is unreadable: {exc}")
                break
    return problems
