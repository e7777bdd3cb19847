"""The worker's operations endpoints: `/metrics`, `/health` and `/ready`; anything else is 404.

`/health` answers 200 while the process serves at all (a liveness probe). `/ready` answers 200
only while the worker can do its work: its reader threads are alive, it holds an assignment
and its link tables have caught up with the outcomes log; otherwise 503 with the reasons.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Readiness:
    """Whether the worker can do its work now, and why not."""

    reasons: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def ready(self) -> bool:
        return not self.reasons


class _Server(ThreadingHTTPServer):
    """Gone clients are not errors: a probe that gave up (its timeout shorter than an answer
    that waited for the GIL during a rebuild) used to print a BrokenPipeError traceback into
    the worker's log."""

    daemon_threads = True
    #: Requests whose client went away before the answer was written.
    dropped = 0

    def handle_error(self, request: Any, client_address: Any) -> None:
        error = sys.exc_info()[1]
        if isinstance(error, ConnectionError):
            self.dropped += 1
            log.debug("ops http: %s went away before the answer: %s", client_address, error)
            return
        log.exception("ops http: a request from %s failed", client_address)


class OpsServer:
    """A small threaded HTTP server beside the Faust worker."""

    def __init__(
        self,
        host: str,
        port: int,
        registry: CollectorRegistry,
        readiness: Callable[[], Readiness],
    ) -> None:
        handler = _handler(registry, readiness)
        self._server = _Server((host, port), handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="ops-http", daemon=True
        )

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def _handler(
    registry: CollectorRegistry, readiness: Callable[[], Readiness]
) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                self._send(200, CONTENT_TYPE_LATEST, generate_latest(registry))
            elif path == "/health":
                self._json(200, {"status": "alive"})
            elif path == "/ready":
                try:
                    state = readiness()
                except Exception as exc:  # a broken check must say so, not hang the probe
                    state = Readiness([f"readiness check failed: {type(exc).__name__}"])
                body = {"ready": state.ready, "reasons": state.reasons, **state.details}
                self._json(200 if state.ready else 503, body)
            else:
                self._json(404, {"error": f"no such endpoint: {path}"})

        def _json(self, status: int, body: dict[str, Any]) -> None:
            self._send(status, "application/json", json.dumps(body).encode())

        def _send(self, status: int, content_type: str, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            log.debug("ops http: " + format, *args)

    return Handler
