"""Reading the ledger the governor writes: one row per governed call, costed in nano-dollars."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any, Literal

import sqlalchemy as sa

from podium._tiers import LOCAL
from podium.store import tables


@dataclass(frozen=True)
class LedgerTotals:
    """Sums over a set of runs (or everything)."""

    calls_by_tier: dict[str, int] = field(default_factory=dict)
    input_tokens: int = 0
    output_tokens: int = 0
    compute_seconds: float = 0.0
    cost_nano_usd: int = 0


class Ledger:
    def __init__(self, engine: sa.Engine) -> None:
        self._engine = engine

    def totals(self, run_ids: Collection[str] | None = None) -> LedgerTotals:
        """Totals for `run_ids`, or for the whole ledger. This is the documented query behind every cost
        podium prints:

            SELECT tier, COUNT(*), SUM(input_tokens), SUM(output_tokens), SUM(compute_seconds),
                   SUM(cost_nano_usd) FROM podium_ledger [WHERE run_id IN (...)] GROUP BY tier
        """
        t = tables.ledger
        query = sa.select(
            t.c.tier,
            sa.func.count(),
            sa.func.sum(t.c.input_tokens),
            sa.func.sum(t.c.output_tokens),
            sa.func.sum(t.c.compute_seconds),
            sa.func.sum(t.c.cost_nano_usd),
        ).group_by(t.c.tier)
        rows = []
        with self._engine.connect() as conn:
            if run_ids is None:
                rows = list(conn.execute(query))
            else:
                ids = list(run_ids)
                for start in range(0, len(ids), 500):  # stay under SQLite's bound-parameter limit
                    rows += list(conn.execute(query.where(t.c.run_id.in_(ids[start : start + 500]))))
        calls: dict[str, int] = {}
        totals = [0, 0, 0.0, 0]
        for tier, count, tokens_in, tokens_out, seconds, cost in rows:
            calls[tier] = calls.get(tier, 0) + int(count)
            totals[0] += int(tokens_in or 0)
            totals[1] += int(tokens_out or 0)
            totals[2] += float(seconds or 0.0)
            totals[3] += int(cost or 0)
        return LedgerTotals(calls, int(totals[0]), int(totals[1]), float(totals[2]), int(totals[3]))


GroupBy = Literal["workflow", "run", "agent", "team"]
CATEGORIES = ("model_tokens", "local_compute", "tools", "human_review", "compliance", "retry_waste")


@dataclass(frozen=True)
class CostLine:
    """The fully loaded cost of one workflow (or run, agent, team), by category, in nano-dollars."""

    key: str
    runs: int
    calls: int
    by_category: dict[str, int]

    @property
    def total_nano_usd(self) -> int:
        return sum(self.by_category.values())


def _category(t: sa.Table, condition: sa.ColumnElement[bool], name: str) -> sa.Label[int]:
    return sa.func.coalesce(sa.func.sum(sa.case((condition, t.c.cost_nano_usd), else_=0)), 0).label(name)


def cost_breakdown_query(group_by: GroupBy) -> sa.Select[*tuple[Any, ...]]:
    """The documented query behind `podium costs` (print it with `podium costs --sql`). Every ledger row falls in
    exactly one category: failed attempts are retry waste whatever they were; the rest by kind and tier."""
    t = tables.ledger
    key = {"workflow": t.c.workflow, "run": t.c.run_id, "agent": t.c.agent, "team": t.c.team}[group_by]
    ok = t.c.wasted == 0
    return (
        sa.select(
            sa.func.coalesce(key, "(none)").label("key"),
            sa.func.count(sa.distinct(t.c.run_id)).label("runs"),
            sa.func.count().label("calls"),
            _category(t, ok & (t.c.kind == "model") & (t.c.tier != LOCAL), "model_tokens"),
            _category(t, ok & (t.c.kind == "model") & (t.c.tier == LOCAL), "local_compute"),
            _category(t, ok & (t.c.kind == "tool"), "tools"),
            _category(t, ok & (t.c.kind == "review"), "human_review"),
            _category(t, ok & (t.c.kind == "compliance"), "compliance"),
            _category(t, t.c.wasted == 1, "retry_waste"),
        )
        .group_by(key)
        .order_by(sa.func.sum(t.c.cost_nano_usd).desc())
    )


def cost_breakdown(engine: sa.Engine, group_by: GroupBy, run_ids: Collection[str] | None = None) -> list[CostLine]:
    query = cost_breakdown_query(group_by)
    if run_ids is not None:
        query = query.where(tables.ledger.c.run_id.in_(list(run_ids)))
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    return [
        CostLine(str(row.key), int(row.runs), int(row.calls), {name: int(getattr(row, name)) for name in CATEGORIES})
        for row in rows
    ]
