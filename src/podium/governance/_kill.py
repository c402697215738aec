"""The kill switch: halt an agent, a workflow, a team or everything, at once and provably.

A kill, in one transaction: bump the kill epoch (which waits for side effects that are committing and makes later
ones see the kill), record the kill, revoke the credentials of the agents it covers, and audit it. Its commit is
the acknowledgement: from then on the governor refuses every call it covers, and a side effect already under way
is refused by its fence. Then it cancels the covered runs that are still in flight. `restore` lifts a kill,
deliberately and audited; revoked keys stay revoked (rotate them) and cancelled runs stay cancelled (resume them).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import sqlalchemy as sa

from podium._bounds import check_name, check_text
from podium.agents import AgentRegistry
from podium.errors import NotFoundError, UsageError
from podium.policy import Authorizer, Identity, require_identity
from podium.store import create_engine, tables

if TYPE_CHECKING:
    from dbos import DBOSClient

IN_FLIGHT = ["PENDING", "ENQUEUED"]
MAX_NOTE_CHARS = 2_000  # why a kill was made: a few sentences in the audit log


@dataclass(frozen=True)
class Kill:
    scope: str
    killed_by: str
    reason: str
    killed_at: float


@dataclass(frozen=True)
class KillReport:
    """What a kill did: when it was acknowledged (seconds after it was asked for), the keys it revoked and the
    runs it cancelled (and how long that took in all)."""

    scope: str
    agents: tuple[str, ...]
    keys_revoked: int
    runs_cancelled: int
    acknowledged_s: float
    total_s: float


def kill_scope(
    *,
    agent: str | None = None,
    workflow: str | None = None,
    team: str | None = None,
    person: str | None = None,
    key: str | None = None,
    everything: bool = False,
) -> str:
    """The scope string for exactly one of the options."""
    options = (("agent", agent), ("workflow", workflow), ("team", team), ("person", person), ("key", key))
    given = [(k, v) for k, v in options if v]
    if len(given) + int(everything) != 1:
        raise UsageError("name exactly one of --agent, --workflow, --team, --person, --key or --all.")
    for kind, value in given:
        check_name(value, f"--{kind}")
    return "all" if everything else f"{given[0][0]}:{given[0][1]}"


StopRuns = Callable[[sa.Connection, Sequence[str], str], tuple[set[str], Callable[[], None]]]


class KillSwitch:
    def __init__(
        self,
        engine: sa.Engine,
        client: DBOSClient,
        registry: AgentRegistry,
        authorizer: Authorizer,
        stop_runs: StopRuns,
    ) -> None:
        """`stop_runs` stops runs in the kill's transaction and returns those it stopped and what to do after it
        commits (the runtime passes `Runs.stop_many`: cancelling runs and withdrawing reviews belongs to workflows)."""
        self._shared = engine
        self._control: sa.Engine | None = None
        self._client = client
        self._registry = registry
        self._authorizer = authorizer
        self._stop_runs = stop_runs

    @property
    def _engine(self) -> sa.Engine:
        """A connection of the kill switch's own: a kill must not queue behind the workers for a pooled one."""
        if self._control is None:
            self._control = create_engine(self._shared.url.render_as_string(hide_password=False), pooled=False)
        return self._control

    def close(self) -> None:
        if self._control is not None:
            self._control.dispose()

    def active(self) -> list[Kill]:
        with self._engine.connect() as conn:
            rows = conn.execute(sa.select(tables.kills).order_by(tables.kills.c.killed_at)).all()
        return [Kill(*row) for row in rows]

    def kill(self, scope: str, *, by: Identity, reason: str = "") -> KillReport:
        """Halt everything `scope` covers (see the module docstring); audited."""
        check_text(reason, "the note", max_chars=MAX_NOTE_CHARS)
        started = time.perf_counter()
        agents = self._agents_in(scope)
        actor = require_identity(by).actor
        with self._authorizer.act(by, "governance.kill", scope, detail={"reason": reason}, engine=self._engine) as act:
            conn = act.conn
            if conn.dialect.name == "postgresql":
                # A table lock request queues ahead of side effects that arrive after it (a row lock would wait
                # behind a stream of overlapping shared locks): the kill waits only for those already committing.
                conn.execute(sa.text("LOCK TABLE podium_kill_epoch IN EXCLUSIVE MODE"))
            conn.execute(tables.kill_epoch.update().values(epoch=tables.kill_epoch.c.epoch + 1))
            conn.execute(tables.kills.delete().where(tables.kills.c.scope == scope))
            conn.execute(
                tables.kills.insert().values(scope=scope, killed_by=actor, reason=reason, killed_at=time.time())
            )
            revoked = self._registry.revoke_keys(conn, agents, by=actor) if agents else 0
            act.detail["keys_revoked"] = str(revoked)
        acknowledged = time.perf_counter() - started
        cancelled = self._cancel_runs(scope, agents, actor)
        return KillReport(scope, tuple(agents), revoked, cancelled, acknowledged, time.perf_counter() - started)

    def restore(self, scope: str, *, by: Identity, reason: str = "") -> Kill:
        """Lift the kill on `scope`; audited. Keys it revoked stay revoked, runs it cancelled stay cancelled."""
        check_text(reason, "the note", max_chars=MAX_NOTE_CHARS)
        with self._engine.connect() as conn:
            row = conn.execute(sa.select(tables.kills).where(tables.kills.c.scope == scope)).first()
        if row is None:
            active = ", ".join(k.scope for k in self.active()) or "none"
            raise NotFoundError(f"no kill covers {scope!r} (active kills: {active}).")
        with self._authorizer.act(
            by, "governance.restore", scope, detail={"reason": reason}, engine=self._engine
        ) as act:
            act.conn.execute(tables.kills.delete().where(tables.kills.c.scope == scope))
        return Kill(*row)

    def _agents_in(self, scope: str) -> list[str]:
        """The agents whose keys a kill of `scope` revokes (a workflow kill revokes none: agents outlive it)."""
        kind, _, name = scope.partition(":")
        with self._engine.connect() as conn:
            agents = conn.execute(
                sa.select(tables.agents.c.name, tables.agents.c.team, tables.agents.c.delegated_by)
            ).all()
        if kind == "agent":
            if name not in {a.name for a in agents}:
                raise NotFoundError(f"no agent named {name!r}. `podium agents list` shows the registered agents.")
            return [a.name for a in agents if name in (a.name, a.delegated_by)]
        if kind == "team":
            members = [a.name for a in agents if a.team == name]
            with self._engine.connect() as conn:
                people_teams = {
                    t for teams in conn.execute(sa.select(tables.people.c.teams)).scalars() for t in json.loads(teams)
                }
            if not members and name not in people_teams:
                teams = sorted({a.team for a in agents if a.team} | people_teams)
                raise NotFoundError(f"nobody is in team {name!r} (teams: {', '.join(teams) or 'none'}).")
            return members
        if kind in ("person", "key"):
            # A person's gateway calls and a key's requests are refused from the kill on (in-flight streams are cut
            # at their next check); nothing is revoked: `restore` lifts it.
            self._require_known(kind, name)
            return []
        if kind == "workflow":
            with self._engine.connect() as conn:
                known = conn.execute(sa.select(tables.workflows.c.name).where(tables.workflows.c.name == name)).first()
            if known is None:
                raise NotFoundError(f"no workflow named {name!r} has been launched; `podium runs list` shows runs.")
            return []
        if scope == "all":
            return [a.name for a in agents]
        raise UsageError(
            f"kill scope {scope!r} is not agent:<name>, workflow:<name>, team:<name>, person:<name>, key:<id> or all."
        )

    def _require_known(self, kind: str, name: str) -> None:
        known: sa.Select[tuple[str]] | sa.CompoundSelect[tuple[str]]
        if kind == "person":
            known = sa.select(tables.people.c.name).where(tables.people.c.name == name)
            hint = "`podium people list` shows the directory."
        else:
            known = sa.union_all(
                sa.select(tables.agent_keys.c.id).where(tables.agent_keys.c.id == name),
                sa.select(tables.person_keys.c.id).where(tables.person_keys.c.id == name),
            )
            hint = "`podium keys list` and `podium agents show NAME` show key ids."
        with self._engine.connect() as conn:
            if conn.execute(known).first() is None:
                raise NotFoundError(f"no {kind} {name!r}. {hint}")

    def _cancel_runs(self, scope: str, agents: list[str], actor: str) -> int:
        """Cancel the runs in flight that the kill covers: of the workflow, or that the agents have acted in.

        A run in which a covered agent has not acted yet is not cancelled; its first call of that agent is refused.
        """
        kind, _, name = scope.partition(":")
        if kind in ("person", "key"):
            return 0  # gateway requests are not runs: they are refused at their next check
        found = self._client.list_workflows(
            name=name if kind == "workflow" else None, status=IN_FLIGHT, load_input=False, load_output=False
        )
        ids = [status.workflow_id for status in found]
        if kind in ("agent", "team") and ids:
            log = tables.audit_log
            with self._engine.connect() as conn:
                acted = set(
                    conn.execute(
                        sa.select(log.c.run_id)
                        .where(log.c.run_id.in_(ids), log.c.actor.in_([f"agent:{a}" for a in agents]))
                        .distinct()
                    ).scalars()
                )
            ids = [i for i in ids if i in acted]
        if not ids:
            return 0
        with self._engine.begin() as conn:
            _, after_commit = self._stop_runs(conn, ids, actor)
        after_commit()
        return len(ids)
