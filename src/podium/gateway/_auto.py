"""`podium/auto`: the learned router picks the model, among those the caller may use (their tier ceiling and
grants, as Cedar decides), the cheapest likely to do the task well enough first, and stronger ones as fallbacks."""

from __future__ import annotations

import threading
from collections.abc import Sequence

from podium._tiers import TIERS
from podium.models import Router, RouteTier, Task

AUTO = "podium/auto"


class AutoRouter:
    """One router per set of models a caller may use (callers with the same rights share what is learnt)."""

    def __init__(self, floor: float) -> None:
        self._floor = floor
        self._routers: dict[tuple[str, ...], Router] = {}
        self._lock = threading.Lock()

    def order(
        self, permitted: Sequence[tuple[str, str, float]], text: str, group: str
    ) -> tuple[list[str], dict[str, str]]:
        """The models to try for `text`: the router's choice, then the stronger ones, then the weaker ones
        strongest first; and the router's explanation for the audit entry. `permitted` holds (model, tier, the
        expected cost of this request on it)."""
        ranked = sorted(permitted, key=lambda m: (TIERS.index(m[1]) if m[1] in TIERS else len(TIERS), m[2]))
        names = tuple(name for name, _, _ in ranked)
        costs = {name: cost for name, _, cost in ranked}
        with self._lock:
            router = self._routers.get(names)
            if router is None:
                tiers = [RouteTier(name, cost) for name, cost in costs.items()]
                router = self._routers[names] = Router(tiers, floor=self._floor, shadow_rate=0.0)
            decision = router.decide(Task(text, group), costs=costs)
        at = names.index(decision.tier)
        return [decision.tier, *names[at + 1 :], *reversed(names[:at])], decision.explain()
