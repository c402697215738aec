"""The governor: the one code path every model call, tool call and memory access goes through.

    govern(call, execute, measure, output)
      front door    names the call site: a workflow step, a request (gateway, MCP), or plain code
      stages        admission -> information flow -> authorisation -> exceptions -> budgets (see `_pipeline.py`);
                    any may refuse (information flow plugs in from `podium.security`, exceptions from `podium.review`)
      execute       the call itself; a side effect inside re-checks kills and stops as it commits (`fence`)
      record        ledger row and audit entry (with the deciding policy ids), in one transaction, keyed by the
                    call site so a retried step or request records once; budgets settled in it

Every refusal is audited with the stage that made it. A new concern is a new `Stage`, added where the pipeline is
assembled below, never a check copied into call sites.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import sqlalchemy as sa

from podium._events import Event, EventBus
from podium.audit import digest
from podium.cost import Budgets
from podium.errors import ActionDenied, GovernanceError, SideEffectFenced
from podium.governance._call import Call, Outcome, Usage
from podium.governance._pipeline import CallContext, NeedsReview, Refusal, Stage
from podium.governance._record import CallRecord, write_records
from podium.governance._site import CallSite, call_scope, current_call_or_none, next_call_site
from podium.governance._stages import Admission, Authorisation, BudgetStage, read_standing
from podium.policy import Decision, PolicySet
from podium.store import GroupCommitter, reader, tables

T = TypeVar("T")
R = TypeVar("R")


class Governor:
    """Authorises, executes and records governed calls through its pipeline of stages.

    Admission is one indexed read and a Cedar decision; the record is one write transaction. Both happen on
    every call, so a suspension, a kill or a cancel takes effect at the very next call, in any process; and a
    side effect already under way checks again as it commits (`fence`).
    """

    def __init__(
        self, engine: sa.Engine, events: EventBus, policies: PolicySet, *, budgets: Budgets, exceptions: Stage
    ) -> None:
        """`exceptions` is the stage that decides when a person must look first (`podium.review` provides it)."""
        self._engine = engine
        self._events = events
        self.policies = policies
        self._committer: GroupCommitter[CallRecord] = GroupCommitter(engine, write_records)
        self._reader = reader(engine)
        # The pipeline, in order. A new stage is one line here.
        self.stages: tuple[Stage, ...] = (
            Admission(engine),
            Authorisation(policies),
            exceptions,
            BudgetStage(budgets, events),
        )

    def add_stage(self, stage: Stage, *, before: str) -> None:
        """Insert `stage` into the pipeline ahead of the stage named `before` (e.g. "budgets")."""
        names = [s.name for s in self.stages]
        if stage.name in names:
            raise ValueError(f"the pipeline already has a stage named {stage.name!r}; give yours another name.")
        if before not in names:
            raise ValueError(f"no stage named {before!r}; the pipeline's stages are {', '.join(names)}.")
        at = names.index(before)
        self.stages = (*self.stages[:at], stage, *self.stages[at:])

    def close(self) -> None:
        self._committer.close()

    async def govern(
        self,
        call: Call,
        execute: Callable[[Call], Awaitable[T]],
        measure: Callable[[T], Usage],
        output: Callable[[T], str],
        detail: dict[str, str] | None = None,
        annotate: Callable[[T], dict[str, str]] | None = None,
        *,
        offload: bool = False,
    ) -> T:
        """Pass `call` through the pipeline, execute and record it; `detail` (such as the router's explanation)
        joins its audit entry, and so does what `annotate` says of the result (how a stream ended, say).

        `offload` runs the pipeline's database work in a worker thread, so an event loop serving many requests (the
        gateway) is not blocked by it and concurrent records share a group commit; a workflow's calls run it inline
        (a thread hand-off costs more than it saves there).

        `execute` performs the call it is given: `call` itself, or the action a person approved in its place (their
        edit of its arguments). A failed call is recorded too, as waste: its wall time and whatever it cost are
        work thrown away.
        """
        ctx = self._context(call, detail)
        entered = await self._off(offload, self._admit, ctx)
        started = time.perf_counter()
        concluded = False  # recorded and finished, in one hand-off to a worker thread
        try:
            with call_scope(dataclasses.replace(ctx.site, call=ctx.call)):
                result = await self._run(ctx, execute)
        except SideEffectFenced as fenced:
            # A side effect refused as it committed: audited here, now that its transaction rolled back.
            concluded = True
            fence = {"reason": fenced.message, "stage": "fence"}
            await self._off(offload, self._conclude, entered, ctx, "stopped", fence, False)
            raise
        except GovernanceError:
            raise  # a nested governed call's refusal, audited where it happened
        except Exception as exc:
            ctx.usage = Usage(wall_seconds=time.perf_counter() - started)
            failure = {"error": f"{type(exc).__name__}: {exc}"}
            ctx.output = str(exc)  # what the caller reads of a failure (a model, as a retry prompt): a stage labels it
            concluded = True
            await self._off(offload, self._conclude, entered, ctx, "failed", failure, True)  # settles the hold
            raise
        else:
            ctx.usage = dataclasses.replace(measure(result), wall_seconds=time.perf_counter() - started)
            ctx.output_digest = digest(output(result))
            ctx.output = result
            if annotate is not None:
                ctx.detail.update(annotate(result))
            concluded = True
            await self._off(offload, self._conclude, entered, ctx, "allowed", {}, True)
        finally:
            if not concluded:
                await self._off(offload, self._finish, entered, ctx, None)
        self._events.emit(Event("call_recorded", ctx.site.run_id, ctx.call.resource, ctx.site.step_id))
        return result

    async def _run(self, ctx: CallContext, execute: Callable[[Call], Awaitable[T]]) -> T:
        """Execute the call through the `run` of each stage that wraps it, the first stage outermost."""

        async def once() -> T:
            return await execute(ctx.call)

        proceed: Callable[[], Awaitable[T]] = once
        for stage in reversed([s for s in self.stages if type(s).run is not Stage.run]):
            proceed = functools.partial(stage.run, ctx, proceed)
        return await proceed()

    def _conclude(
        self, entered: Sequence[Stage], ctx: CallContext, outcome: Outcome, extra: dict[str, str], ran: bool
    ) -> None:
        """Record the call, then finish every entered stage. An allowed call counts as allowed only once recorded:
        until then the stages hold what they held, to give back."""
        recorded = False
        try:
            self._record(ctx, outcome, extra, ran=ran)
            recorded = True
        finally:
            self._finish(entered, ctx, outcome if recorded or outcome != "allowed" else None)

    @staticmethod
    async def _off(offload: bool, work: Callable[..., R], *args: Any) -> R:
        """`work(*args)`, in a worker thread if `offload`."""
        return await asyncio.to_thread(work, *args) if offload else work(*args)

    def authorize(self, call: Call) -> Decision:
        """Pass `call` through the pipeline without executing anything (for actions that are not model or tool
        calls, such as memory reads): refused calls raise and are audited, allowed ones are audited with the
        deciding policies."""
        ctx = self._context(call, None)
        entered = self._admit(ctx)
        self._conclude(entered, ctx, "allowed", {}, True)
        assert ctx.decision is not None
        return ctx.decision

    def fence(self, conn: sa.Connection) -> None:
        """Check, inside the transaction of a side effect, that the calling agent and run may still act.

        Call it in the same transaction as the side effect's write, before committing. It takes a shared lock on
        the kill switch's row, which every kill updates: so either the side effect commits before the kill is
        acknowledged, or it sees the kill here and is refused, and nothing of it is written. The governor audits
        the refusal once the side effect's transaction has rolled back.
        """
        site = current_call_or_none()
        if site is None or site.call is None:
            return
        call = site.call
        conn.execute(_LOCK_KILL_SWITCH_SHARED if conn.dialect.name == "postgresql" else _LOCK_KILL_SWITCH_SQLITE)
        reason = _why_halted(conn, call, site)
        if reason is not None:
            message = f"{reason}: the side effect of {call.kind} {call.resource!r} was not performed."
            raise SideEffectFenced(message, agent=call.agent, resource=call.resource, run_id=site.run_id)

    def halted(self) -> str | None:
        """Why the call being executed may not go on, if something stopped its principal since it was admitted (a
        kill, a suspension, leaving the directory, a cancelled run); None while it may. One indexed read: a long
        call (a gateway stream) asks every so often and stops when told."""
        site = current_call_or_none()
        if site is None or site.call is None:
            return None
        with self._reader.connect() as conn:
            return _why_halted(conn, site.call, site)

    def permits(self, call: Call) -> bool:
        """Whether admission and authorisation would let `call` through now, recording nothing (for listing what a
        key may use; the call itself passes the whole pipeline when it is made)."""
        ctx = self._context(call, None)
        try:
            for stage in self.stages:
                if stage.name in ("admission", "authorisation"):
                    stage.check(ctx)
        except Refusal:
            return False
        return not ctx.exceptions

    def _context(self, call: Call, detail: dict[str, str] | None) -> CallContext:
        """The call's context, at the site its front door names."""
        site = next_call_site(call.describe())
        return CallContext(call, site, {**(detail or {}), "policy_set": self.policies.short_digest})

    def _admit(self, ctx: CallContext) -> list[Stage]:
        """Run every stage's check, then every commit; return the stages entered. A refusal, or a request for a
        person, is recorded with the stage that made it, the entered stages are finished, and its error raised."""
        entered: list[Stage] = []
        stage: Stage | None = None
        try:
            try:
                for stage in self.stages:
                    entered.append(stage)
                    stage.check(ctx)
                for stage in self.stages:
                    stage.commit(ctx)
            except NeedsReview as needed:
                raise self._review(ctx, needed.reasons) from None
        except Refusal as refusal:
            assert stage is not None
            self._refused(entered, ctx, stage, refusal)
        except BaseException:
            self._finish(entered, ctx, None)
            raise
        return entered

    def _review(self, ctx: CallContext, reasons: tuple[str, ...]) -> Refusal:
        """What a request for a person becomes: a review request if a stage handles reviews, else a refusal."""
        for stage in self.stages:
            refusal = stage.review(ctx, reasons)
            if refusal is not None:
                return refusal
        message = f"{ctx.call.describe()} needs a person's approval ({', '.join(reasons)}), and nobody can be asked."
        return Refusal(ActionDenied(message, agent=ctx.call.agent, resource=ctx.call.resource), "denied")

    def _refused(self, entered: Sequence[Stage], ctx: CallContext, stage: Stage, refusal: Refusal) -> None:
        extra = {"stage": stage.name}
        if refusal.outcome != "exception":
            extra["reason"] = refusal.error.message
        if refusal.why:
            extra["refusal"] = refusal.why
        self._record(ctx, refusal.outcome, extra, ran=False, policies=refusal.policies or ctx.policies)
        self._finish(entered, ctx, refusal.outcome)
        raise refusal.error from None

    @staticmethod
    def _finish(entered: Sequence[Stage], ctx: CallContext, outcome: Outcome | None) -> None:
        """Every entered stage's finish, last first; one that fails does not keep the others from theirs."""
        failed: Exception | None = None
        for stage in reversed(entered):
            try:
                stage.finish(ctx, outcome)
            except Exception as exc:  # noqa: BLE001 - raised below, once the other stages have finished
                failed = failed or exc
        if failed is not None:
            raise failed

    def _record(
        self,
        ctx: CallContext,
        outcome: Outcome,
        extra: dict[str, str],
        *,
        ran: bool = True,
        policies: tuple[str, ...] | None = None,
    ) -> None:
        """Write the call's record: a call that ran is charged to its budgets (settling its reservation)."""
        self._committer.write(
            CallRecord(
                ctx.call,
                ctx.site,
                outcome,
                ctx.usage if ran else Usage(),
                ctx.output_digest if ran else "",
                {**ctx.detail, **extra},
                time.time(),
                ctx.team,
                ctx.budget_scopes if ran else (),
                ctx.policies if policies is None else policies,
            )
        )


