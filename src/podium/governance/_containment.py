"""Containment: one failing tool, or one agent whose tools keep failing, must not take the rest down with it.

    check   circuit breakers   the tool's and the calling agent's: open -> refused at once ("circuit_open")
            bulkheads          the tool's and the agent's calls under way, in this process: at the limit ->
                               refused at once ("bulkhead_full"), never queued
    run     timeout            each try of the tool, `timeout_s` (declared, else [resilience] tool_timeout_s)
            retries            a transient failure (a timeout, a connection error, what the tool lists in
                               `retry_on`) is tried again, at most `retries` times, after a jittered backoff, if
                               both breakers and bulkheads still let it

Every try is the same governed call: one admission, one audit entry (its detail says how many tries it took), and
one call key, so a side effect keyed by `podium.current_call().key` (the outbox is) happens once however many
tries there were, even when a try that timed out did it before the timeout. That is why a consequential tool is
not retried unless it declares `retries`: declaring them says its side effect is keyed.

Why refuse instead of wait: a caller waiting for a slot holds its workflow's thread and whatever it holds, which
is how a slow dependency spreads; the stage also runs on an event loop, where waiting would stall every other
call on it. A refused call gets `Unavailable` with `retry_after_s`, and its audit entry says why.

Timeouts: an async tool is cancelled at its timeout. A plain function cannot be stopped once running; one that
declares `timeout_s` runs on a thread of its own, which the call stops waiting for at the timeout, and which keeps
its bulkhead slots until it really ends: a tool stuck in hung calls refuses new ones instead of piling up threads.
A plain function that declares no timeout runs in place, untimed (declare one for any that does I/O).

An agent's breaker weighs twice the calls a tool's does, so that one failing tool trips its own breaker first and
the agent's other tools go on. Breakers count tool calls only; a model's provider has its own breaker in the router
and the gateway, where a failure is a reason to fall back, not to stop the agent. State is in this process's memory
(docs/governance.md): with several worker processes, each has its own breakers and bulkheads, so a tool sees at most
the processes times its `max_concurrent` calls at once, and each process learns from its own calls that a tool is
failing.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import dataclasses
import random
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any, ClassVar

import sqlalchemy as sa

from podium.audit import record
from podium.errors import GovernanceError, Unavailable, UsageError
from podium.governance._call import Call, Outcome, ToolDeclaration
from podium.governance._pipeline import CallContext, Refusal, Stage
from podium.models import BreakerPolicy, CircuitBreaker, ResilienceSetting

TRANSIENT: tuple[type[Exception], ...] = (TimeoutError, ConnectionError)  # tried again by default


class Bulkhead:
    """At most `limit` calls under way at once; a call over it is refused, not queued."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._in_use = 0
        self._lock = threading.Lock()

    @property
    def in_use(self) -> int:
        return self._in_use

    def try_acquire(self) -> bool:
        with self._lock:
            if self._in_use >= self.limit:
                return False
            self._in_use += 1
            return True

    def release(self) -> None:
        with self._lock:
            self._in_use -= 1


class _Permit:
    """What one try holds: a slot in each bulkhead, and leave from each breaker, until it is settled and freed
    (each once, from whichever thread ends it)."""

    def __init__(self, scopes: tuple[str, ...], slots: list[Bulkhead], breakers: list[CircuitBreaker]) -> None:
        self.scopes = scopes
        self._slots = slots
        self._breakers = breakers
        self._lock = threading.Lock()
        self._freed = False
        self._settled = False

    def free(self) -> None:
        """Give back the bulkhead slots."""
        with self._lock:
            if self._freed:
                return
            self._freed = True
        for slot in self._slots:
            slot.release()

    def settle(self, failed: bool | None) -> list[tuple[str, str]]:
        """Tell the breakers how the try went (None: neither way); return the (scope, "opened" | "closed") it
        turned."""
        with self._lock:
            if self._settled:
                return []
            self._settled = True
        turned = []
        for scope, breaker in zip(self.scopes, self._breakers, strict=True):
            if failed is None:
                breaker.abandoned()
            elif failed and breaker.failed():
                turned.append((scope, "opened"))
            elif not failed and breaker.succeeded():
                turned.append((scope, "closed"))
        return turned


