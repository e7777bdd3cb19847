"""Every secret value the tests use; the session ends by proving none leaked."""

from __future__ import annotations

import base64

TURNUP_SECRET = "Tr0ub4dor-and-3-horses"
TURNUP_UNIT_SECRET = "s3cr3t-Pa55w0rd!"
ADAPTER_RIGHT_SECRET = "Right-S3cret-7d1f"
ADAPTER_WRONG_SECRET = "Wr0ng-S3cret-99ab"
PIPELINE_RECEIVER_SECRET = "P1peline-Receiver-Pa55-c0ffee"

ALL = (
    TURNUP_SECRET,
    TURNUP_UNIT_SECRET,
    ADAPTER_RIGHT_SECRET,
    ADAPTER_WRONG_SECRET,
    PIPELINE_RECEIVER_SECRET,
)


def leaked_forms(secret: str, username: str = "connector") -> list[bytes]:
    """The secret as given and as a Basic authorization header carries it."""
    basic = base64.b64encode(f"{username}:{secret}".encode())
    return [secret.encode(), basic]


def find_leaks(data: bytes, secrets: tuple[str, ...] = ALL) -> list[str]:
    """Which of `secrets` occur in `data`, in any of their forms."""
    return [s for s in secrets if any(form in data for form in leaked_forms(s))]
