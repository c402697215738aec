"""Whether each live router is keeping its quality floor, from the outcomes reported on its routed requests.

The router steers towards `routing.floor` on the outcomes it is told (`podium.route_outcome`, the gateway's
feedback); this reads the same outcomes back and says, with `routing.floor_confidence`, whether the recent ones
hold the floor, miss it, or are too few to tell. An operator sees it in `podium route status`; a router that cannot
keep its floor (the strongest model itself is below it, or outcomes stopped coming) is reported, not hidden.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import Literal

import sqlalchemy as sa

from podium.models import RoutingSetting
from podium.store import tables

DEFAULT_WINDOW = 200  # recent outcomes judged when routing.floor_window is not set
Verdict = Literal["holding", "below", "unsure", "no outcomes"]
_routed = tables.routed


@dataclass(frozen=True)
class ModelFloor:
    """One model of a router over the same recent outcomes: how much of the work it took and how it did."""

    model: str
    requests: int  # routed to it, all time
    judged: int  # of the recent outcomes, how many were its
    quality: float | None  # their success share


@dataclass(frozen=True)
class FloorStatus:
    """A router's recent outcomes against its floor, with a one-sided interval at `confidence` (Wilson)."""

    router: str  # agent:model|model… for workflows, the gateway's key for podium/auto
    requests: int
    judged: int  # the recent outcomes the verdict rests on (at most the window)
    quality: float | None
    low: float | None
    high: float | None
    floor: float
    confidence: float
    models: tuple[ModelFloor, ...]  # its candidates, weakest first, then any it routed to before
    shadows: int = 0  # shadow answers by the strongest candidate (routing.shadow_rate), all time
    agreed: int = 0  # of those, how many agreed with the answer served

    @property
    def agreement(self) -> float | None:
        """The share of shadow answers that agreed with the served one: a floor-free estimate of how often the
        weaker models answer as the strongest would (meaningful where answers are labels, numbers or records)."""
        return self.agreed / self.shadows if self.shadows else None

    @property
    def verdict(self) -> Verdict:
        if self.low is None or self.high is None:
            return "no outcomes"
        if self.low >= self.floor:
            return "holding"
        return "below" if self.high < self.floor else "unsure"

    def advice(self) -> str:
        """What an operator can do about the verdict, in one line."""
        if self.verdict == "no outcomes":
            return (
                "No outcomes reported yet: report them (podium.route_outcome in workflows, the gateway's feedback "
                "endpoint), or the router cannot learn or keep a floor"
            )
        if self.verdict == "unsure":
            return f"{self.judged} recent outcomes cannot tell yet; the verdict firms up as more are reported"
        if self.verdict == "holding":
            return "The floor holds"
        measured = [m for m in self.models if m.quality is not None]
        best = max(measured, key=lambda m: m.quality or 0.0)
        unmeasured = [m.model for m in self.models if m.quality is None]
        if (best.quality or 0.0) >= self.floor:
            return (
                f"{best.model} holds the floor but gets too little of the work: the router steers towards it as "
                "outcomes come in; if it stays below, check that outcomes are reported for every model"
            )
        if unmeasured:
            return (
                f"No model measured lately reaches the floor (the best is {best.model} at {best.quality:.0%}), and "
                f"{', '.join(unmeasured)} had no recent outcome: route work to it and report the outcomes before "
                "lowering routing.floor"
            )
        return (
            f"No model reaches the floor on this work (the best is {best.model} at {best.quality:.0%}): lower "
            "routing.floor or add a stronger model"
        )

    def as_dict(self) -> dict[str, object]:
        return {
            "router": self.router,
            "requests": self.requests,
            "judged": self.judged,
            "quality": self.quality,
            "low": self.low,
            "high": self.high,
            "floor": self.floor,
            "confidence": self.confidence,
            "verdict": self.verdict,
            "advice": self.advice(),
            "models": [vars(m) for m in self.models],
            "shadows": self.shadows,
            "agreement": self.agreement,
        }


def floor_status(engine: sa.Engine, routing: RoutingSetting) -> list[FloorStatus]:
    """Every router that has routed a request, judged on its last `routing.floor_window` outcomes (or
    DEFAULT_WINDOW), sorted by name."""
    window = routing.floor_window or DEFAULT_WINDOW
    z = statistics.NormalDist().inv_cdf(routing.floor_confidence)
    served = _routed.c.shadow_of.is_(None)
    counts = (
        sa.select(_routed.c.router, _routed.c.model, sa.func.count())
        .where(served)
        .group_by(_routed.c.router, _routed.c.model)
    )
    shadows = (
        sa.select(_routed.c.router, sa.func.count(), sa.func.coalesce(sa.func.sum(_routed.c.agrees), 0))
        .where(_routed.c.shadow_of.is_not(None))
        .group_by(_routed.c.router)
    )
    with engine.connect() as conn:
        requests: dict[str, dict[str, int]] = {}
        for router, model, n in conn.execute(counts):
            requests.setdefault(router, {})[model] = n
        sampled = {router: (int(n), int(agreed)) for router, n, agreed in conn.execute(shadows)}
        recent = {
            router: conn.execute(
                sa.select(_routed.c.model, _routed.c.success)
                .where(_routed.c.router == router, _routed.c.success.is_not(None), served)
                .order_by(_routed.c.at.desc(), _routed.c.id.desc())
                .limit(window)
            ).all()
            for router in requests
        }
    statuses = []
    for router in sorted(requests):
        outcomes = [(model, bool(success)) for model, success in recent[router]]
        low, high = _wilson(sum(ok for _, ok in outcomes), len(outcomes), z)
        candidates = router.partition(":")[2].split("|")  # agent:model|model… (weakest first), gateway:model|…
        named = [*candidates, *sorted(set(requests[router]) - set(candidates))]
        models = tuple(
            ModelFloor(model, requests[router].get(model, 0), len(mine := [ok for m, ok in outcomes if m == model]),
                       _share(mine))
            for model in named
        )  # fmt: skip
        statuses.append(
            FloorStatus(
                router,
                sum(requests[router].values()),
                len(outcomes),
                _share([ok for _, ok in outcomes]),
                low,
                high,
                routing.floor,
                routing.floor_confidence,
                models,
                *sampled.get(router, (0, 0)),
            )
        )
    return statuses


def _share(outcomes: list[bool]) -> float | None:
    return sum(outcomes) / len(outcomes) if outcomes else None


def _wilson(successes: int, n: int, z: float) -> tuple[float | None, float | None]:
    """The one-sided lower and upper bounds on a success share at normal quantile `z` (Wilson's score interval,
    which stays inside [0, 1] and is honest for a handful of outcomes)."""
    if n == 0:
        return None, None
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)
