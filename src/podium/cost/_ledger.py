"""Reading the ledger the governor writes: one row per governed call, costed in nano-dollars."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field

import sqlalchemy as sa

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
