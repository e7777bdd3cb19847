"""The per-tenant circuit breaker: open after repeated failures, one probe, growing cooldown."""

from __future__ import annotations

from streams.core.breaker import Breaker, Breakers


def test_it_opens_after_the_failures_and_lets_one_probe_through_after_the_cooldown() -> None:
    breaker = Breaker(failures_to_open=3, cooldown=10)
    for _ in range(2):
        breaker.failed(now=0)
    assert not breaker.is_open(now=0)
    breaker.failed(now=0)
    assert breaker.is_open(now=5)
    assert breaker.wait(now=4) == 6
    assert not breaker.try_probe(now=5)
    assert breaker.try_probe(now=10)  # half open: the one probe
    assert not breaker.try_probe(now=10)  # no second probe while the first runs
    assert breaker.is_open(now=11)


def test_a_failed_probe_doubles_the_cooldown_and_a_good_one_closes_it() -> None:
    breaker = Breaker(failures_to_open=1, cooldown=10, max_cooldown=25)
    breaker.failed(now=0)
    assert breaker.try_probe(now=10)
    breaker.failed(now=10)
    assert breaker.open_until == 30
    assert breaker.try_probe(now=30)
    breaker.failed(now=30)
    assert breaker.open_until == 55  # capped at max_cooldown
    assert breaker.try_probe(now=55)
    breaker.succeeded()
    assert not breaker.is_open(now=55) and breaker.try_probe(now=55)


def test_calls_that_started_before_it_opened_do_not_lengthen_the_cooldown() -> None:
    breaker = Breaker(failures_to_open=1, cooldown=10)
    breaker.failed(now=0)
    for _ in range(5):  # stragglers of the same outage
        breaker.failed(now=1)
    assert breaker.open_until == 10


def test_each_tenant_has_its_own_breaker() -> None:
    breakers = Breakers(failures_to_open=1, cooldown=10)
    breakers["a"].failed(now=0)
    assert breakers["a"].is_open(now=1)
    assert not breakers["b"].is_open(now=1)
