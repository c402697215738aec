"""`podium/auto`: the learned router picks the model, among those the caller may use (their tier ceiling and
grants, as Cedar decides), the cheapest likely to do the task well enough first, and stronger ones as fallbacks.

It learns from what clients say of its answers (`POST /v1/podium/feedback`): each routed request is stored as
hashed features (never the text) under its request, and credited to the model that answered when feedback comes;
a router starts from everything learnt before, in any process.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa

from podium._tiers import TIERS
from podium.models import Features, ModelCatalog, Router, RouteTier, RoutingSetting, Task
from podium.store import insert_if_absent, tables

AUTO = "podium/auto"
_routed = tables.routed


@dataclass(frozen=True)
class AutoRoute:
    """What `podium/auto` decided for one request: the models to try in order, why (for the audit entry), and the
    router and features to remember the answered request under."""

    models: list[str]
    why: dict[str, str]
    router: str
    features: Features


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
        return AutoRoute(models, decision.explain() | {"router": key}, key, decision.features)

    def _load(self, key: str, costs: dict[str, float]) -> Router:
        tiers = [RouteTier(name, cost) for name, cost in costs.items()]
        router = self._routers[key] = self._routing.router(tiers, self._catalog.known_as(costs))
        with self._engine.connect() as conn:
            learnt = conn.execute(
                sa.select(_routed.c.model, _routed.c.features, _routed.c.success)
                .where(_routed.c.router == key, _routed.c.success.is_not(None))
                .order_by(_routed.c.at)
            ).all()
        for row in learnt:
            router.learn(Features.from_stored(row.features), row.model, bool(row.success))
        return router

    def remember(self, route: AutoRoute, request: str, model: str) -> None:
        """Store the routed request `request` (its asker and id) as answered by `model`, to credit on feedback, with
        the features it was routed on (the prior's odds as decided, not worked out again)."""
        with self._engine.begin() as conn:
            insert_if_absent(
                conn, _routed, id=request, router=route.router, run_id=request, model=model,
                features=route.features.stored(), success=None, at=time.time(),
            )  # fmt: skip

    def feedback(self, request: str, success: bool) -> int:
        """Credit the routed request `request` with `success` (once); return how many answers it credited."""
        with self._engine.begin() as conn:
            rows = conn.execute(
                sa.select(_routed.c.router, _routed.c.model, _routed.c.features).where(
                    _routed.c.run_id == request, _routed.c.success.is_(None)
                )
            ).all()
            conn.execute(
                _routed.update()
                .where(_routed.c.run_id == request, _routed.c.success.is_(None))
                .values(success=int(success))
            )
        with self._lock:
            for row in rows:
                if row.router in self._routers:
                    self._routers[row.router].learn(Features.from_stored(row.features), row.model, success)
        return len(rows)
