"""The circuit breaker: open after repeated failures, one trial after the cooldown, never stuck."""

from __future__ import annotations

from podium.models._breaker import CircuitBreaker


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_opens_after_failures_in_a_row_then_lets_one_trial_through_after_the_cooldown() -> None:
    clock = Clock()
    breaker = CircuitBreaker(failures=2, cooldown_s=10, clock=clock)
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
    breaker = CircuitBreaker(failures=1, cooldown_s=10, clock=clock)
    breaker.failed()
    clock.now = 11
    assert breaker.allow() and not breaker.allow()
    breaker.abandoned()  # refused by the governor, or cancelled: says nothing about the provider
    assert breaker.state == "half-open" and breaker.allow()