class Containment(Stage):
    """Circuit breakers, bulkheads, timeouts and retries for tool calls (see the module's docstring)."""

    name: ClassVar[str] = "containment"

    def __init__(
        self,
        engine: sa.Engine,
        setting: ResilienceSetting,
        *,
        clock: Callable[[], float] = time.monotonic,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self._engine = engine
        self.setting = setting
        b = setting.breaker
        self._policy = BreakerPolicy(b.window, b.min_calls, b.failure_rate, b.cooldown_s, b.trials)
        # An agent's breaker weighs twice as many calls, so that one failing tool trips its own breaker first and
        # the agent's other tools go on; it opens when the agent's calls fail across its tools.
        self._agent_policy = dataclasses.replace(self._policy, window=2 * b.window, min_calls=2 * b.min_calls)
        self._clock = clock
        self._jitter = jitter
        self._breakers: dict[str, CircuitBreaker] = {}
        self._bulkheads: dict[str, Bulkhead] = {}

    def breaker(self, scope: str) -> CircuitBreaker:
        """The circuit breaker of `scope` ("tool:<name>" or "agent:<name>"), made on first use."""
        found = self._breakers.get(scope)
        if found is None:
            policy = self._agent_policy if scope.startswith("agent:") else self._policy
            found = self._breakers.setdefault(scope, CircuitBreaker(policy, self._clock))
        return found

    def bulkhead(self, scope: str, limit: int) -> Bulkhead:
        found = self._bulkheads.get(scope)
        if found is None:
            found = self._bulkheads.setdefault(scope, Bulkhead(limit))
        return found

    # -- the pipeline ----------------------------------------------------------------------------------------

    def check(self, ctx: CallContext) -> None:
        if ctx.call.kind != "tool":
            return
        permit = self._claim(ctx.call)
        if isinstance(permit, Unavailable):
            raise Refusal(permit, "denied", why=permit.why)
        ctx.holds[self.name] = permit

    def finish(self, ctx: CallContext, outcome: Outcome | None) -> None:
        permit = ctx.holds.pop(self.name, None)
        if isinstance(permit, _Permit):  # refused by a later stage, or interrupted: it never ran
            permit.settle(None)
            permit.free()

    async def run(self, ctx: CallContext, proceed: Callable[[], Awaitable[Any]]) -> Any:
        permit = ctx.holds.pop(self.name, None)
        if not isinstance(permit, _Permit):
            return await proceed()
        call, declared, setting = ctx.call, ctx.call.declaration, self.setting
        timeout = declared.timeout_s or setting.tool_timeout_s
        threaded = declared.blocking and declared.timeout_s is not None
        tries = 1 + _retries(declared, setting)
        attempt = 1
        try:
            while True:
                try:
                    result = await self._try(call, permit, proceed, timeout, threaded)
                except asyncio.CancelledError:
                    permit.settle(None)
                    raise
                except Exception as exc:
                    self._audit(permit.settle(_failed(exc)), call, exc)
                    if attempt >= tries or not _transient(exc, declared):
                        raise
                    await asyncio.sleep(self.backoff(attempt))
                    again = self._claim(call)
                    if isinstance(again, Unavailable):
                        raise exc from None  # the breaker opened or the bulkhead filled meanwhile: no more tries
                    permit, attempt = again, attempt + 1
                else:
                    self._audit(permit.settle(False), call, None)
                    return result
        finally:
            if attempt > 1:
                ctx.detail["attempts"] = str(attempt)

    # -- its parts -------------------------------------------------------------------------------------------

    def _claim(self, call: Call) -> _Permit | Unavailable:
        """Leave from the breakers and a slot in the bulkheads of the tool and the agent, all or nothing."""
        declared = call.declaration
        scopes = [(f"tool:{call.resource}", declared.max_concurrent or self.setting.tool_max_concurrent)]
        if call.principal == "agent":
            scopes.append((f"agent:{call.agent}", self.setting.agent_max_concurrent))
        breakers: list[CircuitBreaker] = []
        for scope, _ in scopes:
            breaker = self.breaker(scope)
            if not breaker.allow():
                for taken in breakers:
                    taken.abandoned()
                return self._open(call, scope, breaker)
            breakers.append(breaker)
        slots: list[Bulkhead] = []
        for scope, limit in scopes:
            bulkhead = self.bulkhead(scope, limit)
            if not bulkhead.try_acquire():
                for slot in slots:
                    slot.release()
                for left in breakers:
                    left.abandoned()
                return self._full(call, scope, bulkhead)
            slots.append(bulkhead)
        return _Permit(tuple(scope for scope, _ in scopes), slots, breakers)

    async def _try(
        self, call: Call, permit: _Permit, proceed: Callable[[], Awaitable[Any]], timeout: float, threaded: bool
    ) -> Any:
        """One try, within `timeout`: on this event loop, or on a thread of its own (a plain function that
        declared a timeout), which keeps the try's slots until it ends, whenever that is."""
        try:
            async with asyncio.timeout(timeout) as limit:
                if threaded:
                    return await _on_own_thread(proceed, permit, f"podium-tool-{call.resource}")
                try:
                    return await proceed()
                finally:
                    permit.free()
        except TimeoutError:
            if not limit.expired():
                raise  # the tool's own
            raise TimeoutError(f"tool {call.resource!r} did not answer within its {timeout:g} s timeout") from None

    def backoff(self, attempt: int) -> float:
        """The wait before retry `attempt` (1: the first): full jitter, anywhere up to a ceiling that doubles from
        `backoff_s` to `backoff_max_s`, so that callers that failed together do not come back together."""
        setting = self.setting
        ceiling: float = min(setting.backoff_max_s, setting.backoff_s * 2 ** (attempt - 1))
        return self._jitter() * ceiling

    def _open(self, call: Call, scope: str, breaker: CircuitBreaker) -> Unavailable:
        failed, calls = breaker.failure_count()
        wait = breaker.retry_after_s
        whose = f"tool {call.resource!r}" if scope.startswith("tool:") else f"agent {call.agent!r}'s tool calls"
        message = (
            f"{whose}: {failed} of the last {calls} failed, so its circuit breaker is open and calls are refused "
            f"for {wait:.0f} s more, then a few are let through to test it. {call.describe()} did not run; fix "
            "what the tool calls, or tune [resilience.breaker] in podium.toml."
        )
        return self._unavailable(message, call, scope, "circuit_open", wait)

    def _full(self, call: Call, scope: str, bulkhead: Bulkhead) -> Unavailable:
        setting = (
            "its @podium.tool(max_concurrent=...) or [resilience] tool_max_concurrent in podium.toml"
            if scope.startswith("tool:")
            else "[resilience] agent_max_concurrent in podium.toml"
        )
        message = (
            f"{scope} has {bulkhead.limit} calls under way in this process, its limit: {call.describe()} is refused "
            f"at once rather than queued behind them. Try again shortly, or raise {setting}."
        )
        return self._unavailable(message, call, scope, "bulkhead_full", 1.0)

    @staticmethod
    def _unavailable(message: str, call: Call, scope: str, why: str, wait: float) -> Unavailable:
        return Unavailable(
            message, agent=call.agent, resource=call.resource, scope=scope, why=why, retry_after_s=round(wait, 3)
        )

    def _audit(self, turned: list[tuple[str, str]], call: Call, error: Exception | None) -> None:
        """Audit each breaker that opened or closed."""
        if not turned:
            return
        with self._engine.begin() as conn:
            for scope, how in turned:
                failed, calls = self.breaker(scope).failure_count()
                detail = {"failed": str(failed), "calls": str(calls), "after": call.describe()}
                if error is not None:
                    detail["last_error"] = f"{type(error).__name__}: {error}"[:500]
                action = "breaker.open" if how == "opened" else "breaker.close"
                record(conn, "podium:containment", action, scope, decision=how, detail=detail)


def _failed(exc: BaseException) -> bool | None:
    """Whether a try that raised `exc` counts against the breakers: not when the call was refused or misused
    (podium's own errors), nor when the tool asked the model to correct its input (pydantic-ai's ModelRetry)."""
    if isinstance(exc, GovernanceError | UsageError) or type(exc).__name__ == "ModelRetry":
        return None
    return True


def _retries(declared: ToolDeclaration, setting: ResilienceSetting) -> int:
    """What the tool declared; else none for a consequential tool (its side effect may not be keyed), else
    [resilience] tool_retries (none unless set: a plain function declares nothing about its side effects)."""
    if declared.retries is not None:
        return declared.retries
    return 0 if declared.consequential else setting.tool_retries


def _transient(exc: Exception, declared: ToolDeclaration) -> bool:
    return isinstance(exc, TRANSIENT + declared.retry_on) and not isinstance(exc, GovernanceError | UsageError)


def _on_own_thread(proceed: Callable[[], Awaitable[Any]], permit: _Permit, name: str) -> asyncio.Future[Any]:
    """Run `proceed()` to its end on a new thread (in a copy of this context: the call site goes with it), and
    return a future of its outcome on this loop. The thread frees `permit`'s slots when it ends."""
    loop = asyncio.get_running_loop()
    outcome: asyncio.Future[Any] = loop.create_future()
    context = contextvars.copy_context()

    async def whole() -> Any:
        return await proceed()

    def deliver(result: Any, error: BaseException | None) -> None:
        if outcome.done():
            return  # the caller stopped waiting (its timeout)
        if error is not None:
            outcome.set_exception(error)
        else:
            outcome.set_result(result)

    def work() -> None:
        result: Any = None
        error: BaseException | None = None
        try:
            result = context.run(asyncio.run, whole())
        except BaseException as exc:  # noqa: BLE001 - handed to the waiting caller
            error = exc
        finally:
            permit.free()
        with contextlib.suppress(RuntimeError):  # the caller's loop is closed: nobody waits for this any more
            loop.call_soon_threadsafe(deliver, result, error)

    threading.Thread(target=work, name=name, daemon=True).start()
    return outcome
