"""Receiver adapter errors, split by what the caller does next.

AdapterError
├── RetryableError(retry_after)   timeout, connection error, 429, 5xx: back off and retry
│                                 (`maybe_applied`: the receiver may have done it anyway)
├── PermanentError(status)        the receiver refused the payload: dead-letter it
│   ├── AlreadyExists(receiver_id) the profile says this answer means "it exists already"
│   ├── ResponseShapeError        the response does not have the shape the profile describes
│   └── ResponseTooLarge          the response body exceeded the configured byte limit
├── NotSupported(capability)      the receiver lacks this call: skip, never retry
└── MisconfiguredError(status)    401/403, bad credentials, bad profile: fix the turn-up
    └── ProfileError              a receiver profile file failed validation

Every error says whether the call may have been applied anyway (`maybe_applied`): a
refusal, an answer that never came because nothing was sent, or a value that could not be
rendered proves that it was not, and a creating call's pending marker is then void (see
`streams.core.decisions.left_nothing`). An answer that came but could not be read, a timeout
after sending, a 5xx, or a call of several requests failing after its first one, may hide an
applied change.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from adapters.base import Capability


class AdapterError(Exception):
    """Root of every error an adapter raises; callers never see httpx or aiohttp exceptions."""

    #: Whether the receiver may have done what was asked before this error (see above).
    maybe_applied: bool = False


class RetryableError(AdapterError):
    """A transient failure; retry later, no sooner than `retry_after` seconds when it is set."""

    def __init__(
        self,
        message: str,
        *,
        retry_after: float | None = None,
        maybe_applied: bool = True,
        throttled: bool = False,
        cause: str = "other",
    ) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        #: A closed set, for metrics: throttled, server_error, timeout, connection, transport,
        #: other.
        self.cause = "throttled" if throttled else cause
        # False only when the request provably never ran (no connection, 429): a timeout or
        # a 5xx leaves the outcome unknown, and a create may have happened.
        self.maybe_applied = maybe_applied
        # The receiver is up and asked us to slow down (429): back off, but it is no failure.
        self.throttled = throttled


class PermanentError(AdapterError):
    """The receiver rejected the request for good; `status` and `receiver_message` say why."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        receiver_message: str | None = None,
        body: Any = None,
        maybe_applied: bool | None = None,
    ) -> None:
        super().__init__(message)
        if maybe_applied is not None:
            self.maybe_applied = maybe_applied
        self.status = status
        self.receiver_message = receiver_message
        # The answer's JSON (never in the message: it may hold personal data).
        self.body = body


class AlreadyExists(PermanentError):
    """A create was refused because the record exists; `receiver_id` names it when known."""

    def __init__(self, message: str, *, status: int, receiver_id: str | None) -> None:
        super().__init__(message, status=status)
        self.receiver_id = receiver_id


class ResponseShapeError(PermanentError):
    """The receiver answered, but not with the shape its profile promises."""

    maybe_applied = True  # it answered: what it did is not readable


class ResponseTooLarge(PermanentError):
    """The response body grew past the configured maximum and was not read further."""

    maybe_applied = True


class NotSupported(AdapterError):
    """The receiver has no call for this capability."""

    def __init__(self, capability: Capability, receiver: str) -> None:
        super().__init__(f"receiver {receiver!r} does not support {capability.value}")
        self.capability = capability
        self.receiver = receiver


class MisconfiguredError(AdapterError):
    """Credentials, profile or turn-up are wrong; retrying will not help until someone fixes it."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class ProfileError(MisconfiguredError):
    """A receiver profile is invalid; the message names the file and the offending key."""
