"""Circuit breakers: after too many failures, stop sending a provider (or a tool, or an agent's calls) work for a
while, so that callers fail fast instead of piling up behind it.

    closed --(failure rate over the last `window` calls >= `failure_rate`, once `min_calls` were seen)--> open
    open --(cooldown)--> half-open: `trials` calls let through at a time --a failure--> open again
                                                                          --`trials` successes--> closed

A model provider's breaker opens after N failures in a row (`BreakerPolicy.consecutive(N, …)`: a window of N calls
that all failed); the governor's containment stage gives tools and agents a failure-rate breaker
(docs/governance.md, "Cascading failures"). State is in this process's memory, shared by its threads.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import sqlalchemy as sa

from podium.audit import record

State = Literal["closed", "open", "half-open"]


@dataclass(frozen=True)
class BreakerPolicy:
    """When a breaker opens, for how long, and how it tests the way back."""

    window: int = 20  # the last calls whose failure rate is measured
    min_calls: int = 10  # no verdict on fewer calls than this
    failure_rate: float = 0.5  # it opens when at least this share of the window failed
    cooldown_s: float = 30.0  # how long it stays open before letting trial calls through
    trials: int = 1  # calls let through at once when half-open; this many successes close it

    @classmethod
    def consecutive(cls, failures: int, cooldown_s: float) -> BreakerPolicy:
        """Open after `failures` failures in a row; one trial call after the cooldown."""
        return cls(window=failures, min_calls=failures, failure_rate=1.0, cooldown_s=cooldown_s, trials=1)


class CircuitBreaker:
    def __init__(self, policy: BreakerPolicy, clock: Callable[[], float] = time.monotonic) -> None:
        self.policy = policy
        self._clock = clock
        self._lock = threading.Lock()
        self._outcomes: deque[bool] = deque(maxlen=policy.window)  # True: failed
        self._opened_at: float | None = None
        self._trials_out = 0
        self._trial_successes = 0

    @property
    def state(self) -> State:
        with self._lock:
            return self._state()

    @property
    def retry_after_s(self) -> float:
        """How long it stays open (0 unless open)."""
        with self._lock:
            if self._opened_at is None:
                return 0.0
            return max(0.0, self.policy.cooldown_s - (self._clock() - self._opened_at))

    def failure_count(self) -> tuple[int, int]:
        """Failed calls, and calls, in the window that opened it (or the current one)."""
        with self._lock:
            return sum(self._outcomes), len(self._outcomes)

    def allow(self) -> bool:
        """Whether a call may go ahead now; when half-open, only `trials` at a time are let through."""
        with self._lock:
            state = self._state()
            if state == "half-open" and self._trials_out < self.policy.trials:
                self._trials_out += 1
                return True
            return state == "closed"

    def succeeded(self) -> bool:
        """Count a success; return True when it closed the breaker (its trials all succeeded)."""
        with self._lock:
            state = self._state()
            if state == "closed":
                self._outcomes.append(False)
                return False
            if state == "open":
                return False  # a call let through before it opened: says nothing about now
            self._trials_out = max(0, self._trials_out - 1)
            self._trial_successes += 1
            if self._trial_successes < self.policy.trials:
                return False
            self._outcomes.clear()
            self._opened_at, self._trials_out, self._trial_successes = None, 0, 0
            return True

    def abandoned(self) -> None:
        """The call ended in neither success nor failure (refused, cancelled): say nothing about what it called,
        but hand back its half-open trial slot, so that another call may test it."""
        with self._lock:
            self._trials_out = max(0, self._trials_out - 1)

    def failed(self) -> bool:
        """Count a failure; return True when this failure opened the breaker."""
        with self._lock:
            state = self._state()
            if state == "open":
                return False  # a call let through before it opened
            if state == "half-open":
                self._open()  # a trial failed: open again, for a new cooldown
                return True
            self._outcomes.append(True)
            seen, failures = len(self._outcomes), sum(self._outcomes)
            if seen < self.policy.min_calls or failures < self.policy.failure_rate * seen:
                return False
            self._open()
            return True

    def _open(self) -> None:
        self._opened_at, self._trials_out, self._trial_successes = self._clock(), 0, 0

    def _state(self) -> State:
        if self._opened_at is None:
            return "closed"
        return "open" if self._clock() - self._opened_at < self.policy.cooldown_s else "half-open"


class Breakers:
    """The circuit breaker of each model's provider, shared by every agent in this process; an opening is audited."""

    def __init__(self, engine: sa.Engine, *, failures: int, cooldown_s: float) -> None:
        self._engine = engine
        self._policy = BreakerPolicy.consecutive(failures, cooldown_s)
        self._breakers: dict[str, CircuitBreaker] = {}

    def get(self, model: str) -> CircuitBreaker:
        found = self._breakers.get(model)
        if found is None:
            found = self._breakers.setdefault(model, CircuitBreaker(self._policy))
        return found

    def opened(self, model: str, error: str) -> None:
        """Audit that `model`'s breaker opened after `error`."""
        with self._engine.begin() as conn:
            record(conn, "podium:router", "breaker.open", model, decision="opened", detail={"last_error": error})
