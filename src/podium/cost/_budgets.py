"""Budgets that really stop: reserve before a call, commit the actual after it with the ledger row.

A budget belongs to a scope: ``agent:<name>``, ``workflow:<name>``, ``team:<name>``, ``key:<id>`` (an agent's key
or a person's), ``person:<name>`` (what they spend at the gateway) or ``model:<name>`` (every call of it). Before a
governed call the governor reserves its estimated cost against every budget that covers it: the budgets' rows are
locked in scope order and read, and if each has room (``spent + reserved + amount <= limit``) one conditional
update holds the amount on all of them. After the call the reservation is settled in the same
transaction as the ledger row: the estimate leaves ``reserved`` and the actual joins ``spent``. So concurrent calls
in any number of processes overshoot a budget at most by what they cost beyond their estimates (not at all for tool
fees, which are exact).

A process killed between the two leaves the reservation held. If the run resumes, the re-run step finds it under
the same call key and settles it; if the run never resumes (cancelled, failed, finished elsewhere),
`Budgets.release_abandoned` gives it back (at every launch). A reservation is therefore settled exactly once:
committed or released, never both and never neither; and a call that was recorded is charged even if its
reservation was released meanwhile (a run cancelled mid-call).
"""

from __future__ import annotations

import builtins
import json
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

import sqlalchemy as sa

from podium._bounds import MAX_USD, check_name, check_number
from podium.cost._prices import NANO, usd
from podium.errors import BudgetExhausted, NotFoundError, UsageError
from podium.policy import Authorizer, Identity
from podium.store import TERMINAL_RUN_STATES, tables, workflow_status

OnExhausted = Literal["stop", "review"]
SCOPE_KINDS = ("agent", "workflow", "team", "key", "person", "model")

b, r = tables.budgets, tables.reservations


@dataclass(frozen=True)
class Budget:
    scope: str
    limit_nano_usd: int
    reserved_nano_usd: int
    spent_nano_usd: int
    on_exhausted: OnExhausted

    @property
    def left_nano_usd(self) -> int:
        return self.limit_nano_usd - self.spent_nano_usd - self.reserved_nano_usd


def check_scope(scope: str) -> str:
    kind, _, name = check_name(scope, "a budget scope").partition(":")
    if kind not in SCOPE_KINDS or not name:
        raise UsageError(
            f"budget scope {scope!r} is not kind:name with kind one of {', '.join(SCOPE_KINDS)} "
            "(for example agent:support-triage or workflow:support_triage)."
        )
    return scope


