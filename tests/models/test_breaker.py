"""The circuit breaker: open after repeated failures, one trial after the cooldown, never stuck."""

from __future__ import annotations

from podium.models import BreakerPolicy, CircuitBreaker


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_opens_after_failures_in_a_row_then_lets_one_trial_through_after_the_cooldown() -> None:
    clock = Clock()
    breaker = CircuitBreaker(BreakerPolicy.consecutive(2, cooldown_s=10), clock)
    assert breaker.allow() and not breaker.failed() and breaker.state == "closed"
    assert breaker.failed() and breaker.state == "open" and not breaker.allow()
    clock.now = 11
    assert breaker.state == "half-open"
    assert breaker.allow() and not breaker.allow()  # one trial at a time
    assert breaker.failed() and breaker.state == "open"  # the trial failed: open again, for a new cooldown
    clock.now = 22
    assert breaker.allow()
    breaker.succeeded()
    assert breaker.state == "closed" and breaker.allow() and breaker.allow()


def test_a_trial_that_ends_otherwise_hands_back_its_slot() -> None:
    clock = Clock()
    breaker = CircuitBreaker(BreakerPolicy.consecutive(1, cooldown_s=10), clock)
    breaker.failed()
    clock.now = 11
    assert breaker.allow() and not breaker.allow()
    breaker.abandoned()  # refused by the governor, or cancelled: says nothing about the provider
    assert breaker.state == "half-open" and breaker.allow()


def test_a_failure_rate_breaker_waits_for_min_calls_and_needs_every_trial_to_close() -> None:
    clock = Clock()
    breaker = CircuitBreaker(BreakerPolicy(window=4, min_calls=4, failure_rate=0.5, cooldown_s=10, trials=2), clock)
    assert not breaker.failed() and not breaker.failed()  # 2 of 2 failed, but fewer than min_calls seen
    breaker.succeeded()
    assert breaker.failed() and breaker.state == "open"  # 3 of 4
    assert breaker.failure_count() == (3, 4) and breaker.retry_after_s == 10
    clock.now = 10
    assert breaker.allow() and breaker.allow() and not breaker.allow()  # two trials at a time
    assert not breaker.succeeded() and breaker.state == "half-open"  # one of two
    assert breaker.succeeded() and breaker.state == "closed" and breaker.failure_count() == (0, 0)
    for _ in range(3):
        breaker.succeeded()
    assert not breaker.failed()  # 1 of the last 4
    assert breaker.failed() and breaker.state == "open"  # 2 of the last 4: the failure rate
