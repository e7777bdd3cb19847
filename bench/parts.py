"""Pieces several benchmarks share: a reference receiver in its own process, a user event."""

from __future__ import annotations

import contextlib
import datetime as dt
import subprocess
import sys
import uuid
from collections.abc import Iterator
from typing import Any


@contextlib.contextmanager
def receiver_process(*args: str) -> Iterator[str]:
    """Run the reference receiver (`serve --port 0 ARGS`) in its own process, so it does not
    share the benchmark's CPU or event loop; yields its API URL."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "adapters.reference", "serve", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None
        api_url = proc.stdout.readline().strip()
        if not api_url.startswith("http://127.0.0.1:"):
            raise RuntimeError(f"reference receiver did not start (got {api_url!r})")
        yield api_url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def user_event(client: str, club: str, intouch_id: str, version: int) -> dict[str, Any]:
    """A prospect's UserChanged at `version`, its first name saying which version it is."""
    return {
        "event_id": str(uuid.uuid4()), "occurred_at": dt.datetime.now(dt.UTC),
        "client_id": client, "club_id": club, "intouch_id": intouch_id, "version": version,
        "user_type": "PROSPECT", "status": "ACTIVE", "first_name": f"v{version}",
        "last_name": intouch_id, "email": None, "birthdate": None, "gender": None,
        "address1": None, "address2": None, "city": None, "zipcode": None, "state": None,
        "country": None, "mobile_phone": None, "home_phone": None, "work_phone": None,
        "company": None, "staff_owner_id": None, "lead_source_id": None,
    }  # fmt: skip
