"""A token bucket: at most `rate` calls a second on average, `burst` at once."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class TokenBucket:
    """Reserve a call with `reserve(now)`; it says how long to wait before making it."""

    rate: float
    burst: float = 1.0
    tokens: float | None = None
    updated: float | None = None

    def reserve(self, now: float) -> float:
        """Take one token (going into debt if there is none); seconds to wait for it."""
        if self.tokens is None or self.updated is None:
            self.tokens, self.updated = self.burst, now
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        self.tokens -= 1.0
        return 0.0 if self.tokens >= 0 else -self.tokens / self.rate
