"""A circuit breaker per provider: after repeated failures, stop sending it work for a while.

closed --(N failures in a row)--> open --(cooldown)--> half-open: one trial call --ok--> closed
                                                                                  --fails--> open again
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Literal

import sqlalchemy as sa

from podium.audit import record

State = Literal["closed", "open", "half-open"]


class CircuitBreaker:
    def __init__(self, failures: int, cooldown_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._threshold = failures
        self._cooldown = cooldown_s
        self._clock = clock
        self._lock = threading.Lock()
        self._failures = 0
        self._opened_at: float | None = None
        self._trial_out = False

    @property
    def state(self) -> State:
        with self._lock:
            return self._state()

    def allow(self) -> bool:
        """Whether a call may go to the provider now; in half-open state only one trial call is let through."""
        with self._lock:
            state = self._state()
            if state == "half-open" and not self._trial_out:
                self._trial_out = True
                return True
            return state == "closed"

    def succeeded(self) -> None:
        with self._lock:
            self._failures, self._opened_at, self._trial_out = 0, None, False

    def abandoned(self) -> None:
        """The call ended in neither success nor a provider failure (refused, cancelled): say nothing about the
        provider, but hand back the half-open trial slot so that another call may test it."""
        with self._lock:
            self._trial_out = False

    def failed(self) -> bool:
        """Count a failure; return True when this failure opened the breaker."""
        with self._lock:
            self._failures += 1
            opens = self._trial_out or (self._opened_at is None and self._failures >= self._threshold)
            if opens:
                self._opened_at, self._trial_out = self._clock(), False
            return opens

    def _state(self) -> State:
        if self._opened_at is None:
            return "closed"
        return "open" if self._clock() - self._opened_at < self._cooldown else "half-open"


class Breakers:
    """The circuit breaker of each model's provider, shared by every agent in this process; an opening is audited."""

    def __init__(self, engine: sa.Engine, *, failures: int, cooldown_s: float) -> None:
        self._engine = engine
        self._failures = failures
        self._cooldown_s = cooldown_s
        self._breakers: dict[str, CircuitBreaker] = {}

    def get(self, model: str) -> CircuitBreaker:
        found = self._breakers.get(model)
        if found is None:
            found = self._breakers.setdefault(model, CircuitBreaker(self._failures, self._cooldown_s))
        return found

    def opened(self, model: str, error: str) -> None:
        """Audit that `model`'s breaker opened after `error`."""
        with self._engine.begin() as conn:
            record(conn, "podium:router", "breaker.open", model, decision="opened", detail={"last_error": error})