class Budgets:
    def __init__(
        self, engine: sa.Engine, authorizer: Authorizer, *, models: Callable[[], Iterable[str]] = tuple
    ) -> None:
        self._engine = engine
        self._authorizer = authorizer  # who may set a budget
        self._models = models  # the catalog's model names, for `model:` budgets

    def set(self, scope: str, limit_usd: float, *, on_exhausted: OnExhausted = "stop", by: Identity) -> Budget:
        """Create or change a budget (audited) on something that exists: a registered agent, a launched workflow,
        a team someone is in, an issued key, a person in the directory, a model in the catalog. Spend and
        reservations so far are kept."""
        limit = self.validate(scope, limit_usd, on_exhausted)
        _require_scope(self._engine, scope, self._models)
        detail = {"limit_nano_usd": str(limit), "on_exhausted": on_exhausted}
        with self._authorizer.act(by, "budget.set", scope, detail=detail) as act:
            write_budget(act.conn, scope, limit, on_exhausted)
        return self.get(scope)

    @staticmethod
    def validate(scope: str, limit_usd: float, on_exhausted: str = "stop") -> int:
        """The limit in nano-USD, if `set` takes these values (whatever exists): a scope of a known kind, a finite
        limit of $0 to $1,000,000,000, and stop or review. For checking a budget before what it covers is made."""
        check_scope(scope)
        check_number(limit_usd, f"the limit of {scope} (USD)", low=0, high=MAX_USD)
        if on_exhausted not in ("stop", "review"):
            raise UsageError(f"on_exhausted={on_exhausted!r}: use 'stop' (refuse the call) or 'review' (ask a person).")
        return round(limit_usd * NANO)

    def get(self, scope: str) -> Budget:
        with self._engine.connect() as conn:
            row = conn.execute(sa.select(b).where(b.c.scope == scope)).first()
        if row is None:
            raise NotFoundError(f"no budget for {scope!r}. `podium budgets list` shows the budgets there are.")
        return _budget(row)

    def list(self) -> builtins.list[Budget]:
        with self._engine.connect() as conn:
            return [_budget(row) for row in conn.execute(sa.select(b).order_by(b.c.scope))]

    def reserve(
        self,
        call_key: str,
        run_id: str | None,
        scopes: Sequence[str],
        amount: int,
        *,
        waived: frozenset[str] = frozenset(),
    ) -> bool:
        """Hold `amount` against every budget among `scopes` but the `waived` ones (a person let the call go over
        them); return whether anything is held (False: no budget checks the call).

        A reservation still held under the same call key (a step re-run after a crash) is reused, not doubled. An
        exhausted budget raises BudgetExhausted and holds nothing.
        """
        checked = [scope for scope in scopes if scope not in waived]
        with self._engine.begin() as conn:
            if conn.dialect.name == "sqlite":  # take the write lock before reading (pysqlite waits for a write)
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            rows = conn.execute(_LOCK_COVERING, {"scopes": checked, "call_key": call_key}).all()
            if any(row.held for row in rows):
                return True
            if not rows:
                return False
            for row in rows:  # in scope order, as they were locked
                budget = _budget(row)
                if budget.left_nano_usd < amount:
                    raise BudgetExhausted(
                        f"budget {budget.scope} is exhausted: {_usd(budget.spent_nano_usd)} spent and "
                        f"{_usd(budget.reserved_nano_usd)} reserved of {_usd(budget.limit_nano_usd)}, and this call "
                        f"needs up to {_usd(amount)}. Raise it with `podium budgets set {budget.scope} USD`.",
                        scope=budget.scope,
                        on_exhausted=budget.on_exhausted,
                    )
            covered = [str(row.scope) for row in rows]
            took = conn.execute(_HOLD, {"scopes": covered, "amount": amount}).rowcount
            if took != len(covered):  # the rows are locked, so this cannot happen; if it did, hold nothing
                raise RuntimeError(f"budgets {covered} changed under their lock; nothing was reserved for {call_key}.")
            conn.execute(
                _INSERT_RESERVATION,
                {
                    "id": str(uuid.uuid4()),
                    "call_key": call_key,
                    "run_id": run_id,
                    "scopes": json.dumps(covered),
                    "amount_nano_usd": amount,
                    "status": "held",
                    "created_at": time.time(),
                },
            )
        return True

    def release_abandoned(self, adhoc_after_s: float = 3600.0) -> int:
        """Give back reservations held for runs that ended without settling them, and those of calls outside any
        run that have been held longer than `adhoc_after_s`; return how many."""
        status = workflow_status(self._engine)
        ended = sa.select(status.c.workflow_uuid).where(status.c.status.in_(TERMINAL_RUN_STATES))
        stale_adhoc = r.c.run_id.is_(None) & (r.c.created_at < time.time() - adhoc_after_s)
        with self._engine.begin() as conn:
            keys = (
                conn.execute(sa.select(r.c.call_key).where(r.c.status == "held", r.c.run_id.in_(ended) | stale_adhoc))
                .scalars()
                .all()
            )
            settle(conn, [Charge(key, (), None) for key in keys])
        return len(keys)

    def release(self, call_key: str) -> None:
        """Give back what is held for `call_key`: the call did not run to a record (refused inside, cancelled)."""
        with self._engine.begin() as conn:
            settle(conn, [Charge(call_key, (), None)])


@dataclass(frozen=True)
class Charge:
    """What a finished call does to budgets: settle the reservation held under `call_key` (if any), and add
    `actual` to every budget among `scopes` (None: nothing to add: not run, or paid by an earlier execution)."""

    call_key: str
    scopes: tuple[str, ...]
    actual: int | None


def settle(conn: sa.Connection, charges: Sequence[Charge]) -> None:
    """Apply `charges` in the caller's transaction (the ledger's). A reservation is claimed once (held ->
    committed or released), so it is settled exactly once; a call with no held reservation (released meanwhile,
    say by a cancel) is still charged. Budget rows are updated once each, in scope order, so that concurrent
    settles and reservations always lock them in the same order and cannot deadlock."""
    deltas: dict[str, list[int]] = {}  # scope -> [reserved change, spent change]
    now = time.time()
    for charge in charges:
        status = "released" if charge.actual is None else "committed"
        claim = {"held_key": charge.call_key, "new_status": status, "settled": now}
        held = conn.execute(_CLAIM_HELD, claim).first()
        if held is not None:
            for scope in json.loads(held.scopes):
                deltas.setdefault(scope, [0, 0])[0] -= int(held.amount_nano_usd)
        if charge.actual:
            for scope in charge.scopes:
                deltas.setdefault(scope, [0, 0])[1] += charge.actual
    changes = [
        {"scope_": scope, "reserved_": reserved, "spent_": spent}
        for scope, (reserved, spent) in sorted(deltas.items())
        if reserved or spent
    ]
    if changes:  # one statement per budget row, in scope order, sent together
        conn.execute(_ADJUST, changes)


