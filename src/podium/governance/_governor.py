"""The governor: the one code path every model call and tool call of a workflow goes through.

    govern(call, execute, measure)
      1. refuse if the agent is suspended or the run is cancelled          ActorStopped
      2. refuse if the agent is not allowed this model or tool            ActionDenied
      3. execute
      4. ledger row and audit entry, in one transaction, keyed by the call site so a re-run step records once

Refusals and failures are audited too. Later stages (routing, budgets, exception rules, taint) slot in here.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal, TypeVar

import sqlalchemy as sa

from podium._events import Event, EventBus
from podium.cost._budgets import Budgets, Charge, settle
from podium.errors import ActionDenied, ActorStopped, BudgetExhausted, GovernanceError
from podium.governance._audit import AuditEntry, append_many, canonical_json, digest
from podium.store import insert_many_if_absent, tables
from podium.store._group_commit import GroupCommitter
from podium.workflows._context import CallSite, call_scope, next_call_site

T = TypeVar("T")

CallKind = Literal["model", "tool"]


@dataclass(frozen=True)
class Call:
    """What an agent is about to do."""

    agent: str
    kind: CallKind
    resource: str
    tier: str
    input_digest: str
    estimate_nano_usd: int = 0  # what the call may cost at most, reserved against budgets before it runs


@dataclass(frozen=True)
class Usage:
    """What a call consumed, as the ledger records it."""

    input_tokens: int = 0
    output_tokens: int = 0
    compute_seconds: float = 0.0
    cost_nano_usd: int = 0
    wall_seconds: float = 0.0


# Built once: the agent's row, whether its run was stopped, and whether any budget covers the call, in one read.
_ADMISSION = sa.select(
    tables.agents.c.status,
    tables.agents.c.models,
    tables.agents.c.tools,
    tables.agents.c.team,
    sa.select(tables.run_stops.c.run_id)
    .where(tables.run_stops.c.run_id == sa.bindparam("run_id"))
    .exists()
    .label("run_stopped"),
    sa.select(tables.budgets.c.scope)
    .where(
        tables.budgets.c.scope.in_(
            [sa.bindparam("agent_scope"), sa.bindparam("workflow_scope"), sa.literal("team:") + tables.agents.c.team]
        )
    )
    .exists()
    .label("budgeted"),
).where(tables.agents.c.name == sa.bindparam("agent"))


@dataclass(frozen=True)
class Admission:
    """What admission learnt about the caller: its team, and whether a budget covers the call."""

    team: str
    budgeted: bool

    def scopes(self, call: Call, site: CallSite) -> tuple[str, ...]:
        workflow = (f"workflow:{site.workflow}",) if site.workflow else ()
        team = (f"team:{self.team}",) if self.team else ()
        return (f"agent:{call.agent}", *workflow, *team)


class Governor:
    """Authorises, executes and records governed calls.

    Admission is one indexed read (the agent's status and allow-lists, and whether the run was stopped); the
    record is one write transaction. Both happen on every call, so a suspension or a cancel takes effect at the
    very next call, in any process.
    """

    def __init__(self, engine: sa.Engine, events: EventBus) -> None:
        self._engine = engine
        self._events = events
        self._budgets = Budgets(engine)
        self._committer: GroupCommitter[CallRecord] = GroupCommitter(engine, write_records)

    def close(self) -> None:
        self._committer.close()

    async def govern(
        self,
        call: Call,
        execute: Callable[[], Awaitable[T]],
        measure: Callable[[T], Usage],
        output: Callable[[T], str],
        detail: dict[str, str] | None = None,
    ) -> T:
        """Admit, execute and record `call`; `detail` (such as the router's explanation) joins its audit entry.

        A failed call is recorded too, as waste: its wall time and whatever it cost are work thrown away.
        """
        site = next_call_site(f"{call.kind} {call.resource!r} of agent {call.agent!r}")
        admission = self._admit(call, site)
        scopes = admission.scopes(call, site) if admission.budgeted else ()
        reserved = bool(scopes) and self._reserve(call, site, admission, scopes)
        started = time.perf_counter()
        try:
            with call_scope(site):
                result = await execute()
        except GovernanceError:
            # Refused further in (a nested governed call, audited there): nothing ran to a record here.
            self._release(reserved, site)
            raise
        except Exception as exc:
            failed = Usage(wall_seconds=time.perf_counter() - started)
            error = {**(detail or {}), "error": f"{type(exc).__name__}: {exc}"}
            self._record(call, site, "failed", failed, "", error, admission.team, scopes)  # settles the reservation
            raise
        except BaseException:  # cancelled, interrupted: give the reservation back, then let it through
            self._release(reserved, site)
            raise
        usage = dataclasses.replace(measure(result), wall_seconds=time.perf_counter() - started)
        self._record(call, site, "allowed", usage, digest(output(result)), detail or {}, admission.team, scopes)
        self._events.emit(Event("call_recorded", site.run_id, call.resource, site.step_id))
        return result

    def _admit(self, call: Call, site: CallSite) -> Admission:
        parameters = {
            "agent": call.agent,
            "run_id": site.run_id or "",
            "agent_scope": f"agent:{call.agent}",
            "workflow_scope": f"workflow:{site.workflow or ''}",
        }
        with self._engine.connect() as conn:
            row = conn.execute(_ADMISSION, parameters).first()
        if row is None:
            self._refuse(
                ActionDenied,
                call,
                site,
                f"agent {call.agent!r} is not registered, so it may not act. "
                "List it in the podium.App(agents=[...]) you launch, so its identity and owner are recorded.",
            )
        assert row is not None
        if row.status != "active":
            self._refuse(
                ActorStopped,
                call,
                site,
                f"agent {call.agent!r} is {row.status}; it may not call {call.kind} {call.resource!r}. "
                f"An operator restores it with `podium agents restore {call.agent}`.",
            )
        if row.run_stopped:
            self._refuse(
                ActorStopped,
                call,
                site,
                f"run {site.run_id} was cancelled; agent {call.agent!r} may not call {call.kind} {call.resource!r}.",
            )
        allowed: list[str] = json.loads(row.models if call.kind == "model" else row.tools)
        if call.resource not in allowed and f"tier:{call.tier}" not in allowed:
            self._refuse(
                ActionDenied,
                call,
                site,
                f"agent {call.agent!r} is not allowed {call.kind} {call.resource!r} (allowed: "
                f"{', '.join(allowed) or 'none'}). Add it to the agent's {call.kind}s= list if it should be.",
            )
        return Admission(str(row.team or ""), bool(row.budgeted))

    def _reserve(self, call: Call, site: CallSite, admission: Admission, scopes: tuple[str, ...]) -> bool:
        """Hold the call's estimate against every budget covering it; refuse (audited) if one has no room."""
        try:
            reserved = self._budgets.reserve(site.key, site.run_id, scopes, call.estimate_nano_usd)
        except BudgetExhausted as exc:
            self._record(call, site, "over_budget", Usage(), "", {"reason": exc.message}, admission.team, ())
            raise
        self._events.emit(Event("budget_reserved", site.run_id, call.resource, site.step_id))
        return reserved

    def _release(self, reserved: bool, site: CallSite) -> None:
        if reserved:
            self._budgets.release(site.key)

    def _refuse(self, error: type[GovernanceError], call: Call, site: CallSite, message: str) -> None:
        decision = "stopped" if error is ActorStopped else "denied"
        self._record(call, site, decision, Usage(), "", {"reason": message}, "", ())
        raise error(message, agent=call.agent, resource=call.resource, run_id=site.run_id)

    def _record(
        self,
        call: Call,
        site: CallSite,
        decision: str,
        usage: Usage,
        output_digest: str,
        extra: dict[str, str],
        team: str,
        budget_scopes: tuple[str, ...],
    ) -> None:
        record = CallRecord(call, site, decision, usage, output_digest, extra, time.time(), team, budget_scopes)
        self._committer.write(record)


@dataclass(frozen=True)
class CallRecord:
    """What the governor writes about one call: a ledger row (if it was allowed) and an audit entry."""

    call: Call
    site: CallSite
    decision: str
    usage: Usage
    output_digest: str
    extra: dict[str, str]
    at: float
    team: str = ""
    budget_scopes: tuple[str, ...] = ()  # budgets covering the call: charged, and its reservation settled, with it

    @property
    def ran(self) -> bool:
        """Whether the call executed (and so has a ledger row), as opposed to being refused."""
        return self.decision in ("allowed", "failed")

    @property
    def key(self) -> str:
        # A refusal or failure gets its own key, so the same call allowed on a retry is still recorded.
        return self.site.key if self.decision == "allowed" else f"{self.site.key}:{self.decision}"

    def ledger_row(self) -> dict[str, object]:
        return {
            "call_key": self.key,
            "run_id": self.site.run_id,
            "step_id": self.site.step_id,
            "agent": self.call.agent,
            "kind": self.call.kind,
            "resource": self.call.resource,
            "tier": self.call.tier,
            "input_tokens": self.usage.input_tokens,
            "output_tokens": self.usage.output_tokens,
            "compute_seconds": self.usage.compute_seconds,
            "cost_nano_usd": self.usage.cost_nano_usd,
            "at": self.at,
            "wall_seconds": self.usage.wall_seconds,
            "wasted": int(self.decision == "failed"),
            "workflow": self.site.workflow,
            "team": self.team or None,
            "api_key": None,
        }

    def audit_entry(self) -> AuditEntry:
        detail = {"kind": self.call.kind, "tier": self.call.tier, **self.extra}
        if self.decision == "allowed":
            detail.update(
                input_tokens=str(self.usage.input_tokens),
                output_tokens=str(self.usage.output_tokens),
                cost_nano_usd=str(self.usage.cost_nano_usd),
            )
        return AuditEntry(
            call_key=self.key,
            actor=f"agent:{self.call.agent}",
            action=f"{self.call.kind}.call",
            resource=self.call.resource,
            decision=self.decision,
            run_id=self.site.run_id,
            step_id=self.site.step_id,
            input_digest=self.call.input_digest,
            output_digest=self.output_digest,
            detail=canonical_json(detail),
            at=self.at,
        )


def write_records(conn: sa.Connection, records: list[CallRecord]) -> None:
    """Write a batch of call records: the ledger rows first, then the audit entries, in the caller's transaction.

    Calls that ran (allowed or failed) have a ledger row; refused ones only an audit entry. A call whose ledger
    row already existed is a re-run step's: its audit entry was committed with that row.
    """
    ran = [r for r in records if r.ran]
    first_time = insert_many_if_absent(conn, tables.ledger, [r.ledger_row() for r in ran]) if ran else set()
    # Charge what each call cost, unless an earlier execution of the step already paid (its row existed).
    settle(
        conn,
        [
            Charge(r.site.key, r.budget_scopes, r.usage.cost_nano_usd if r.key in first_time else None)
            for r in ran
            if r.budget_scopes
        ],
    )
    entries = [r.audit_entry() for r in records if r.key in first_time or not r.ran]
    append_many(conn, entries, known_new=first_time)
