"""The governor: the one code path every model call and tool call of a workflow goes through.

    govern(call, execute, measure)
      1. admission: one read of the agent's registry row, its delegator's, kills, the run's stop, budgets
      2. authorisation: a Cedar decision (default deny) on the call and its context   ActorStopped / ActionDenied
      3. budgets: reserve the call's estimate against every budget covering it         BudgetExhausted
      4. execute; a side effect inside re-checks kills and stops in its own transaction (`fence`)
      5. ledger row and audit entry (with the deciding policy ids), in one transaction, keyed by the call site
         so a re-run step records once

Refusals and failures are audited too. Later stages (exception rules, taint) slot in here.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

import sqlalchemy as sa

from podium._events import Event, EventBus
from podium.audit import AuditEntry, append_many, canonical_json, digest
from podium.cost._budgets import Budgets, Charge, settle
from podium.errors import ActionDenied, ActorStopped, BudgetExhausted, GovernanceError, ReviewRequired, UsageError
from podium.governance._policy import (
    Decision,
    Entity,
    PolicySet,
    agent_entity,
    data_entity,
    model_entity,
    tool_entity,
)
from podium.store import insert_many_if_absent, tables
from podium.store._group_commit import GroupCommitter
from podium.workflows._context import (
    Approval,
    CallSite,
    call_scope,
    current_approvals,
    current_call_or_none,
    current_step,
    current_workflow,
    next_call_site,
)

T = TypeVar("T")

CallKind = Literal["model", "tool", "memory.read", "memory.write"]
# Refusals by these policies mean "stopped" (someone halted the agent or run), not "never allowed".
STOPPING_POLICIES = frozenset({"only-active-agents-act", "killed-work-halts", "cancelled-runs-halt"})


@dataclass(frozen=True)
class Call:
    """What an agent is about to do."""

    agent: str
    kind: CallKind
    resource: str
    tier: str
    input_digest: str
    estimate_nano_usd: int = 0  # what the call may cost at most, reserved against budgets before it runs
    resource_team: str = ""  # the team a tool or data scope belongs to ("" for shared ones)
    # A tool call's arguments and their JSON schema: what a person reviews, and what an edit must satisfy.
    arguments: Mapping[str, Any] | None = field(default=None, compare=False)
    schema: Mapping[str, Any] | None = field(default=None, compare=False)

    @property
    def action(self) -> str:
        return self.kind if self.kind.startswith("memory.") else f"{self.kind}.call"

    def resource_entity(self) -> Entity:
        if self.kind == "model":
            return model_entity(self.resource, self.tier)
        if self.kind == "tool":
            return tool_entity(self.resource, self.resource_team)
        return data_entity(self.resource)


@dataclass(frozen=True)
class Usage:
    """What a call consumed, as the ledger records it."""

    input_tokens: int = 0
    output_tokens: int = 0
    compute_seconds: float = 0.0
    cost_nano_usd: int = 0
    wall_seconds: float = 0.0


_agent = tables.agents
_delegator = tables.agents.alias("delegator")

# Built once: the agent's row and its delegator's, whether a kill covers it or its run was stopped, and whether
# any budget covers the call, in one read.
_ADMISSION = (
    sa.select(
        _agent.c.status,
        _agent.c.owner,
        _agent.c.models,
        _agent.c.tools,
        _agent.c.data_scopes,
        _agent.c.team,
        _agent.c.tier_ceiling,
        _agent.c.delegated_by,
        _delegator.c.status.label("delegator_status"),
        _delegator.c.models.label("delegator_models"),
        _delegator.c.tools.label("delegator_tools"),
        _delegator.c.data_scopes.label("delegator_data_scopes"),
        sa.select(tables.run_stops.c.run_id)
        .where(tables.run_stops.c.run_id == sa.bindparam("run_id"))
        .exists()
        .label("run_stopped"),
        sa.select(tables.kills.c.scope)
        .where(
            tables.kills.c.scope.in_(
                [
                    sa.bindparam("agent_scope"),
                    sa.literal("agent:") + _agent.c.delegated_by,
                    sa.bindparam("workflow_scope"),
                    sa.literal("team:") + _agent.c.team,
                    sa.literal("all"),
                ]
            )
        )
        .exists()
        .label("killed"),
        sa.select(tables.budgets.c.scope)
        .where(
            tables.budgets.c.scope.in_(
                [sa.bindparam("agent_scope"), sa.bindparam("workflow_scope"), sa.literal("team:") + _agent.c.team]
            )
        )
        .exists()
        .label("budgeted"),
    )
    .select_from(_agent.outerjoin(_delegator, _delegator.c.name == _agent.c.delegated_by))
    .where(_agent.c.name == sa.bindparam("agent"))
)


_REGISTRY_COLUMNS = 12  # the admission row's registry fields (the agent's and its delegator's), before the flags
_DECISION_CACHE = 10_000


def _admission_parameters(agent: str, site: CallSite) -> dict[str, str]:
    return {
        "agent": agent,
        "run_id": site.run_id or "",
        "agent_scope": f"agent:{agent}",
        "workflow_scope": f"workflow:{site.workflow or ''}",
    }


def _principal(agent: str, row: Any) -> Entity:
    """The agent as Cedar sees it: a delegate holds the intersection of its and its delegator's permissions,
    and is stopped when its delegator is."""
    grants = {kind: set(json.loads(getattr(row, kind))) for kind in ("models", "tools", "data_scopes")}
    status = row.status
    if row.delegated_by:
        for kind in grants:
            grants[kind] &= set(json.loads(getattr(row, f"delegator_{kind}") or "[]"))
        if status == "active" and row.delegator_status != "active":
            status = f"{row.delegator_status or 'missing'} (its delegator {row.delegated_by!r})"
    return agent_entity(
        agent,
        owner=row.owner,
        team=row.team or "",
        status=status,
        models=grants["models"],
        tools=grants["tools"],
        data_scopes=grants["data_scopes"],
        tier_ceiling=row.tier_ceiling or "",
        delegated_by=row.delegated_by or "",
    )


@dataclass(frozen=True)
class Admission:
    """What admission learnt about the caller: its team, whether a budget covers the call, and the Cedar
    decision with the policy set it came from."""

    team: str
    budgeted: bool
    decision: Decision
    policy_set: str
    exceptions: tuple[str, ...] = ()  # reason codes of `@exception` forbids that denied it (a person may allow)

    def scopes(self, call: Call, site: CallSite) -> tuple[str, ...]:
        workflow = (f"workflow:{site.workflow}",) if site.workflow else ()
        team = (f"team:{self.team}",) if self.team else ()
        return (f"agent:{call.agent}", *workflow, *team)

    def audit_detail(self) -> dict[str, str]:
        return {"policy_set": self.policy_set}


class Governor:
    """Authorises, executes and records governed calls.

    Admission is one indexed read and a Cedar decision; the record is one write transaction. Both happen on
    every call, so a suspension, a kill or a cancel takes effect at the very next call, in any process; and a
    side effect already under way checks again as it commits (`fence`).
    """

    def __init__(self, engine: sa.Engine, events: EventBus, policies: PolicySet) -> None:
        # Admission is one SELECT: on PostgreSQL it runs in autocommit, so it costs no BEGIN and no ROLLBACK round
        # trip (half of its round trips). A single statement sees one snapshot either way. SQLite needs nothing:
        # pysqlite opens no transaction for a SELECT (and changing its isolation level would undo IMMEDIATE).
        self._engine = engine
        self._reader = (
            engine.execution_options(isolation_level="AUTOCOMMIT") if engine.dialect.name == "postgresql" else engine
        )
        self._events = events
        self.policies = policies
        self._budgets = Budgets(engine)
        self._committer: GroupCommitter[CallRecord] = GroupCommitter(engine, write_records)
        self._decisions: dict[tuple[Any, ...], Decision] = {}

    def close(self) -> None:
        self._committer.close()

    async def govern(
        self,
        call: Call,
        execute: Callable[[Call], Awaitable[T]],
        measure: Callable[[T], Usage],
        output: Callable[[T], str],
        detail: dict[str, str] | None = None,
    ) -> T:
        """Admit, execute and record `call`; `detail` (such as the router's explanation) joins its audit entry.

        `execute` performs the call it is given: `call` itself, or the action a person approved in its place (their
        edit of its arguments). A failed call is recorded too, as waste: its wall time and whatever it cost are
        work thrown away.
        """
        site = next_call_site(f"{call.kind} {call.resource!r} of agent {call.agent!r}")
        admission = self._admit(call, site)
        detail = {**(detail or {}), **admission.audit_detail()}
        call, approvals = self._exception_stage(call, site, admission)
        if approvals:
            detail["approved_by_review"] = ", ".join(a.review_id for a in approvals)
        scopes = admission.scopes(call, site) if admission.budgeted else ()
        reserved = bool(scopes) and self._reserve(call, site, admission, scopes, waived=_waived_budgets(approvals))
        if approvals:
            try:
                self._consume(approvals, call, site, admission)
            except GovernanceError:
                self._release(reserved, site)
                raise
        started = time.perf_counter()
        try:
            with call_scope(dataclasses.replace(site, call=call)):
                result = await execute(call)
        except GovernanceError as refused:
            # Refused further in: by a nested governed call (audited there) or by a side effect's fence, audited
            # here, now that the side effect's transaction has rolled back and released its lock.
            if refused.fields.get("stage") == "fence":
                self._record(call, site, "stopped", Usage(), "", {**detail, "reason": refused.message}, admission, ())
            self._release(reserved, site)
            raise
        except Exception as exc:
            failed = Usage(wall_seconds=time.perf_counter() - started)
            error = {**detail, "error": f"{type(exc).__name__}: {exc}"}
            self._record(call, site, "failed", failed, "", error, admission, scopes)  # settles the reservation
            raise
        except BaseException:  # cancelled, interrupted: give the reservation back, then let it through
            self._release(reserved, site)
            raise
        usage = dataclasses.replace(measure(result), wall_seconds=time.perf_counter() - started)
        self._record(call, site, "allowed", usage, digest(output(result)), detail, admission, scopes)
        self._events.emit(Event("call_recorded", site.run_id, call.resource, site.step_id))
        return result

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
        if conn.dialect.name == "postgresql":
            conn.execute(_LOCK_KILL_SWITCH_SHARED)
        else:
            conn.execute(_LOCK_KILL_SWITCH_SQLITE)  # SQLite: this write takes the database's one write lock
        row = conn.execute(_ADMISSION, _admission_parameters(site.call.agent, site)).first()
        principal_status = _principal(site.call.agent, row).attrs["status"] if row is not None else "missing"
        reason = None
        if row is None or principal_status != "active":
            reason = f"agent {site.call.agent!r} is {principal_status}"
        elif row.killed:
            reason = f"the kill switch covers agent {site.call.agent!r}"
        elif row.run_stopped:
            reason = f"run {site.run_id} was cancelled"
        if reason is not None:
            message = f"{reason}: the side effect of {site.call.kind} {site.call.resource!r} was not performed."
            raise ActorStopped(
                message, agent=site.call.agent, resource=site.call.resource, run_id=site.run_id, stage="fence"
            )

    def authorize(self, call: Call) -> Decision:
        """Admit `call` without executing anything (for actions that are not model or tool calls, such as memory
        reads): refused calls raise and are audited, allowed ones are audited with the deciding policies."""
        site = next_call_site(f"{call.kind} {call.resource!r} of agent {call.agent!r}")
        admission = self._admit(call, site)
        detail = admission.audit_detail()
        call, approvals = self._exception_stage(call, site, admission)
        if approvals:
            self._consume(approvals, call, site, admission)
            detail["approved_by_review"] = ", ".join(a.review_id for a in approvals)
        self._record(call, site, "allowed", Usage(), "", detail, admission, ())
        return admission.decision

    def _admit(self, call: Call, site: CallSite) -> Admission:
        with self._reader.connect() as conn:
            row = conn.execute(_ADMISSION, _admission_parameters(call.agent, site)).first()
        if row is None:
            self._refuse(
                ActionDenied,
                call,
                site,
                f"agent {call.agent!r} is not registered, so it may not act. "
                "List it in the podium.App(agents=[...]) you launch, or `podium agents add` it.",
                (),
            )
        assert row is not None
        context = {
            "run": site.run_id or "",
            "workflow": site.workflow or "",
            "amount_nano_usd": call.estimate_nano_usd,
            "killed": bool(row.killed),
            "run_stopped": bool(row.run_stopped),
        }
        decision = self._decide(call, row, context)
        exceptions: tuple[str, ...] = ()
        if not decision.allowed:
            principal = _principal(call.agent, row)
            if decision.policies and set(decision.policies) <= self.policies.exception_policies:
                # Only `@exception` forbids stand in the way: a person may allow it, if it is otherwise permitted.
                waived = self.policies.decide(principal, call.action, call.resource_entity(), context, waive=True)
                if not waived.allowed:
                    self._refuse_by_policy(call, site, principal, row, waived)
                exceptions = tuple(f"policy:{policy}" for policy in decision.policies)
            else:
                self._refuse_by_policy(call, site, principal, row, decision)
        return Admission(str(row.team or ""), bool(row.budgeted), decision, self.policies.short_digest, exceptions)

    def _exception_stage(self, call: Call, site: CallSite, admission: Admission) -> tuple[Call, tuple[Approval, ...]]:
        """Stop the call for a person if an exception fires that no approval of this exact action covers.

        Returns the call to perform, which is the person's edit if they made one, and the approvals it is performed
        under (consumed later, once it is sure to run: a budget may still stop it for a review of its own).
        """
        mine = tuple(a for a in current_approvals() if a.resource == call.resource)
        approvals = _approval_chain(mine, call.input_digest)
        if mine and not approvals:
            # The step re-ran with an approval, but proposes something other than what the person approved.
            approved = ", ".join(a.review_id for a in mine)
            message = (
                f"{call.kind} {call.resource!r} of agent {call.agent!r} proposes arguments other than the ones "
                f"approved in review {approved} (digest {call.input_digest[:12]}…): an approval applies to the exact "
                "action a person saw, so this one is refused."
            )
            self._refuse_with(ActionDenied, call, site, message, "altered", admission)
        if approvals and call.kind == "tool":  # what runs is what the person approved (their edit, if any)
            last = approvals[-1]
            call = dataclasses.replace(call, arguments=last.arguments, input_digest=last.approved_digest)
        covered = {reason for approval in approvals for reason in approval.reasons}
        workflow = current_workflow()
        reasons = list(admission.exceptions)
        if call.kind == "tool" and workflow is not None and workflow.rules.guards(call.resource):
            reasons += workflow.rules.reasons(workflow.facts, call.arguments or {})
        reasons = [reason for reason in reasons if reason not in covered]
        if reasons and workflow is None:
            message = (
                f"{call.kind} {call.resource!r} of agent {call.agent!r} needs a person's approval "
                f"({', '.join(reasons)}), which only a workflow run can wait for: make the call in a workflow's step."
            )
            self._refuse_with(ActionDenied, call, site, message, "needs a person", admission)
        if reasons:
            assert workflow is not None
            self._raise_review(call, site, admission, workflow.rules.next_review(reasons))
        return call, approvals

    def _raise_review(self, call: Call, site: CallSite, admission: Admission, reasons: list[str]) -> None:
        step = current_step()
        if step is not None and step.calls > 1:
            # On approval the step runs again from its start: calls before this one would be made twice.
            raise UsageError(
                f"{call.kind} {call.resource!r} of agent {call.agent!r} needs a person ({', '.join(reasons)}), but "
                f"it is not the first governed call in step {step.step_name!r}: when the person approves, the step "
                "runs again, and the calls before it would be repeated. Give the action a step of its own (as "
                "support_triage.deliver does)."
            )
        workflow = current_workflow()
        facts = workflow.facts if workflow is not None else None
        detail = {"reasons": ", ".join(reasons)}
        self._record(call, site, "exception", Usage(), "", detail, admission, ())
        raise ReviewRequired(
            f"{call.kind} {call.resource!r} of agent {call.agent!r} waits for a person: {', '.join(reasons)}.",
            agent=call.agent,
            kind=call.kind,
            resource=call.resource,
            run_id=site.run_id,
            reasons=tuple(reasons),
            arguments=dict(call.arguments or {}),
            schema=dict(call.schema or {}),
            input_digest=call.input_digest,
            facts=facts.as_json() if facts is not None else {},
            judgement=dataclasses.asdict(facts.judgement) if facts is not None and facts.judgement else None,
        )

    def _consume(self, approvals: tuple[Approval, ...], call: Call, site: CallSite, admission: Admission) -> None:
        """Claim the approvals for this call site, once: a re-run of the same step after a crash finds them its own,
        any other call finds them used."""
        reviews = tables.reviews
        used: Approval | None = None
        with self._engine.begin() as conn:
            for approval in approvals:
                claimed = conn.execute(
                    reviews.update()
                    .where(
                        reviews.c.id == approval.review_id,
                        reviews.c.status == "approved",
                        reviews.c.consumed_by.is_(None) | (reviews.c.consumed_by == site.key),
                    )
                    .values(consumed_by=site.key)
                ).rowcount
                if not claimed:
                    used = approval
                    conn.rollback()  # none of the chain is claimed, then
                    break
        if used is not None:
            message = (
                f"the approval in review {used.review_id} was already used by another call: it is performed once, "
                f"so {call.kind} {call.resource!r} is refused."
            )
            self._refuse_with(ActionDenied, call, site, message, "replayed", admission)

    def _decide(self, call: Call, row: Any, context: dict[str, Any]) -> Decision:
        """The Cedar decision, reused while the inputs it depends on are the same: the agent's registry rows, the
        call's action and resource, and the context attributes some policy reads (not the run id, unless one
        does). A registry change or a kill changes the row, and so the key."""
        keys = self.policies.context_keys
        used = tuple(context.get(k) for k in keys) if keys is not None else tuple(sorted(context.items()))
        key = (
            call.agent,
            tuple(row[:_REGISTRY_COLUMNS]),
            call.action,
            call.resource,
            call.tier,
            call.resource_team,
            used,
        )
        decision = self._decisions.get(key)
        if decision is None:
            decision = self.policies.decide(_principal(call.agent, row), call.action, call.resource_entity(), context)
            if len(self._decisions) >= _DECISION_CACHE:
                self._decisions.clear()
            self._decisions[key] = decision
        return decision

    def _refuse_by_policy(self, call: Call, site: CallSite, principal: Entity, row: Any, decision: Decision) -> None:
        what = f"{call.kind} {call.resource!r}"
        if STOPPING_POLICIES & set(decision.policies):
            if row.killed:
                why = f"the kill switch covers agent {call.agent!r}; an operator lifts it with `podium restore`"
            elif row.run_stopped:
                why = f"run {site.run_id} was cancelled"
            else:
                why = (
                    f"agent {call.agent!r} is {principal.attrs['status']}; "
                    f"an operator resumes it with `podium agents resume {call.agent}`"
                )
            self._refuse(
                ActorStopped, call, site, f"{why}. It may not call {what} ({decision.reason}).", decision.policies
            )
        if decision.policies:  # a forbid decided: say which, not what to grant
            message = f"agent {call.agent!r} may not call {what}: {decision.reason}."
        else:
            granted = sorted(principal.attrs["models" if call.kind == "model" else "tools"])
            hint = (
                f"allowed: {', '.join(granted) or 'none'}. Add it to the agent's {call.kind}s= list or "
                f"`podium agents grant {call.agent} --{call.kind} {call.resource}` if it should be"
                if call.kind in ("model", "tool")
                else f"data scopes: {', '.join(sorted(principal.attrs['data_scopes'])) or 'none'}"
            )
            message = f"agent {call.agent!r} is not allowed {what} ({decision.reason}; {hint})."
        self._refuse(ActionDenied, call, site, message, decision.policies)

    def _reserve(
        self, call: Call, site: CallSite, admission: Admission, scopes: tuple[str, ...], *, waived: frozenset[str]
    ) -> bool:
        """Hold the call's estimate against every budget covering it; refuse (audited) if one has no room, or
        stop the call for a person if the budget says so. A budget a person let the call go over (`waived`) is not
        checked again: the call is charged to it when it is recorded, over the limit if need be."""
        try:
            reserved = self._budgets.reserve(site.key, site.run_id, scopes, call.estimate_nano_usd, waived=waived)
        except BudgetExhausted as exc:
            step = current_step()
            if exc.fields.get("on_exhausted") == "review" and step is not None and step.calls == 1:
                self._raise_review(call, site, admission, [f"budget_exhausted:{exc.fields['scope']}"])
            # A later call of its step cannot wait (the step would run again from its start): it stops.
            self._record(call, site, "over_budget", Usage(), "", {"reason": exc.message}, admission, ())
            raise
        self._events.emit(Event("budget_reserved", site.run_id, call.resource, site.step_id))
        return reserved

    def _release(self, reserved: bool, site: CallSite) -> None:
        if reserved:
            self._budgets.release(site.key)

    def _refuse_with(
        self, error: type[GovernanceError], call: Call, site: CallSite, message: str, why: str, admission: Admission
    ) -> None:
        """Refuse an admitted call for a reason of its own (not a policy's), audited."""
        self._record(call, site, "denied", Usage(), "", {"reason": message, "refusal": why}, admission, ())
        raise error(message, agent=call.agent, resource=call.resource, run_id=site.run_id)

    def _refuse(
        self, error: type[GovernanceError], call: Call, site: CallSite, message: str, policies: tuple[str, ...]
    ) -> None:
        decision = "stopped" if error is ActorStopped else "denied"
        extra = {"reason": message, "policy_set": self.policies.short_digest}
        self._record(call, site, decision, Usage(), "", extra, None, (), policies)
        raise error(message, agent=call.agent, resource=call.resource, run_id=site.run_id, policies=policies)

    def _record(
        self,
        call: Call,
        site: CallSite,
        decision: str,
        usage: Usage,
        output_digest: str,
        extra: dict[str, str],
        admission: Admission | None,
        budget_scopes: tuple[str, ...],
        policies: tuple[str, ...] = (),
    ) -> None:
        record = CallRecord(
            call,
            site,
            decision,
            usage,
            output_digest,
            extra,
            time.time(),
            admission.team if admission else "",
            budget_scopes,
            admission.decision.policies if admission else policies,
        )
        self._committer.write(record)


def _approval_chain(approvals: tuple[Approval, ...], proposed: str) -> tuple[Approval, ...]:
    """The approvals that lead from the `proposed` action to what runs, in the order people gave them: each one
    approves what the one before let through (an action can need several: a rule's reviewer, then a budget's)."""
    chain: list[Approval] = []
    for approval in approvals:
        if approval.proposed_digest == proposed:
            chain.append(approval)
            proposed = approval.approved_digest
    return tuple(chain)


def _waived_budgets(approvals: tuple[Approval, ...]) -> frozenset[str]:
    """The budgets people let the call go over: those whose exhaustion they were asked about."""
    prefix = "budget_exhausted:"
    return frozenset(r.removeprefix(prefix) for a in approvals for r in a.reasons if r.startswith(prefix))


_LOCK_KILL_SWITCH_SHARED = sa.text("SELECT epoch FROM podium_kill_epoch WHERE id = 1 FOR SHARE")
_LOCK_KILL_SWITCH_SQLITE = sa.text("UPDATE podium_kill_epoch SET epoch = epoch WHERE id = 1")


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
    policies: tuple[str, ...] = ()  # the Cedar policies that decided

    @property
    def ran(self) -> bool:
        """Whether the call executed (and so has a ledger row), as opposed to being refused."""
        return self.decision in ("allowed", "failed") and self.call.kind in ("model", "tool")

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
            action=self.call.action,
            resource=self.call.resource,
            decision=self.decision,
            run_id=self.site.run_id,
            step_id=self.site.step_id,
            input_digest=self.call.input_digest,
            output_digest=self.output_digest,
            policies=self.policies,
            cost_nano_usd=self.usage.cost_nano_usd,
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