# Built once: a reservation and its settling run on every governed call, and building a statement costs more CPU
# than executing it.
_LOCK_COVERING = (
    sa.select(
        b,
        sa.select(r.c.id).where(r.c.call_key == sa.bindparam("call_key"), r.c.status == "held").exists().label("held"),
    )
    .where(b.c.scope.in_(sa.bindparam("scopes", expanding=True)))
    .order_by(b.c.scope)  # locked in one order everywhere: no deadlock between two reservations or settles
    .with_for_update(of=b)  # PostgreSQL; SQLite's write transaction holds the whole database already
)
_HOLD = (
    b.update()
    .where(b.c.scope.in_(sa.bindparam("scopes", expanding=True)))
    .where(b.c.spent_nano_usd + b.c.reserved_nano_usd + sa.bindparam("amount") <= b.c.limit_nano_usd)
    .values(reserved_nano_usd=b.c.reserved_nano_usd + sa.bindparam("amount"))
)
_INSERT_RESERVATION = r.insert()
_CLAIM_HELD = (
    r.update()
    .where(r.c.call_key == sa.bindparam("held_key"), r.c.status == "held")
    .values(status=sa.bindparam("new_status"), settled_at=sa.bindparam("settled"))
    .returning(r.c.scopes, r.c.amount_nano_usd)
)
_ADJUST = (
    b.update()
    .where(b.c.scope == sa.bindparam("scope_"))
    .values(
        reserved_nano_usd=b.c.reserved_nano_usd + sa.bindparam("reserved_"),
        spent_nano_usd=b.c.spent_nano_usd + sa.bindparam("spent_"),
    )
)


def _require_scope(engine: sa.Engine, scope: str, models: Callable[[], Iterable[str]]) -> None:
    """Refuse a budget on nothing: a typo would otherwise be a budget that never stops anything."""
    kind, _, name = scope.partition(":")
    known: dict[str, sa.Executable] = {
        "agent": sa.select(tables.agents.c.name),
        "workflow": sa.select(tables.workflows.c.name),
        "key": sa.union(sa.select(tables.agent_keys.c.id), sa.select(tables.person_keys.c.id)),
        "person": sa.select(tables.people.c.name),
        "team": sa.select(tables.agents.c.team).where(tables.agents.c.team != ""),
    }
    with engine.connect() as conn:
        names = set(models()) if kind == "model" else set(conn.execute(known[kind]).scalars())
        if kind == "team":  # a team is anyone's: an agent's, or a person's in the directory
            people = conn.execute(sa.select(tables.people.c.teams)).scalars()
            names |= {team for teams in people for team in json.loads(teams)}
    if name not in names:
        shown = ", ".join(sorted(names)[:10]) + (" …" if len(names) > 10 else "")
        raise NotFoundError(f"no {kind} {name!r} to budget (known: {shown or 'none'}); check the name. {_KNOWN[kind]}")


_KNOWN = {
    "agent": "`podium agents list` shows the agents.",
    "workflow": "A workflow is known once a worker has launched it.",
    "team": "Teams are those of agents (`podium agents list`) and people (`podium people list`).",
    "key": "`podium agents show NAME` shows an agent's keys, `podium keys list` people's.",
    "person": "`podium people list` shows the directory.",
    "model": "`podium models list` shows the catalog.",
}


def _budget(row: sa.Row[tuple[object, ...]]) -> Budget:
    return Budget(
        str(row.scope),
        int(row.limit_nano_usd),
        int(row.reserved_nano_usd),
        int(row.spent_nano_usd),
        row.on_exhausted,
    )


def _usd(nano: int) -> str:
    return f"${usd(nano):.6f}"


def write_budget(conn: sa.Connection, scope: str, limit_nano_usd: int, on_exhausted: str) -> None:
    """Create or change the budget row of `scope`; spend and reservations so far are kept."""
    values = {"limit_nano_usd": limit_nano_usd, "on_exhausted": on_exhausted, "updated_at": time.time()}
    if not conn.execute(b.update().where(b.c.scope == scope).values(**values)).rowcount:
        conn.execute(b.insert().values(scope=scope, **values))
