"""The operations server when a client gives up before its answer: no traceback, still serving."""

from __future__ import annotations

import socket
import struct
import threading
import time

import httpx
import pytest
from prometheus_client import CollectorRegistry

from streams.worker.ops import OpsServer, Readiness


def test_a_probe_that_gives_up_before_its_answer_is_no_error(
    capfd: pytest.CaptureFixture[str],
) -> None:
    answer = threading.Event()
    asked = threading.Event()

    def slow_readiness() -> Readiness:  # a check held up (by the GIL, during a rebuild)
        asked.set()
        answer.wait(10)
        return Readiness()

    server = OpsServer("127.0.0.1", 0, CollectorRegistry(), slow_readiness)
    server.start()
    try:
        probe = socket.create_connection(("127.0.0.1", server.port))
        probe.sendall(b"GET /ready HTTP/1.1\r\nHost: x\r\n\r\n")
        assert asked.wait(10)
        # The probe's timeout: it closes at once (a reset, as a client that gave up does).
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        probe.close()
        answer.set()
        deadline = time.monotonic() + 10
        while server._server.dropped == 0:
            assert time.monotonic() < deadline, "the server never wrote to the gone probe"
            time.sleep(0.01)
        assert httpx.get(f"http://127.0.0.1:{server.port}/health").status_code == 200
    finally:
        server.stop()
    captured = capfd.readouterr()
    assert "Traceback" not in captured.err + captured.out
