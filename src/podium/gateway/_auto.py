"""`podium/auto`: the learned router picks the model, among those the caller may use (their tier ceiling and
grants, as Cedar decides), the cheapest likely to do the task well enough first, and stronger ones as fallbacks.

It learns from what clients say of its answers (`POST /v1/podium/feedback`): each routed request is stored as
hashed features (never the text) under its request, and credited to the model that answered when feedback comes;
a router starts from everything learnt before, in any process. With `routing.shadow_rate`, that share of the answers
a weaker model gave is also asked of the strongest model the caller may use (the shadow sample, as in workflows:
docs/routing.md); its answer is stored beside the served one, and shares the client's feedback only if the two agree.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from podium._tiers import TIERS
from podium.errors import PodiumError
from podium.gateway._upstream import UpstreamError
from podium.governance import Said, answers_agree, in_shadow_sample, said
from podium.models import Features, ModelCatalog, Router, RouteTier, RoutingSetting, Task
from podium.store import insert_if_absent, tables

AUTO = "podium/auto"
_routed = tables.routed
_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AutoRoute:
    """What `podium/auto` decided for one request: the models to try in order, why (for the audit entry), and the
    router and features to remember the answered request under."""

    models: list[str]
    why: dict[str, str]
    router: str
    features: Features
    strongest: str  # the strongest model the caller may use: the one a shadow sample asks


class AutoRouter:
    """One router per set of models a caller may use (callers with the same rights share what is learnt)."""

    def __init__(self, engine: sa.Engine, routing: RoutingSetting, catalog: ModelCatalog) -> None:
        self._engine = engine
        self._routing = routing
        self._catalog = catalog
        self._routers: dict[str, Router] = {}
        self._lock = threading.Lock()

    def order(self, permitted: Sequence[tuple[str, str, float]], text: str, group: str) -> AutoRoute:
        """The models to try for `text`: the router's choice, then the stronger ones, then the weaker ones
        strongest first; and the router's explanation for the audit entry (with its key, to remember the request
        under). `permitted` holds (model, tier, the expected cost of this request on it)."""
        ranked = sorted(permitted, key=lambda m: (TIERS.index(m[1]) if m[1] in TIERS else len(TIERS), m[2]))
        names = tuple(name for name, _, _ in ranked)
        costs = {name: cost for name, _, cost in ranked}
        key = "gateway:" + "|".join(names)
        with self._lock:
            router = self._routers.get(key) or self._load(key, costs)
            decision = router.decide(Task(text, group), costs=costs)
        at = names.index(decision.tier)
        models = [decision.tier, *names[at + 1 :], *reversed(names[:at])]
        return AutoRoute(models, decision.explain() | {"router": key}, key, decision.features, names[-1])

    def _load(self, key: str, costs: dict[str, float]) -> Router:
        tiers = [RouteTier(name, cost) for name, cost in costs.items()]
        router = self._routers[key] = self._routing.router(tiers, self._catalog.known_as(costs))
        with self._engine.connect() as conn:
            learnt = conn.execute(
                sa.select(_routed.c.model, _routed.c.features, _routed.c.success, _routed.c.shadow_of)
                .where(_routed.c.router == key, _routed.c.success.is_not(None))
                .order_by(_routed.c.at)
            ).all()
        for row in learnt:
            router.learn(
                Features.from_stored(row.features), row.model, bool(row.success), shadow=row.shadow_of is not None
            )
        return router

    def shadowed(self, route: AutoRoute, request: str, served_by: str) -> bool:
        """Whether the answer `served_by` gave to `request` is in the shadow sample (drawn from the request, so a
        client's retry draws the same)."""
        return served_by != route.strongest and in_shadow_sample(request, self._routing.shadow_rate)

    async def shadow(
        self,
        route: AutoRoute,
        request: str,
        served: dict[str, Any],
        ask: Callable[[], Awaitable[dict[str, Any] | None]],
    ) -> None:
        """Put `request` to the strongest model too (`ask`: a governed, paid call, audited with `route_shadow_of`)
        and store its answer beside the served one (`served`: the chat.completion body). A shadow that fails or is
        refused changes nothing for the request: the governor recorded why, and the client has its answer."""
        try:
            answer = await ask()
            if answer is not None:
                agrees = answers_agree(said_in(served), said_in(answer))
                await asyncio.to_thread(self.remember_shadow, route, request, agrees)
        except (PodiumError, UpstreamError):
            return
        except Exception:  # noqa: BLE001 - a background task: nobody else would see it
            _log.exception("the shadow answer to %s was not stored", request)

    def remember(self, route: AutoRoute, request: str, model: str) -> bool:
        """Store the routed request `request` (its asker and id) as answered by `model`, to credit on feedback, with
        the features it was routed on (the prior's odds as decided, not worked out again); whether it was new (a
        client's retry of a request is stored once)."""
        with self._engine.begin() as conn:
            return self._store(conn, route, request, request, model)

    def remember_shadow(self, route: AutoRoute, request: str, agrees: bool | None) -> None:
        """Store the strongest model's shadow answer to `request` beside the served one, with whether they agree
        (None: one said nothing to compare). If the client's feedback came first, an agreeing shadow takes it."""
        with self._engine.begin() as conn:
            _hold(conn, request)  # a feedback in flight commits first (its verdict is read below) or waits for this
            shadow = f"{request}:shadow"
            if not self._store(conn, route, shadow, request, route.strongest, shadow_of=request, agrees=agrees):
                return
            judged = conn.execute(sa.select(_routed.c.success).where(_routed.c.id == request)).scalar()
            if not agrees or judged is None:
                return
            conn.execute(_routed.update().where(_routed.c.id == shadow).values(success=judged))
        self._learn([(route.router, route.strongest, route.features, True)], bool(judged))

    def feedback(self, request: str, success: bool) -> int:
        """Credit the routed request `request` with `success` (once), and its shadow answer if it agreed; return how
        many served answers it credited (0: none waits, and nothing changed)."""
        judged = sa.or_(_routed.c.shadow_of.is_(None), _routed.c.agrees == 1)  # a disagreeing shadow stays unjudged
        waiting = sa.and_(_routed.c.run_id == request, _routed.c.success.is_(None), judged)
        with self._engine.begin() as conn:
            _hold(conn, request)  # a shadow being stored lands before these rows are read, or after they are judged
            rows = conn.execute(
                sa.select(_routed.c.router, _routed.c.model, _routed.c.features, _routed.c.shadow_of).where(waiting)
            ).all()
            if not any(row.shadow_of is None for row in rows):
                return 0  # credited before: a shadow stored since took that verdict when it was stored
            conn.execute(_routed.update().where(waiting).values(success=int(success)))
        self._learn(
            [(r.router, r.model, Features.from_stored(r.features), r.shadow_of is not None) for r in rows], success
        )
        return sum(row.shadow_of is None for row in rows)

    def _learn(self, rows: list[tuple[str, str, Features, bool]], success: bool) -> None:
        """Teach this process's routers one outcome of each (router, model, features, whether a shadow answer)."""
        with self._lock:
            for router, model, features, shadow in rows:
                if router in self._routers:
                    self._routers[router].learn(features, model, success, shadow=shadow)

    @staticmethod
    def _store(
        conn: sa.Connection, route: AutoRoute, row: str, request: str, model: str, *, shadow_of: str | None = None,
        agrees: bool | None = None,
    ) -> bool:  # fmt: skip
        return insert_if_absent(
            conn, _routed, id=row, router=route.router, run_id=request, model=model,
            features=route.features.stored(), success=None, at=time.time(), shadow_of=shadow_of,
            agrees=None if agrees is None else int(agrees),
        )  # fmt: skip


def _hold(conn: sa.Connection, request: str) -> None:
    """Lock the served row of `request` for this transaction, so that a feedback and the storing of its shadow
    answer take turns: otherwise each can miss the other (the feedback reads no shadow yet, the shadow reads no
    verdict yet) and an agreeing shadow is never judged. A no-op write: a row lock on PostgreSQL, and SQLite's write
    lock, which Python's sqlite3 takes at the first write, not at a read."""
    conn.execute(_routed.update().where(_routed.c.id == request).values(at=_routed.c.at))


def said_in(completion: dict[str, Any]) -> Said | None:
    """What an OpenAI chat.completion body says (its first choice's text and tool calls), to compare."""
    first = (completion.get("choices") or [{}])[0]
    message = (first.get("message") if isinstance(first, dict) else None) or {}
    calls = [
        (str(function.get("name")), function.get("arguments"))
        for call in message.get("tool_calls") or ()
        if isinstance(call, dict) and isinstance(function := call.get("function"), dict)
    ]
    content = message.get("content")
    return said(content if isinstance(content, str) else "", calls)
