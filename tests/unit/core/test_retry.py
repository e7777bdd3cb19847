"""Backoff with jitter and when a retried command gives up."""

from __future__ import annotations

import random

from streams.core.retry import RetryPolicy, backoff_delay


def test_backoff_grows_is_capped_jittered_and_honours_retry_after() -> None:
    rng = random.Random(1)
    delays = [backoff_delay(n, base=0.1, cap=2.0, rng=rng) for n in range(1, 10)]
    assert all(0.05 <= d <= 2.0 for d in delays)
    assert delays[-1] >= 1.0
    assert backoff_delay(1, base=0.1, cap=2.0, retry_after=5.0, rng=rng) == 5.0


def test_the_policy_gives_up_at_the_attempt_limit() -> None:
    policy = RetryPolicy(max_attempts=3, base_delay=0.1, max_delay=1.0, max_elapsed=60)
    rng = random.Random(2)
    assert policy.next_delay(1, 0.0, rng=rng) is not None
    assert policy.next_delay(2, 0.0, rng=rng) is not None
    assert policy.next_delay(3, 0.0, rng=rng) is None


def test_the_policy_gives_up_when_the_next_wait_would_pass_the_time_budget() -> None:
    policy = RetryPolicy(max_attempts=100, base_delay=1.0, max_delay=1.0, max_elapsed=10)
    assert policy.next_delay(2, 5.0) is not None
    assert policy.next_delay(2, 9.5) is None
    # A Retry-After beyond the budget ends it too, rather than waiting past it.
    assert policy.next_delay(2, 0.0, retry_after=30.0) is None
    assert policy.next_delay(2, 0.0, retry_after=3.0) == 3.0
