"""The governor's own stages: admission (who is calling, and what stops them), authorisation (Cedar) and budgets.

The exception stage (review rules and approvals) plugs in from `podium.review`; execute and record close the
pipeline in `Governor.govern`.
"""

from __future__ import annotations

import itertools
import json
from typing import Any, ClassVar

import sqlalchemy as sa

from podium._events import Event, EventBus
from podium.agents import MAX_DELEGATION_DEPTH
from podium.cost import Budgets
from podium.errors import ActionDenied, ActorStopped, BudgetExhausted
from podium.governance._call import Call, Outcome
from podium.governance._pipeline import CallContext, NeedsReview, Refusal, Stage, Standing
from podium.governance._site import CallSite
from podium.policy import Decision, Entity, PolicySet, agent_entity, person_entity
from podium.store import reader, tables

CHARGED_KINDS = frozenset({"model", "tool"})  # the calls that have a ledger row, and so can spend a budget
# Refusals by these policies mean "stopped" (someone halted the agent or run), not "never allowed".
STOPPING_POLICIES = frozenset({"only-active-agents-act", "killed-work-halts", "cancelled-runs-halt"})

_agent = tables.agents
# Its delegators, nearest first: each one's row, joined on the one below's `delegated_by`.
_ancestors = [tables.agents.alias(f"delegator{level}") for level in range(1, MAX_DELEGATION_DEPTH + 1)]
_GRANT_KINDS = ("models", "tools", "data_scopes")
_chain = _agent.outerjoin(_ancestors[0], _ancestors[0].c.name == _agent.c.delegated_by)
for _below, _above in itertools.pairwise(_ancestors):
    _chain = _chain.outerjoin(_above, _above.c.name == _below.c.delegated_by)

