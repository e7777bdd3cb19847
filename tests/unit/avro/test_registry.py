"""Schema registry errors are translated where they happen: callers never see httpx."""

from __future__ import annotations

import http.server
import socket
import threading
from collections.abc import Iterator

import pytest

from streams.avro.codec import Codecs
from streams.avro.registry import ConfluentRegistry
from streams.exceptions import SchemaRegistryError, UnknownSchemaError


class _Answers(http.server.BaseHTTPRequestHandler):
    """A registry that fails every call with 500, except ID 404 which it does not know."""

    def do_GET(self) -> None:
        status = 404 if self.path.endswith("/404") else 500
        self.send_response(status)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def do_POST(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "9")
        self.end_headers()
        self.wfile.write(b"not json!")

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture
def registry_url() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Answers)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_an_unreachable_registry_is_a_schema_registry_error() -> None:
    registry = ConfluentRegistry(f"http://127.0.0.1:{closed_port()}", timeout=2)
    with pytest.raises(SchemaRegistryError, match="fetching schema id 7: ConnectError"):
        registry.schema_by_id(7)


def test_an_error_status_and_a_garbled_answer_are_schema_registry_errors(
    registry_url: str,
) -> None:
    registry = ConfluentRegistry(registry_url, timeout=2)
    with pytest.raises(SchemaRegistryError, match="HTTP 500"):
        registry.schema_by_id(7)
    with pytest.raises(UnknownSchemaError, match="not in the schema registry"):
        registry.schema_by_id(404)
    with pytest.raises(SchemaRegistryError, match="registering EntityKey: unexpected answer"):
        registry.id_for("EntityKey", {"type": "string"})


def test_decoding_during_a_registry_outage_is_not_mistaken_for_an_unknown_schema(
    registry_url: str,
) -> None:
    codec = Codecs(ConfluentRegistry(registry_url, timeout=2))["EntityKey"]
    with pytest.raises(SchemaRegistryError) as caught:
        codec.decode(b"\x00\x00\x00\x00\x07payload")
    assert not isinstance(caught.value, UnknownSchemaError)
