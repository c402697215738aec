"""Requests and tokens a minute per key and per team (`[gateway.limits]`), as a stage of the governor's pipeline.

Each limit is a row per scope and minute in the database, so every `podium serve` process counts against the same
window. A request takes its place with one conditional upsert per limited scope (`requests + 1 <= rpm` and, for
tokens, the window not yet spent), before budgets reserve anything; the tokens it used join the window when it
ends. Token limits are checked on what earlier requests used, so requests already in flight when a window fills
may take it over by what they use: a rate limit smooths load, it is not a budget (budgets never go over).
"""

from __future__ import annotations

import time
from typing import ClassVar

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from podium.errors import RateLimited
from podium.governance import SHADOW_OF, CallContext, Outcome, Refusal, Stage
from podium.models import ModelConfig
from podium.store import tables

WINDOW_S = 60
_w = tables.rate_windows


class RateLimits(Stage):
    """Refuse a gateway request whose key or team is over its requests or tokens this minute."""

    name: ClassVar[str] = "rate_limits"

    def __init__(self, engine: sa.Engine, config: ModelConfig) -> None:
        self._engine = engine
        self._limits = config.gateway.limits
        self._held: dict[int, tuple[int, tuple[str, ...]]] = {}  # id(ctx) -> the window and scopes it counts in
        self._calls = 0

    @property
    def active(self) -> bool:
        limits = self._limits
        return any(s.rpm or s.tpm for s in (limits.key, limits.team, *limits.scopes.values()))

    def check(self, ctx: CallContext) -> None:
        site = ctx.site
        if site.door != "request" or not site.api_key or ctx.call.kind != "model":
            return  # only gateway requests: a workflow's calls are paced by its budgets and the review queue
        if SHADOW_OF in ctx.detail:
            return  # podium's shadow sample, not the client's request: it takes no place in the client's window
        scopes = [(f"key:{site.api_key}", self._limits.key)]
        scopes += [(f"team:{team}", self._limits.team) for team in (ctx.standing.teams if ctx.standing else ())]
        limited = [(scope, self._limits.scopes.get(scope, default)) for scope, default in scopes]
        limited = [(scope, limit) for scope, limit in limited if limit.rpm or limit.tpm]
        if not limited:
            return
        now = time.time()
        window = int(now // WINDOW_S)
        with self._engine.begin() as conn:
            for scope, limit in sorted(limited):
                if not _take(conn, scope, window, limit.rpm, limit.tpm):
                    retry = max(1, int((window + 1) * WINDOW_S - now) + 1)
                    what = f"{limit.rpm} requests" if limit.rpm else f"{limit.tpm} tokens"
                    error = RateLimited(
                        f"{scope} is over its limit of {what} a minute (gateway.limits); retry in {retry} s.",
                        scope=scope,
                        retry_after_s=retry,
                    )
                    raise Refusal(error, "denied", why="rate_limited")
            self._sweep(conn, window)
        self._held[id(ctx)] = (window, tuple(scope for scope, _ in limited))

    def finish(self, ctx: CallContext, outcome: Outcome | None) -> None:
        _, scopes = self._held.pop(id(ctx), (0, ()))
        used = ctx.usage.input_tokens + ctx.usage.output_tokens
        if not scopes or not used:
            return
        window = int(time.time() // WINDOW_S)  # the minute it ended in: a long stream's tokens count now
        with self._engine.begin() as conn:
            for scope in sorted(scopes):
                _add_tokens(conn, scope, window, used)

    def _sweep(self, conn: sa.Connection, window: int) -> None:
        """Forget old windows now and then."""
        self._calls += 1
        if self._calls % 500 == 0:
            conn.execute(_w.delete().where(_w.c.window < window - 1))


def _add_tokens(conn: sa.Connection, scope: str, window: int, used: int) -> None:
    insert = (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(_w)
    conn.execute(
        insert.values(scope=scope, window=window, requests=0, tokens=used).on_conflict_do_update(
            index_elements=[_w.c.scope, _w.c.window], set_={"tokens": _w.c.tokens + used}
        )
    )


def _take(conn: sa.Connection, scope: str, window: int, rpm: int | None, tpm: int | None) -> bool:
    """Count one request in `scope`'s window if its limits allow it; whether they did."""
    insert = (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(_w)
    conditions = [_w.c.requests + 1 <= rpm] if rpm else []
    conditions += [_w.c.tokens < tpm] if tpm else []
    room = sa.and_(sa.true(), *conditions)
    statement = insert.values(scope=scope, window=window, requests=1, tokens=0).on_conflict_do_update(
        index_elements=[_w.c.scope, _w.c.window], set_={"requests": _w.c.requests + 1}, where=room
    )
    return bool(conn.execute(statement.returning(_w.c.requests)).first())