# Built once: the agent's row and its delegators', whether a kill covers it or its run was stopped, and whether
# any budget covers the call, in one read.
ADMISSION = (
    sa.select(
        _agent.c.status,
        _agent.c.owner,
        _agent.c.models,
        _agent.c.tools,
        _agent.c.data_scopes,
        _agent.c.team,
        _agent.c.tier_ceiling,
        _agent.c.delegated_by,
        *(
            column.label(f"delegator{level}_{column.name}")
            for level, ancestor in enumerate(_ancestors, start=1)
            for column in (
                ancestor.c.name,
                ancestor.c.status,
                ancestor.c.delegated_by,
                *(ancestor.c[kind] for kind in _GRANT_KINDS),
            )
        ),
        sa.select(tables.run_stops.c.run_id)
        .where(tables.run_stops.c.run_id == sa.bindparam("run_id"))
        .exists()
        .label("run_stopped"),
        sa.select(tables.kills.c.scope)
        .where(
            tables.kills.c.scope.in_(
                [
                    sa.bindparam("agent_scope"),
                    *(sa.literal("agent:") + ancestor.c.name for ancestor in _ancestors),
                    sa.bindparam("workflow_scope"),
                    sa.bindparam("key_scope"),
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
                [
                    sa.bindparam("agent_scope"),
                    sa.bindparam("workflow_scope"),
                    sa.bindparam("key_scope"),
                    sa.bindparam("model_scope"),
                    sa.literal("team:") + _agent.c.team,
                ]
            )
        )
        .exists()
        .label("budgeted"),
    )
    .select_from(_chain)
    .where(_agent.c.name == sa.bindparam("agent"))
)
# The admission row's registry fields (the agent's and its delegators'), before the flags
_REGISTRY_COLUMNS = 8 + 6 * MAX_DELEGATION_DEPTH
_DECISION_CACHE = 10_000


def admission_parameters(agent: str, site: CallSite, model: str = "") -> dict[str, str]:
    return {
        "agent": agent,
        "run_id": site.run_id or "",
        "agent_scope": f"agent:{agent}",
        "workflow_scope": f"workflow:{site.workflow or ''}",
        "key_scope": f"key:{site.api_key or ''}",
        "model_scope": f"model:{model}",
    }


# A person calling a model at the gateway: their teams, then whether a kill or a budget covers them, in two reads.
_PERSON_TEAMS = sa.select(tables.people.c.teams).where(tables.people.c.name == sa.bindparam("person"))
_SCOPES_KILLED = sa.select(
    sa.select(tables.kills.c.scope).where(tables.kills.c.scope.in_(sa.bindparam("kills", expanding=True))).exists(),
    sa.select(tables.budgets.c.scope)
    .where(tables.budgets.c.scope.in_(sa.bindparam("budgets", expanding=True)))
    .exists(),
)


def read_standing(conn: sa.Connection, call: Call, site: CallSite) -> Standing | None:
    """What stands for or against `call`'s principal now (None: there is no such agent or person)."""
    if call.principal == "person":
        return _person_standing(conn, call, site)
    model = call.resource if call.kind == "model" else ""
    row = conn.execute(ADMISSION, admission_parameters(call.agent, site, model)).first()
    if row is None:
        return None
    return Standing(
        principal_of(call.agent, row),
        str(row.team or ""),
        bool(row.killed),
        bool(row.run_stopped),
        bool(row.budgeted),
        tuple(row[:_REGISTRY_COLUMNS]),
        delegators=delegators(row),
    )


def _person_standing(conn: sa.Connection, call: Call, site: CallSite) -> Standing | None:
    teams_json = conn.execute(_PERSON_TEAMS, {"person": call.agent}).scalar()
    if teams_json is None:
        return None
    teams = tuple(json.loads(teams_json))
    team_scopes = [f"team:{team}" for team in teams]
    kills = ["all", call.actor, *team_scopes, *([f"key:{site.api_key}"] if site.api_key else [])]
    budgets = site.budget_scopes(call, teams)
    killed, budgeted = conn.execute(_SCOPES_KILLED, {"kills": kills, "budgets": list(budgets)}).one()
    principal = person_entity(call.agent, teams)
    return Standing(principal, teams[0] if teams else "", bool(killed), False, bool(budgeted), ("person", teams), teams)


def delegators(row: Any) -> tuple[str, ...]:
    """The agent's delegators, nearest first: whom it acts for, and they for whom."""
    names = (getattr(row, f"delegator{level}_name") for level in range(1, MAX_DELEGATION_DEPTH + 1))
    return tuple(itertools.takewhile(bool, names))


def _broken_link(row: Any) -> str | None:
    """The delegator the agent's chain names but the registry no longer holds (or one past the deepest chain
    podium allows), if any: an agent acting for nobody holds nothing."""
    named = row.delegated_by
    for level in range(1, MAX_DELEGATION_DEPTH + 1):
        if not named:
            return None
        if getattr(row, f"delegator{level}_name") is None:
            return str(named)
        named = getattr(row, f"delegator{level}_delegated_by")
    return str(named) if named else None


def principal_of(agent: str, row: Any) -> Entity:
    """The agent as Cedar sees it: a delegate holds the intersection of its and every delegator's permissions up
    its chain, and is stopped when any of them is."""
    grants = {kind: set(json.loads(getattr(row, kind))) for kind in _GRANT_KINDS}
    status = row.status
    for level, delegator in enumerate(delegators(row), start=1):
        for kind in grants:
            grants[kind] &= set(json.loads(getattr(row, f"delegator{level}_{kind}") or "[]"))
        delegator_status = getattr(row, f"delegator{level}_status")
        if status == "active" and delegator_status != "active":
            status = f"{delegator_status or 'missing'} (its delegator {delegator!r})"
    broken = _broken_link(row)
    if broken is not None:
        grants = {kind: set() for kind in grants}  # a delegator up its chain is gone: it holds nothing
        if status == "active":
            status = f"missing (its delegator {broken!r})"
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


class Admission(Stage):
    """One indexed read: the agent's registry row and its delegator's, kills, the run's stop, whether a budget
    covers the call, on a `reader` (no BEGIN or ROLLBACK round trip on PostgreSQL)."""

    name: ClassVar[str] = "admission"

    def __init__(self, engine: sa.Engine) -> None:
        self._reader = reader(engine)

    def check(self, ctx: CallContext) -> None:
        call = ctx.call
        with self._reader.connect() as conn:
            ctx.standing = read_standing(conn, call, ctx.site)
        if ctx.standing is None:
            message = (
                f"{call.agent!r} is no longer in the directory, so they may not call models."
                if call.principal == "person"
                else f"agent {call.agent!r} is not registered, so it may not act. "
                "List it in the podium.App(agents=[...]) you launch, or `podium agents add` it."
            )
            raise Refusal(ActionDenied(message, agent=call.agent, resource=call.resource), "denied")
        if ctx.standing.delegators:  # whom a delegate acts for, up its chain (the record adds the person, if any)
            ctx.detail["delegation_chain"] = " > ".join(f"agent:{name}" for name in ctx.standing.delegators)


class Authorisation(Stage):
    """A Cedar decision (default deny) on the call and its context, reused while its inputs are the same.

    `@exception` forbids do not refuse here: if nothing else stands in the way, the call goes on to the
    exception stage with their reason codes, for a person to decide."""

    name: ClassVar[str] = "authorisation"

    def __init__(self, policies: PolicySet) -> None:
        self.policies = policies
        self._decisions: dict[tuple[Any, ...], Decision] = {}

    def check(self, ctx: CallContext) -> None:
        call, site, standing = ctx.call, ctx.site, ctx.standing
        assert standing is not None, "authorisation runs after admission"
        context = {
            "run": site.run_id or "",
            "workflow": site.workflow or "",
            "amount_nano_usd": call.estimate_nano_usd,
            "killed": standing.killed,
            "run_stopped": standing.run_stopped,
            "data": sorted(call.data),
            **ctx.flow.as_context(),
            **ctx.screened.as_context(),
        }
        ctx.decision = decision = self._decide(call, standing, context)
        if decision.allowed:
            return
        if decision.policies and set(decision.policies) <= self.policies.exception_policies:
            # Only `@exception` forbids stand in the way: a person may allow it, if it is otherwise permitted.
            waived = self.policies.decide(standing.principal, call.action, call.resource_entity(), context, waive=True)
            if waived.allowed:
                ctx.exceptions = tuple(f"policy:{policy}" for policy in decision.policies)
                return
            ctx.decision = decision = waived
        raise self._refusal(call, site, standing, decision)

    def _decide(self, call: Call, standing: Standing, context: dict[str, Any]) -> Decision:
        """The Cedar decision, reused while the inputs it depends on are the same: the agent's registry rows, the
        call's action and resource, and the context attributes some policy reads (not the run id, unless one
        does). A registry change or a kill changes the row, and so the key."""
        keys = self.policies.context_keys
        frozen = {k: tuple(v) if isinstance(v, list) else v for k, v in context.items()}  # sets, as a key
        used = tuple(frozen.get(k) for k in keys) if keys is not None else tuple(sorted(frozen.items()))
        key = (
            *(call.principal, call.agent, standing.registry, call.action, call.resource, call.tier),
            *(call.resource_team, call.alias, call.provider, used),
        )
        decision = self._decisions.get(key)
        if decision is None:
            decision = self.policies.decide(standing.principal, call.action, call.resource_entity(), context)
            if len(self._decisions) >= _DECISION_CACHE:
                self._decisions.clear()
            self._decisions[key] = decision
        return decision

    @staticmethod
    def _refusal(call: Call, site: CallSite, standing: Standing, decision: Decision) -> Refusal:
        what = f"{call.kind} {call.resource!r}"
        fields = {"agent": call.agent, "resource": call.resource, "run_id": site.run_id, "policies": decision.policies}
        if STOPPING_POLICIES & set(decision.policies):
            if standing.killed:
                who = f"{call.principal} {call.agent!r}"
                why = f"the kill switch covers {who}; an operator lifts it with `podium restore`"
            elif standing.run_stopped:
                why = f"run {site.run_id} was cancelled"
            else:
                why = (
                    f"agent {call.agent!r} is {standing.principal.attrs['status']}; "
                    f"an operator resumes it with `podium agents resume {call.agent}`"
                )
            message = f"{why}. It may not call {what} ({decision.reason})."
            return Refusal(ActorStopped(message, **fields), "stopped", policies=decision.policies)
        if decision.policies:  # a forbid decided: say which, not what to grant
            message = f"{call.principal} {call.agent!r} may not call {what}: {decision.reason}."
        elif call.principal == "person":
            message = (
                f"person {call.agent!r} is not allowed {what} ({decision.reason}; people call the local tier by "
                "default: an admin widens that with a project policy, see docs/gateway.md)."
            )
        else:
            attrs = standing.principal.attrs
            granted = sorted(attrs["models" if call.kind == "model" else "tools"])
            hint = (
                f"allowed: {', '.join(granted) or 'none'}. Add it to the agent's {call.kind}s= list or "
                f"`podium agents grant {call.agent} --{call.kind} {call.resource}` if it should be"
                if call.kind in ("model", "tool")
                else f"data scopes: {', '.join(sorted(attrs['data_scopes'])) or 'none'}"
            )
            message = f"agent {call.agent!r} is not allowed {what} ({decision.reason}; {hint})."
        return Refusal(ActionDenied(message, **fields), "denied", policies=decision.policies)


class BudgetStage(Stage):
    """Reserve the most the call can cost against every budget covering it (agent, workflow, team, API key); the
    record settles the actual in the ledger's transaction, and a call that does not run gives it back.

    An exhausted budget refuses the call, or stops it for a person if the budget says so and the call can wait.
    A budget a person let the call go over (their approval was about it) is not checked again."""

    name: ClassVar[str] = "budgets"

    def __init__(self, budgets: Budgets, events: EventBus) -> None:
        self._budgets = budgets
        self._events = events

    def check(self, ctx: CallContext) -> None:
        if ctx.standing is None or not ctx.standing.budgeted or ctx.call.kind not in CHARGED_KINDS:
            return  # nothing covers it, or nothing can be charged for it (a memory access costs no money)
        call, site = ctx.call, ctx.site
        ctx.budget_scopes = scopes = site.budget_scopes(call, ctx.standing.teams)
        waived = frozenset().union(*(a.waived_budgets() for a in ctx.approvals))
        try:
            ctx.reserved = self._budgets.reserve(
                site.hold_key, site.run_id, scopes, call.estimate_nano_usd, waived=waived
            )
        except BudgetExhausted as exc:
            if exc.on_exhausted == "review" and site.can_wait:
                raise NeedsReview((f"budget_exhausted:{exc.scope}",)) from exc
            # A call that cannot wait for a person (not its step's first) stops.
            raise Refusal(exc, "over_budget") from exc
        self._events.emit(Event("budget_reserved", site.run_id, call.resource, site.step_id))

    def finish(self, ctx: CallContext, outcome: Outcome | None) -> None:
        # A call that ran is settled by its record (in the ledger's transaction); any other gives back its hold.
        if ctx.reserved and outcome not in ("allowed", "failed"):
            self._budgets.release(ctx.site.hold_key)
