"""When to retry a receiver call and how long to wait: exponential backoff with full jitter."""

from __future__ import annotations

import random
from dataclasses import dataclass

DEFAULT_MAX_ATTEMPTS = 6
DEFAULT_BASE_DELAY = 0.2
DEFAULT_MAX_DELAY = 10.0
DEFAULT_MAX_ELAPSED = 60.0


def backoff_delay(
    attempt: int,
    *,
    base: float,
    cap: float,
    retry_after: float | None = None,
    rng: random.Random | None = None,
) -> float:
    """Exponential backoff with full jitter; never sooner than the receiver's Retry-After."""
    ceiling = min(cap, base * (2 ** (attempt - 1)))
    delay = (rng or random).uniform(ceiling / 2, ceiling)
    return max(delay, retry_after or 0.0)


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long a command is retried before it is dead-lettered."""

    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    base_delay: float = DEFAULT_BASE_DELAY
    max_delay: float = DEFAULT_MAX_DELAY
    max_elapsed: float = DEFAULT_MAX_ELAPSED

    def next_delay(
        self,
        attempt: int,
        elapsed: float,
        retry_after: float | None = None,
        rng: random.Random | None = None,
    ) -> float | None:
        """Seconds to wait before attempt `attempt + 1`, or None when it is time to give up."""
        delay = backoff_delay(
            attempt, base=self.base_delay, cap=self.max_delay, retry_after=retry_after, rng=rng
        )
        if attempt >= self.max_attempts or elapsed + delay > self.max_elapsed:
            return None
        return delay
