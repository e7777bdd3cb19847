"""Schema registries: stable integer IDs for schemas, from files or Confluent Schema Registry."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import httpx

from streams.avro.schemas import NAMESPACE, Schema, canonical, schemas_dir
from streams.exceptions import SchemaNotRegisteredError, SchemaRegistryError, UnknownSchemaError


@contextmanager
def _registry_errors(what: str) -> Iterator[None]:
    """httpx errors and unexpected answers of the registry become `SchemaRegistryError`."""
    try:
        yield
    except httpx.HTTPStatusError as exc:
        raise SchemaRegistryError(
            f"schema registry: {what}: HTTP {exc.response.status_code}"
        ) from exc
    except httpx.HTTPError as exc:
        raise SchemaRegistryError(f"schema registry: {what}: {type(exc).__name__}") from exc
    except (ValueError, KeyError, TypeError) as exc:
        raise SchemaRegistryError(f"schema registry: {what}: unexpected answer ({exc})") from exc


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
                with _registry_errors(f"registering {subject}"):
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
                with _registry_errors(f"fetching schema id {schema_id}"):
                    response = self._client.get(f"/schemas/ids/{schema_id}")
                    if response.status_code == 404:
                        raise UnknownSchemaError(
                            f"schema id {schema_id} is not in the schema registry"
                        )
                    response.raise_for_status()
                    self._schemas[schema_id] = json.loads(response.json()["schema"])
            return self._schemas[schema_id]


def default_registry(url: str | None) -> SchemaRegistry:
    return ConfluentRegistry(url) if url else FileRegistry()