def _why_halted(conn: sa.Connection, call: Call, site: CallSite) -> str | None:
    standing = read_standing(conn, call, site)
    status = standing.principal.attrs.get("status", "active") if standing is not None else "missing"
    if standing is None or status != "active":
        return f"{call.principal} {call.agent!r} is {status}"
    if standing.killed:
        return f"the kill switch covers {call.principal} {call.agent!r}"
    if standing.run_stopped:
        return f"run {site.run_id} was cancelled"
    return _key_gone(conn, site.api_key) if site.api_key else None


_agent_keys, _person_keys = tables.agent_keys, tables.person_keys
_KEY = sa.union_all(
    sa.select(_agent_keys.c.revoked_at, sa.null().label("expires_at")).where(_agent_keys.c.id == sa.bindparam("key")),
    sa.select(_person_keys.c.revoked_at, _person_keys.c.expires_at).where(_person_keys.c.id == sa.bindparam("key")),
)


def _key_gone(conn: sa.Connection, key: str) -> str | None:
    """Why the API key a call was made with no longer stands (revoked, or past its expiry), if it does not: a stream
    that key opened stops with it, as a kill of `key:<id>` would stop it."""
    row = conn.execute(_KEY, {"key": key}).first()
    if row is None:
        return None
    if row.revoked_at is not None:
        return f"API key {key} was revoked"
    if row.expires_at is not None and row.expires_at <= time.time():
        return f"API key {key} expired"
    return None


_LOCK_KILL_SWITCH_SHARED = sa.text("SELECT epoch FROM podium_kill_epoch WHERE id = 1 FOR SHARE")
_LOCK_KILL_SWITCH_SQLITE = sa.text("UPDATE podium_kill_epoch SET epoch = epoch WHERE id = 1")
