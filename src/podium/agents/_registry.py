"""The agent registry: who each agent is, who answers for it, what it may use, and its credentials.

Every change is a Cedar decision (action `registry.change` or `registry.delegate`) and is audited whether it was
allowed or refused. People manage the registry; an agent can never widen its own or anyone's permissions, and a
delegate gets a subset of its delegator's. API keys are shown once and stored as sha256 digests.

Code declares agents too (`register`, at launch), but a person's decision outlasts any relaunch: what a person
revoked stays withheld and what a person granted stays granted, whatever the code says; a suspension stays.
"""

from __future__ import annotations

import builtins
import getpass
import json
import logging
import socket
import time
from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import replace
from typing import Any, Literal

import sqlalchemy as sa

from podium import _bounds
from podium._tiers import check_tier_ceiling
from podium.agents._agent import AgentIdentity, check_name
from podium.agents._records import (
    AgentRecord,
    IssuedKey,
    KeyRecord,
    Permission,
    as_row,
    audit_summary,
    entity_of,
    from_row,
    permissions,
)
from podium.audit import record
from podium.cost import Budgets, write_budget
from podium.errors import NotFoundError, Unauthenticated, UsageError
from podium.policy import (
    Authorizer,
    Entity,
    GovernedAction,
    Identity,
    KeyFormat,
    PolicySet,
    person_entity,
    scope_entity,
)
from podium.store import insert_if_absent, reader, tables

MAX_DELEGATION_DEPTH = 3  # a delegate acts through at most this many delegators (agent for agent for agent …)

AgentStatus = Literal["active", "suspended"]  # retiring is `retire`: it also revokes the keys
KEYS = KeyFormat("pod")

_OPTION = {"models": "model", "tools": "tool", "data_scopes": "data-scope"}  # `podium agents grant --<option>`

_log = logging.getLogger("podium.agents")


def deployer() -> str:
    """Who registers the agents a process launches with: the operating-system user on this host."""
    return f"deploy:{getpass.getuser()}@{socket.gethostname()}"


