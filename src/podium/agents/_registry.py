"""The agent registry in the database: the governor's source of truth for status and allow-lists."""

from __future__ import annotations

import builtins
import json
import time
from dataclasses import dataclass
from typing import Literal

import sqlalchemy as sa

from podium.agents._agent import AgentIdentity
from podium.errors import NotFoundError
from podium.governance._audit import record
from podium.store import tables

AgentStatus = Literal["active", "suspended"]


@dataclass(frozen=True)
class AgentRecord:
    name: str
    owner: str
    models: tuple[str, ...]
    tools: tuple[str, ...]
    status: str
    updated_at: float


class AgentRegistry:
    def __init__(self, engine: sa.Engine) -> None:
        self._engine = engine

    def register(self, identity: AgentIdentity) -> None:
        """Record or update an agent's identity, keeping its status; changes are audited."""
        values = {
            "owner": identity.owner,
            "models": json.dumps(list(identity.models)),
            "tools": json.dumps(list(identity.tools)),
            "team": identity.team,
        }
        with self._engine.begin() as conn:
            row = conn.execute(sa.select(tables.agents).where(tables.agents.c.name == identity.name)).first()
            if row is not None and all(getattr(row, k) == v for k, v in values.items()):
                return
            if row is None:
                conn.execute(
                    tables.agents.insert().values(name=identity.name, status="active", updated_at=time.time(), **values)
                )
            else:
                conn.execute(
                    tables.agents.update()
                    .where(tables.agents.c.name == identity.name)
                    .values(updated_at=time.time(), **values)
                )
            record(conn, "system", "registry.register", f"agent:{identity.name}", detail=values)

    def list(self) -> builtins.list[AgentRecord]:
        with self._engine.connect() as conn:
            rows = conn.execute(sa.select(tables.agents).order_by(tables.agents.c.name)).all()
        return [_record(row) for row in rows]

    def get(self, name: str) -> AgentRecord:
        with self._engine.connect() as conn:
            row = conn.execute(sa.select(tables.agents).where(tables.agents.c.name == name)).first()
        if row is None:
            raise NotFoundError(f"no agent named {name!r}. `podium agents list` shows the registered agents.")
        return _record(row)

    def set_status(self, name: str, status: AgentStatus, *, by: str) -> AgentRecord:
        """Suspend or restore an agent. A suspended agent's next governed call is refused."""
        self.get(name)
        with self._engine.begin() as conn:
            conn.execute(
                tables.agents.update().where(tables.agents.c.name == name).values(status=status, updated_at=time.time())
            )
            action = "registry.restore" if status == "active" else "registry.suspend"
            record(conn, f"person:{by}", action, f"agent:{name}")
        return self.get(name)


def _record(row: sa.Row[tuple[object, ...]]) -> AgentRecord:
    return AgentRecord(
        name=str(row.name),
        owner=str(row.owner),
        models=tuple(json.loads(str(row.models))),
        tools=tuple(json.loads(str(row.tools))),
        status=str(row.status),
        updated_at=float(str(row.updated_at)),
    )
