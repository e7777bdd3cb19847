"""The token bucket behind a tenant's rate limit."""

from __future__ import annotations

from streams.core.ratelimit import TokenBucket


def test_a_burst_goes_at_once_then_calls_are_spaced_at_the_rate() -> None:
    bucket = TokenBucket(rate=5, burst=2)
    assert [bucket.reserve(now=0) for _ in range(2)] == [0, 0]
    waits = [bucket.reserve(now=0) for _ in range(3)]
    assert [round(w, 9) for w in waits] == [0.2, 0.4, 0.6]


def test_idle_time_refills_the_bucket_up_to_the_burst() -> None:
    bucket = TokenBucket(rate=1, burst=3)
    for _ in range(3):
        bucket.reserve(now=0)
    assert bucket.reserve(now=100) == 0  # refilled (to 3, not 100)
    assert bucket.reserve(now=100) == 0
    assert bucket.reserve(now=100) == 0
    assert bucket.reserve(now=100) == 1.0
