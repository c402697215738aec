"""Lifecycle events of runs, steps and governed calls, for progress displays, tracing and fault injection."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

EventKind = Literal[
    "workflow_started",
    "step_started",
    "budget_reserved",
    "call_recorded",
    "step_finished",
    "workflow_returning",
    "workflow_failed",
]


@dataclass(frozen=True)
class Event:
    """Something that just happened in this process. `name` is the workflow, step or governed resource; `error`
    names the exception a failed workflow raised."""

    kind: EventKind
    run_id: str | None
    name: str
    step_id: int | None = None
    error: str | None = None


Listener = Callable[[Event], None]


class EventBus:
    """Calls each listener synchronously, in the thread where the event happened.

    A listener that blocks holds up that run at exactly that point, which is what the crash tests rely on to
    kill a process at a chosen step boundary.
    """

    def __init__(self) -> None:
        self._listeners: list[Listener] = []
        self._lock = threading.Lock()

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Add `listener`; return a function that removes it."""
        with self._lock:
            self._listeners.append(listener)

        def unsubscribe() -> None:
            with self._lock:
                self._listeners.remove(listener)

        return unsubscribe

    def emit(self, event: Event) -> None:
        with self._lock:
            listeners = list(self._listeners)
        for listener in listeners:
            listener(event)