class AgentRegistry:
    def __init__(self, engine: sa.Engine, policies: PolicySet) -> None:
        self._engine = engine
        self._reader = reader(engine)
        self.authorizer = Authorizer(engine, policies, self.principal)  # also decides reviews, kills, budgets, runs

    # -- reading ---------------------------------------------------------------------------------------------

    def list(self) -> builtins.list[AgentRecord]:
        with self._engine.connect() as conn:
            rows = conn.execute(sa.select(tables.agents).order_by(tables.agents.c.name)).all()
        return [from_row(row) for row in rows]

    def get(self, name: str) -> AgentRecord:
        with self._engine.connect() as conn:
            row = conn.execute(sa.select(tables.agents).where(tables.agents.c.name == name)).first()
        if row is None:
            raise NotFoundError(f"no agent named {name!r}. `podium agents list` shows the registered agents.")
        return from_row(row)

    def keys(self, name: str) -> builtins.list[KeyRecord]:
        keys = tables.agent_keys
        with self._engine.connect() as conn:
            rows = conn.execute(
                sa.select(keys.c.id, keys.c.agent, keys.c.created_at, keys.c.revoked_at, keys.c.revoked_by)
                .where(keys.c.agent == name)
                .order_by(keys.c.created_at)
            ).all()
        return [KeyRecord(*row) for row in rows]

    # -- changing (every change is authorised and audited) ---------------------------------------------------

    def register(self, identity: AgentIdentity) -> None:
        """Record or update the identity a launching process declares; audited.

        This is the deployer's act (whoever launches the code), not the agent's: an agent acting at run time
        cannot reach it. Code declares the owner, the team and the models and tools it needs, but people have the
        last word: the agent keeps its status (a suspension stays), what a person granted, and never gets back
        what a person revoked. A declared permission a person withheld is logged once with the command that
        restores it, and audited as refused. Processes starting at once may declare a new agent together: one
        inserts it, the others then merge into its row.
        """
        if not self._register(identity):
            self._register(identity)

    def _register(self, identity: AgentIdentity) -> bool:
        """One try; False if another process inserted the agent after this one read that there was none."""
        with self._engine.begin() as conn:
            row = conn.execute(sa.select(tables.agents).where(tables.agents.c.name == identity.name)).first()
            current = from_row(row) if row is not None else None
            declared = {"models": identity.models, "tools": identity.tools}
            if current is not None:
                refused = permissions(declared) & current.withheld
                if refused:
                    self._withhold(conn, identity.name, refused)
                declared = {kind: _kept(current, kind, names) for kind, names in declared.items()}
            values = {
                "owner": identity.owner,
                "models": json.dumps(list(declared["models"])),
                "tools": json.dumps(list(declared["tools"])),
                "team": identity.team,
            }
            if row is not None and all(getattr(row, k) == v for k, v in values.items()):
                return True
            now = time.time()
            if row is None:
                new = dict(name=identity.name, status="active", updated_at=now, created_at=now, **values)
                if not insert_if_absent(conn, tables.agents, **new):
                    return False
            else:
                conn.execute(
                    tables.agents.update().where(tables.agents.c.name == identity.name).values(updated_at=now, **values)
                )
            record(conn, deployer(), "registry.register", f"agent:{identity.name}", detail=values)
        return True

    def add(
        self,
        name: str,
        *,
        owner: str,
        by: Identity,
        team: str = "",
        display_name: str = "",
        purpose: str = "",
        models: Sequence[str] = (),
        tools: Sequence[str] = (),
        data_scopes: Sequence[str] = (),
        tier_ceiling: str = "",
        budget_usd: float | None = None,
    ) -> tuple[AgentRecord, IssuedKey]:
        """Register a new agent and issue its first API key (shown once), with a budget if `budget_usd` is given:
        the agent, its key and its budget are written in one transaction, each change decided and audited, so a
        refused or failed budget never leaves an agent with a live key and no budget."""
        check_name(name)
        if not owner.strip():
            raise UsageError(f"agent {name!r} needs an accountable owner: --owner <person>.")
        for value, what in ((owner, "--owner"), (team, "--team"), (display_name, "--display-name")):
            _bounds.check_name(value, what)
        _bounds.check_text(purpose, "--purpose", max_chars=1_000)
        for value in (*models, *tools, *data_scopes):
            _bounds.check_name(value, "a permission")
        check_tier_ceiling(tier_ceiling)
        scope = f"agent:{name}"
        limit = Budgets.validate(scope, budget_usd) if budget_usd is not None else None
        if limit is not None:  # decided before the transaction opens: a refusal is audited in one of its own
            self.authorizer.check(by, "budget.set", scope_entity(scope))
        now = time.time()
        granted = {"models": models, "tools": tools, "data_scopes": data_scopes}
        new = AgentRecord(
            name=name,
            owner=owner.strip(),
            team=team.strip(),
            models=tuple(models),
            tools=tuple(tools),
            status="active",
            updated_at=now,
            display_name=display_name or name,
            purpose=purpose,
            tier_ceiling=tier_ceiling,
            data_scopes=tuple(data_scopes),
            created_at=now,
            granted=permissions(granted),
        )
        with self._act(by, "registry.change", new, {"change": "add"}, audit_as="registry.add") as act:
            conn = act.conn
            if conn.execute(sa.select(tables.agents.c.name).where(tables.agents.c.name == name)).first():
                raise UsageError(f"an agent named {name!r} exists already; `podium agents show {name}` shows it.")
            conn.execute(tables.agents.insert().values(**as_row(new)))
            key = self._issue_key(conn, name)
            act.detail = audit_summary(new)
            if limit is not None:
                detail = {"limit_nano_usd": str(limit), "on_exhausted": "stop"}
                with self.authorizer.act(by, "budget.set", scope, detail=detail, within=conn):
                    write_budget(conn, scope, limit, "stop")
        return new, key

    def grant(
        self,
        name: str,
        *,
        by: Identity,
        models: Iterable[str] = (),
        tools: Iterable[str] = (),
        data_scopes: Iterable[str] = (),
    ) -> AgentRecord:
        """Add models, tools or data scopes to an agent's permissions."""
        return self._change_permissions(
            name, by, "grant", {"models": models, "tools": tools, "data_scopes": data_scopes}
        )

    def revoke(
        self,
        name: str,
        *,
        by: Identity,
        models: Iterable[str] = (),
        tools: Iterable[str] = (),
        data_scopes: Iterable[str] = (),
    ) -> AgentRecord:
        """Remove models, tools or data scopes from an agent's permissions."""
        return self._change_permissions(
            name, by, "revoke", {"models": models, "tools": tools, "data_scopes": data_scopes}
        )

    def set_status(self, name: str, status: AgentStatus, *, by: Identity) -> AgentRecord:
        """Suspend or resume an agent (a suspended agent's next governed call is refused)."""
        current = self.get(name)
        if current.status == "retired":
            raise UsageError(f"agent {name!r} is retired, which is final; add a new agent instead.")
        change = {"active": "resume", "suspended": "suspend"}[status]
        return self._change(current, replace(current, status=status), by, change)

    def retire(self, name: str, *, by: Identity) -> AgentRecord:
        """Retire an agent for good: it may never act again and its keys are revoked."""
        current = self.get(name)
        return self._change(current, replace(current, status="retired"), by, "retire", revoke_keys=True)

    def rotate_key(self, name: str, *, by: Identity) -> IssuedKey:
        """Revoke the agent's keys and issue a new one (shown once)."""
        current = self.get(name)
        if current.status == "retired":
            raise UsageError(f"agent {name!r} is retired; it gets no new keys.")
        with self._act(by, "registry.change", current, {"change": "rotate-key"}, audit_as="registry.rotate-key") as act:
            self.revoke_keys(act.conn, [name], by=by.actor)
            key = self._issue_key(act.conn, name)
            act.detail = {"key_id": key.id}
        return key

    def delegate(
        self,
        delegator: str,
        name: str,
        *,
        by: Identity,
        models: Sequence[str] = (),
        tools: Sequence[str] = (),
        data_scopes: Sequence[str] = (),
        purpose: str = "",
    ) -> AgentRecord:
        """Register `name` as a delegate of `delegator` with a subset of its permissions; never more.

        The delegate answers to the delegator's owner and team, and at run time it is held to the intersection
        of its own and its delegator's permissions, so narrowing the delegator later narrows the delegate too.
        """
        parent = self.get(delegator)
        chain = self._chain_above(parent)
        if len(chain) > MAX_DELEGATION_DEPTH:
            raise UsageError(
                f"agent {delegator!r} already acts for {' for '.join(repr(a) for a in chain[1:])}: a delegate may "
                f"act through at most {MAX_DELEGATION_DEPTH} delegators. Delegate from {chain[1]!r} or nearer the top."
            )
        now = time.time()
        child = AgentRecord(
            name=check_name(name),
            owner=parent.owner,
            team=parent.team,
            models=tuple(models),
            tools=tuple(tools),
            status="active",
            updated_at=now,
            display_name=name,
            purpose=purpose or f"delegate of {delegator}",
            tier_ceiling=parent.tier_ceiling,
            data_scopes=tuple(data_scopes),
            delegated_by=delegator,
            created_at=now,
            granted=permissions({"models": models, "tools": tools, "data_scopes": data_scopes}),
        )
        wider = {kind: sorted(granted - parent.grants()[kind]) for kind, granted in child.grants().items()}
        wider = {kind: extra for kind, extra in wider.items() if extra}
        detail = {"widens": json.dumps(wider)} if wider else {}
        with self._act(by, "registry.delegate", child, {"widens": bool(wider)}, detail=detail) as act:
            if act.conn.execute(sa.select(tables.agents.c.name).where(tables.agents.c.name == name)).first():
                raise UsageError(f"an agent named {name!r} exists already; choose another name for the delegate.")
            act.conn.execute(tables.agents.insert().values(**as_row(child)))
            act.detail = audit_summary(child)
        return child

    def _chain_above(self, agent: AgentRecord) -> builtins.list[str]:
        """`agent` and the delegators above it, nearest first (one read a link; chains are at most a few deep)."""
        chain = [agent.name]
        while agent.delegated_by and len(chain) <= MAX_DELEGATION_DEPTH:
            agent = self.get(agent.delegated_by)
            chain.append(agent.name)
        return chain

    def revoke_keys(self, conn: sa.Connection, names: Sequence[str], *, by: str) -> int:
        """Revoke every live key of `names` in the caller's transaction; return how many."""
        keys = tables.agent_keys
        return int(
            conn.execute(
                keys.update()
                .where(keys.c.agent.in_(names), keys.c.revoked_at.is_(None))
                .values(revoked_at=time.time(), revoked_by=by)
            ).rowcount
        )

    def authenticate(self, key: str, *, acting_as: str | None = None, audit: bool = True) -> AgentRecord:
        """The agent a presented API key belongs to, if the key is live and the agent may act; refused
        (`Unauthenticated`) otherwise: an unknown, malformed or revoked key, a stopped agent, or a key used to act
        as another agent. The refusal is audited unless `audit` is False (a front door that audits refusals in
        aggregate, so a flood of bad keys cannot flood the log)."""
        key_id, secret = KEYS.split(key)
        row = None
        if key_id:
            with self._reader.connect() as conn:
                row = conn.execute(_KEY_AND_AGENT, {"key_id": key_id}).first()
        problem = None
        if not key_id:
            problem = f"it is not a podium key ({KEYS.prefix}_<id>_<secret>)"
        elif row is None or not KEYS.matches(secret, row.key_secret_sha256):
            problem = "the key is not one podium issued"
        elif row.key_revoked_at is not None:
            problem = (
                f"the key was revoked by {row.key_revoked_by}; `podium agents rotate-key {row.agent}` issues a new one"
            )
        elif row.name is None:
            problem = f"agent {row.agent!r} is no longer registered"
        else:
            agent = from_row(row)
            if agent.status != "active":
                problem = f"agent {agent.name!r} is {agent.status}"
            elif agent.delegated_by and row.delegator_status != "active":
                delegator_status = row.delegator_status or "no longer registered"
                problem = f"agent {agent.name!r} is a delegate of {agent.delegated_by!r}, which is {delegator_status}"
            elif acting_as is not None and acting_as != agent.name:
                problem = f"the key belongs to agent {agent.name!r} (team {agent.team or '-'}), not {acting_as!r}"
            else:
                return agent
        if not audit:
            raise Unauthenticated(f"API key refused: {problem}.", key_id=key_id or "?", reason=problem)
        with self._engine.begin() as conn:
            record(
                conn,
                f"key:{key_id or '?'}",
                "auth.key",
                f"agent:{acting_as or (row.agent if row else '?')}",
                decision="denied",
                detail={"reason": problem},
            )
        raise Unauthenticated(f"API key refused: {problem}.", key_id=key_id or "?", reason=problem)

    # -- internals -------------------------------------------------------------------------------------------

    def _change_permissions(
        self, name: str, by: Identity, change: Literal["grant", "revoke"], given: dict[str, Iterable[str]]
    ) -> AgentRecord:
        current = self.get(name)
        named = {kind: list(names) for kind, names in given.items()}

        def changed(have: tuple[str, ...], kind: str) -> tuple[str, ...]:
            return (
                tuple(dict.fromkeys([*have, *named[kind]]))
                if change == "grant"
                else tuple(v for v in have if v not in named[kind])
            )

        # A person's decision outlasts relaunches: a grant lifts a withholding, a revoke withholds until a grant.
        decided = permissions(named)
        if change == "grant":
            granted, withheld = current.granted | decided, current.withheld - decided
        else:
            granted, withheld = current.granted - decided, current.withheld | decided
        updated = replace(
            current,
            models=changed(current.models, "models"),
            tools=changed(current.tools, "tools"),
            data_scopes=changed(current.data_scopes, "data_scopes"),
            granted=granted,
            withheld=withheld,
        )
        return self._change(current, updated, by, change)

    def _change(
        self, current: AgentRecord, changed: AgentRecord, by: Identity, change: str, *, revoke_keys: bool = False
    ) -> AgentRecord:
        """Write `changed` over `current`, unless someone changed the agent since it was read (then nothing is
        written and the caller is told to look again): two operators never silently undo each other."""
        check_tier_ceiling(changed.tier_ceiling)
        changed = replace(changed, updated_at=max(time.time(), current.updated_at + 1e-6))
        agents = tables.agents
        to = {"to": json.dumps(audit_summary(changed))}
        with self._act(
            by, "registry.change", current, {"change": change}, detail=to, audit_as=f"registry.{change}"
        ) as act:
            conn = act.conn
            written = conn.execute(
                agents.update()
                .where(agents.c.name == current.name, agents.c.updated_at == current.updated_at)
                .values(**as_row(changed))
            ).rowcount
            if not written:
                raise UsageError(
                    f"agent {current.name!r} was changed by someone else a moment ago; nothing was written. "
                    f"Look at it again (`podium agents show {current.name}`) and repeat the {change} if still right."
                )
            if revoke_keys:
                self.revoke_keys(conn, [current.name], by=by.actor)
            act.detail = audit_summary(changed)
        return changed

    def _withhold(self, conn: sa.Connection, name: str, refused: frozenset[Permission]) -> None:
        """Say, once per launch, that the code declares permissions a person revoked; audit the refusal."""
        what = ", ".join(f"{_OPTION[kind]} {granted}" for kind, granted in sorted(refused))
        restore = " ".join(
            ["podium agents grant", name, *(f"--{_OPTION[kind]} {granted}" for kind, granted in sorted(refused))]
        )
        _log.warning(
            "agent %r: the code declares %s, which a person revoked; it stays withheld. If it should be allowed "
            "again, a person with the right restores it: `%s`.",
            name,
            what,
            restore,
        )
        record(
            conn,
            deployer(),
            "registry.withheld",
            f"agent:{name}",
            decision="denied",
            detail={"withheld": what, "restore": restore},
        )

    def _act(
        self,
        by: Identity,
        action: str,
        resource: AgentRecord,
        context: dict[str, Any],
        *,
        detail: dict[str, str] | None = None,
        audit_as: str | None = None,
    ) -> AbstractContextManager[GovernedAction]:
        """The governed path for a change to `resource`: authorised on its entry as it is (or will be), audited as
        `audit_as` (the change's own name) with the deciding policies."""
        name = f"agent:{resource.name}"
        return self.authorizer.act(
            by, action, entity_of(resource), context, resource_name=name, detail=detail, audit_as=audit_as
        )

    def principal(self, by: Identity) -> Entity:
        """Who `by` is, as Cedar sees them: a person, or an agent with its registry entry."""
        kind, name = by.kind, by.name
        if kind == "agent":
            return entity_of(self.get(name))
        with self._engine.connect() as conn:
            teams = conn.execute(sa.select(tables.people.c.teams).where(tables.people.c.name == name)).scalar()
        return person_entity(name, json.loads(teams) if teams else ())

    def _issue_key(self, conn: sa.Connection, name: str) -> IssuedKey:
        key_id, key, digest = KEYS.new()
        conn.execute(
            tables.agent_keys.insert().values(id=key_id, agent=name, secret_sha256=digest, created_at=time.time())
        )
        return IssuedKey(name, key_id, key)


def _kept(current: AgentRecord, kind: str, declared: Sequence[str]) -> tuple[str, ...]:
    """What an agent holds of `kind` after a relaunch that declares `declared`: the code's declaration without
    what a person withheld, and what a person granted (declared or not)."""
    held = dict.fromkeys([*declared, *getattr(current, kind)])
    kept = (name for name in held if name in declared or (kind, name) in current.granted)
    return tuple(name for name in kept if (kind, name) not in current.withheld)


_keys = tables.agent_keys
_delegator = tables.agents.alias("delegator")
# Built once, read on every request an agent's key signs: the key, its agent and the agent's delegator, in one read.
_KEY_AND_AGENT = (
    sa.select(
        _keys.c.agent,
        _keys.c.secret_sha256.label("key_secret_sha256"),
        _keys.c.revoked_at.label("key_revoked_at"),
        _keys.c.revoked_by.label("key_revoked_by"),
        tables.agents,
        _delegator.c.status.label("delegator_status"),
    )
    .select_from(
        _keys.outerjoin(tables.agents, tables.agents.c.name == _keys.c.agent).outerjoin(
            _delegator, _delegator.c.name == tables.agents.c.delegated_by
        )
    )
    .where(_keys.c.id == sa.bindparam("key_id"))
)
