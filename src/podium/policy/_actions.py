"""The governed path for operator actions: kills, budgets, registry changes, run control, review decisions and
directory changes. Each is a Cedar decision on the authenticated actor; a refusal is audited (in a transaction of
its own, kept whatever the caller does next) and raised, and an allowed action is audited with the policies that
allowed it, in the same transaction as the change, so `podium policy explain` can name them for either.

    with authorizer.act(by, "budget.set", "agent:triage", detail={...}) as act:
        act.conn.execute(...)            # the change; raising here rolls it back and audits nothing
        act.detail["keys_revoked"] = "3" # what the change found out, for its audit entry
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from podium.audit import record
from podium.errors import ActionDenied
from podium.policy._cedar import Decision, Entity, PolicySet, run_entity, scope_entity
from podium.policy._identity import Identity, require_identity


@dataclass
class GovernedAction:
    """An allowed action under way: its transaction, and what its audit entry will say."""

    conn: sa.Connection
    decision: Decision
    action: str  # what the audit entry names it (by default the Cedar action; a review decision names its verdict)
    outcome: str = "allowed"  # the entry's decision (a review decision records "approved" or "rejected")
    detail: dict[str, str] = field(default_factory=dict)
    audited: bool = True  # False: the action turned out to change nothing (already done), so nothing is logged


class Authorizer:
    """Cedar decisions on what people (or agents) do outside governed calls, and their audit entries. `by` is
    always an `Identity` a key proved: a name is refused."""

    def __init__(self, engine: sa.Engine, policies: PolicySet, principal: Callable[[Identity], Entity]) -> None:
        self._engine = engine
        self._policies = policies
        self._principal = principal  # who `by` is, as Cedar sees them (the registry knows agents and people)

    @contextmanager
    def act(
        self,
        by: Identity,
        action: str,
        resource: Entity | str,
        context: Mapping[str, Any] | None = None,
        *,
        resource_name: str | None = None,
        detail: Mapping[str, str] | None = None,
        input_digest: str = "",
        audit_as: str | None = None,
        engine: sa.Engine | None = None,
        within: sa.Connection | None = None,
    ) -> Iterator[GovernedAction]:
        """Authorise `by` to take `action` on `resource` (an entity, or a `run:<id>` / `kind:name` scope), then
        open the transaction the change is made in and audit it there, with the deciding policies.

        `audit_as` names the entry, if not after the Cedar action (`registry.change` is audited as the change it
        is: `registry.revoke` …); `engine` is the one to write with, if not the runtime's (the kill switch has a
        connection of its own); `within` an open transaction the action is part of (an agent added with its
        budget): decide it before opening that transaction, as a refusal is audited in a transaction of its own."""
        entity = _entity(resource)
        name = resource_name or (resource if isinstance(resource, str) else entity.id)
        decision = self.check(by, action, entity, context, resource_name=name, detail=detail)
        with _transaction(engine or self._engine, within) as conn:
            act = GovernedAction(conn, decision, audit_as or action, detail=dict(detail or {}))
            yield act
            act.detail["policy_set"] = self._policies.short_digest
            if act.audited:
                record(
                    conn,
                    by.actor,
                    act.action,
                    name,
                    decision=act.outcome,
                    input_digest=input_digest,
                    policies=decision.policies,
                    detail=act.detail,
                )

    def check(
        self,
        by: Identity,
        action: str,
        resource: Entity,
        context: Mapping[str, Any] | None = None,
        *,
        resource_name: str | None = None,
        detail: Mapping[str, str] | None = None,
    ) -> Decision:
        """The decision alone, for a change that audits itself (through `act`) or is a step of a larger one. A
        refusal is audited, in a transaction of its own, and raised."""
        by = require_identity(by)
        actor = by.actor
        name = resource_name or resource.id
        context = dict(context or {})
        decision = self._policies.decide(self._principal(by), action, resource, context)
        if decision.allowed:
            return decision
        reason = {**(detail or {}), **{k: str(v) for k, v in context.items()}, "reason": decision.reason}
        reason["policy_set"] = self._policies.short_digest
        with self._engine.begin() as conn:
            record(conn, actor, action, name, decision="denied", policies=decision.policies, detail=reason)
        raise ActionDenied(
            f"{actor} may not {action} {name}: {decision.reason}.", actor=actor, policies=decision.policies
        )


@contextmanager
def _transaction(engine: sa.Engine, within: sa.Connection | None) -> Iterator[sa.Connection]:
    if within is not None:
        yield within
        return
    with engine.begin() as conn:
        yield conn


def _entity(resource: Entity | str) -> Entity:
    if isinstance(resource, Entity):
        return resource
    return run_entity(resource.removeprefix("run:")) if resource.startswith("run:") else scope_entity(resource)
