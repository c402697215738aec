"""An agent as the registry stores it, and the forms it takes: a database row, an audit summary, a Cedar entity."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from podium.policy import Entity, agent_entity

Permission = tuple[str, str]
"""One permission: its kind ("models", "tools" or "data_scopes") and the name granted."""


@dataclass(frozen=True)
class AgentRecord:
    name: str
    owner: str
    team: str
    models: tuple[str, ...]
    tools: tuple[str, ...]
    status: str
    updated_at: float
    display_name: str = ""
    purpose: str = ""
    tier_ceiling: str = ""
    data_scopes: tuple[str, ...] = ()
    delegated_by: str | None = None
    created_at: float = 0.0
    granted: frozenset[Permission] = frozenset()  # by a person: a relaunch keeps them
    withheld: frozenset[Permission] = frozenset()  # revoked by a person: no relaunch re-grants them

    def grants(self) -> dict[str, set[str]]:
        return {"models": set(self.models), "tools": set(self.tools), "data_scopes": set(self.data_scopes)}


@dataclass(frozen=True)
class KeyRecord:
    id: str
    agent: str
    created_at: float
    revoked_at: float | None
    revoked_by: str | None


@dataclass(frozen=True)
class IssuedKey:
    """A new API key. `secret` is the whole key; podium keeps only its digest, so this is the one time it shows."""

    agent: str
    id: str
    secret: str = field(repr=False)


def entity_of(agent: AgentRecord) -> Entity:
    return agent_entity(
        agent.name,
        owner=agent.owner,
        team=agent.team,
        status=agent.status,
        models=agent.models,
        tools=agent.tools,
        data_scopes=agent.data_scopes,
        tier_ceiling=agent.tier_ceiling,
        delegated_by=agent.delegated_by or "",
    )


def permissions(named: Mapping[str, Iterable[str]]) -> frozenset[Permission]:
    """The permissions in {kind: [names]}."""
    return frozenset((kind, name) for kind, names in named.items() for name in names)


def by_kind(held: frozenset[Permission]) -> str:
    """JSON of `held` as {kind: [names]}, sorted."""
    grouped: dict[str, list[str]] = {}
    for kind, name in sorted(held):
        grouped.setdefault(kind, []).append(name)
    return json.dumps(grouped)


def audit_summary(agent: AgentRecord) -> dict[str, str]:
    return {
        "owner": agent.owner,
        "team": agent.team,
        "status": agent.status,
        "models": json.dumps(list(agent.models)),
        "tools": json.dumps(list(agent.tools)),
        "data_scopes": json.dumps(list(agent.data_scopes)),
        "tier_ceiling": agent.tier_ceiling,
        "delegated_by": agent.delegated_by or "",
    }


def as_row(agent: AgentRecord) -> dict[str, Any]:
    return {
        "name": agent.name,
        "owner": agent.owner,
        "team": agent.team,
        "models": json.dumps(list(agent.models)),
        "tools": json.dumps(list(agent.tools)),
        "status": agent.status,
        "updated_at": agent.updated_at,
        "display_name": agent.display_name,
        "purpose": agent.purpose,
        "tier_ceiling": agent.tier_ceiling,
        "data_scopes": json.dumps(list(agent.data_scopes)),
        "delegated_by": agent.delegated_by,
        "created_at": agent.created_at,
        "granted": by_kind(agent.granted),
        "withheld": by_kind(agent.withheld),
    }


def from_row(row: sa.Row[Any]) -> AgentRecord:
    return AgentRecord(
        name=str(row.name),
        owner=str(row.owner),
        team=str(row.team or ""),
        models=tuple(json.loads(str(row.models))),
        tools=tuple(json.loads(str(row.tools))),
        status=str(row.status),
        updated_at=float(row.updated_at),
        display_name=str(row.display_name or ""),
        purpose=str(row.purpose or ""),
        tier_ceiling=str(row.tier_ceiling or ""),
        data_scopes=tuple(json.loads(str(row.data_scopes or "[]"))),
        delegated_by=row.delegated_by,
        created_at=float(row.created_at or 0),
        granted=permissions(json.loads(str(row.granted or "{}"))),
        withheld=permissions(json.loads(str(row.withheld or "{}"))),
    )
