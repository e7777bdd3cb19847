"""Avro codecs in the Confluent wire format, behind a small schema registry interface."""

from __future__ import annotations

import io
import json
import struct
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Protocol

import fastavro
import httpx
from fastavro.schema import parse_schema, to_parsing_canonical_form

from streams.exceptions import (
    DecodeError,
    EncodeError,
    SchemaNotRegisteredError,
    UnknownSchemaError,
)

MAGIC_BYTE = 0
HEADER = struct.Struct(">bI")
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
Record = dict[str, Any]


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


class SchemaRegistry(Protocol):
    """Maps standalone schemas to stable integer IDs and back."""

    def id_for(self, subject: str, schema: Schema) -> int: ...

    def schema_by_id(self, schema_id: int) -> Schema: ...


@dataclass(frozen=True)
class RegisteredVersion:
    id: int
    subject: str
    version: int
    path: str


class FileRegistry:
    """IDs kept in `schemas/registry.json`; every registered version is frozen under `versions/`."""

    def __init__(self, directory: Path | None = None) -> None:
        self.directory = directory or schemas_dir()
        self._index_path = self.directory / "registry.json"
        self._versions: list[RegisteredVersion] = []
        self._schemas: dict[int, Schema] = {}
        self._lock = threading.Lock()
        if self._index_path.exists():
            for row in json.loads(self._index_path.read_text())["versions"]:
                self._versions.append(RegisteredVersion(**row))

    def versions(self, subject: str | None = None) -> list[RegisteredVersion]:
        return [v for v in self._versions if subject is None or v.subject == subject]

    def schema_by_id(self, schema_id: int) -> Schema:
        with self._lock:
            if schema_id not in self._schemas:
                match = [v for v in self._versions if v.id == schema_id]
                if not match:
                    raise UnknownSchemaError(f"schema id {schema_id} is not in the file registry")
                path = self.directory / match[0].path
                self._schemas[schema_id] = json.loads(path.read_text())
            return self._schemas[schema_id]

    def id_for(self, subject: str, schema: Schema) -> int:
        wanted = canonical(schema)
        for version in reversed(self.versions(subject)):
            if canonical(self.schema_by_id(version.id)) == wanted:
                return version.id
        raise SchemaNotRegisteredError(
            f"schemas/{subject}.avsc changed but its new version is not registered; "
            "run `connector schemas register` and commit schemas/"
        )

    def register(self, subject: str, schema: Schema) -> int:
        """Freeze a new version of `subject` (idempotent) and return its ID."""
        try:
            return self.id_for(subject, schema)
        except SchemaNotRegisteredError:
            pass
        new_id = max((v.id for v in self._versions), default=0) + 1
        number = len(self.versions(subject)) + 1
        rel = f"versions/{subject}/v{number}.avsc"
        target = self.directory / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(schema, indent=2) + "\n")
        self._versions.append(RegisteredVersion(new_id, subject, number, rel))
        rows = [vars(v) for v in self._versions]
        self._index_path.write_text(json.dumps({"versions": rows}, indent=2) + "\n")
        return new_id


class ConfluentRegistry:
    """Confluent Schema Registry over HTTP; subjects are `<namespace>.<Record>` names."""

    def __init__(self, url: str, timeout: float = 10.0) -> None:
        self._client = httpx.Client(base_url=url.rstrip("/"), timeout=timeout)
        self._ids: dict[str, int] = {}
        self._schemas: dict[int, Schema] = {}
        self._lock = threading.Lock()

    def id_for(self, subject: str, schema: Schema) -> int:
        text = json.dumps(schema)
        with self._lock:
            if text not in self._ids:
                response = self._client.post(
                    f"/subjects/{NAMESPACE}.{subject}/versions",
                    json={"schema": text},
                    headers={"Content-Type": "application/vnd.schemaregistry.v1+json"},
                )
                response.raise_for_status()
                self._ids[text] = int(response.json()["id"])
            return self._ids[text]

    def schema_by_id(self, schema_id: int) -> Schema:
        with self._lock:
            if schema_id not in self._schemas:
                response = self._client.get(f"/schemas/ids/{schema_id}")
                if response.status_code == 404:
                    raise UnknownSchemaError(f"schema id {schema_id} is not in the schema registry")
                response.raise_for_status()
                self._schemas[schema_id] = json.loads(response.json()["schema"])
            return self._schemas[schema_id]


class AvroCodec:
    """Encodes one subject in the Confluent wire format; decodes any registered writer version."""

    def __init__(self, subject: str, schema: Schema, registry: SchemaRegistry) -> None:
        self.subject = subject
        self.reader = parse_schema(schema)
        self._registry = registry
        self._schema = schema
        self._schema_id: int | None = None
        self._writers: dict[int, Any] = {}

    @property
    def schema_id(self) -> int:
        if self._schema_id is None:
            self._schema_id = self._registry.id_for(self.subject, self._schema)
        return self._schema_id

    def encode(self, record: Mapping[str, Any]) -> bytes:
        out = io.BytesIO()
        out.write(HEADER.pack(MAGIC_BYTE, self.schema_id))
        try:
            fastavro.schemaless_writer(out, self.reader, record)
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise EncodeError(f"{self.subject}: {exc}") from exc
        return out.getvalue()

    def decode(self, data: bytes | None) -> Record:
        if data is None or len(data) < HEADER.size:
            raise DecodeError(
                f"{self.subject}: {0 if data is None else len(data)} bytes is no record"
            )
        magic, schema_id = HEADER.unpack_from(data)
        if magic != MAGIC_BYTE:
            raise DecodeError(
                f"{self.subject}: magic byte {magic} is not the Confluent wire format"
            )
        writer = self._writer(schema_id)
        stream = io.BytesIO(data)
        stream.seek(HEADER.size)
        try:
            record = fastavro.schemaless_reader(stream, writer, self.reader)
        except Exception as exc:  # fastavro raises many kinds on bad bytes
            raise DecodeError(
                f"{self.subject}: invalid Avro body ({type(exc).__name__}: {exc})"
            ) from exc
        if stream.tell() != len(data):
            raise DecodeError(f"{self.subject}: {len(data) - stream.tell()} trailing bytes")
        if not isinstance(record, dict):
            raise DecodeError(f"{self.subject}: not a record")
        return record

    def _writer(self, schema_id: int) -> Any:
        if schema_id not in self._writers:
            try:
                schema = self._registry.schema_by_id(schema_id)
            except UnknownSchemaError:
                raise
            except Exception as exc:
                raise UnknownSchemaError(f"schema id {schema_id}: {exc}") from exc
            self._writers[schema_id] = parse_schema(schema)
        return self._writers[schema_id]


class Codecs:
    """One codec per subject, sharing one registry."""

    def __init__(self, registry: SchemaRegistry, schemas: Mapping[str, Schema] | None = None):
        self.registry = registry
        self.schemas = dict(schemas or load_current_schemas())
        self._codecs = {
            name: AvroCodec(name, schema, registry) for name, schema in self.schemas.items()
        }

    def __getitem__(self, subject: str) -> AvroCodec:
        return self._codecs[subject]

    def subjects(self) -> Iterable[str]:
        return self._codecs.keys()


def default_registry(url: str | None) -> SchemaRegistry:
    return ConfluentRegistry(url) if url else FileRegistry()


_default: Codecs | None = None


def default_codecs() -> Codecs:
    """Codecs for the registry chosen by `SCHEMA_REGISTRY_URL` (file registry when unset)."""
    global _default
    if _default is None:
        from streams.settings import RegistrySettings

        _default = Codecs(default_registry(RegistrySettings().schema_registry_url))
    return _default
