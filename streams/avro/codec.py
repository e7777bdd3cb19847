"""Avro records in the Confluent wire format: magic byte, 4-byte schema ID, Avro body."""

from __future__ import annotations

import io
import struct
from collections.abc import Mapping
from typing import Any

import fastavro
from fastavro.schema import parse_schema

from streams.avro.registry import SchemaRegistry, default_registry
from streams.avro.schemas import Schema, load_current_schemas
from streams.core.model import Record
from streams.exceptions import (
    RecordDecodeError,
    RecordEncodeError,
    SchemaRegistryError,
    UnknownSchemaError,
)

MAGIC_BYTE = 0
HEADER = struct.Struct(">bI")


class AvroCodec:
    """Encodes one subject in the Confluent wire format; decodes any registered writer version."""

    def __init__(self, subject: str, schema: Schema, registry: SchemaRegistry) -> None:
        self.subject = subject
        self.reader = parse_schema(schema)
        self._registry = registry
        self._schema = schema
        self._schema_id: int | None = None
        #: Per writer schema ID: the parsed writer schema and the reader schema to resolve it
        #: to, None when they are equal (fastavro would compare them, deeply, on every call).
        self._writers: dict[int, tuple[Any, Any]] = {}

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
            raise RecordEncodeError(f"{self.subject}: {exc}") from exc
        return out.getvalue()

    def decode(self, data: bytes | None) -> Record:
        if data is None or len(data) < HEADER.size:
            raise RecordDecodeError(
                f"{self.subject}: {0 if data is None else len(data)} bytes is no record"
            )
        magic, schema_id = HEADER.unpack_from(data)
        if magic != MAGIC_BYTE:
            raise RecordDecodeError(
                f"{self.subject}: magic byte {magic} is not the Confluent wire format"
            )
        writer, reader = self._writer(schema_id)
        stream = io.BytesIO(data)
        stream.seek(HEADER.size)
        try:
            record = fastavro.schemaless_reader(stream, writer, reader)
        except Exception as exc:  # fastavro raises many kinds on bad bytes
            raise RecordDecodeError(
                f"{self.subject}: invalid Avro body ({type(exc).__name__}: {exc})"
            ) from exc
        if stream.tell() != len(data):
            raise RecordDecodeError(f"{self.subject}: {len(data) - stream.tell()} trailing bytes")
        if not isinstance(record, dict):
            raise RecordDecodeError(f"{self.subject}: not a record")
        return record

    def _writer(self, schema_id: int) -> tuple[Any, Any]:
        if schema_id not in self._writers:
            try:
                schema = self._registry.schema_by_id(schema_id)
            except (UnknownSchemaError, SchemaRegistryError):
                raise
            except Exception as exc:
                raise UnknownSchemaError(f"schema id {schema_id}: {exc}") from exc
            writer = parse_schema(schema)
            self._writers[schema_id] = (writer, None if writer == self.reader else self.reader)
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


_default: Codecs | None = None


def default_codecs() -> Codecs:
    """Codecs for the registry chosen by `SCHEMA_REGISTRY_URL` (file registry when unset)."""
    global _default
    if _default is None:
        from streams.settings import RegistrySettings

        _default = Codecs(default_registry(RegistrySettings().schema_registry_url))
    return _default
