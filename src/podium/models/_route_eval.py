"""Evaluate the router on per-query outcome data, the way it would run in production.

The input (read by `load_queries`, in `_route_data`) holds one row per query: the prompt and, per model, how well
it answered (correct/incorrect or a numeric score). For each seed the queries arrive in a random order; for each
quality floor the router decides every query before it sees any outcome of it, and learns only from the outcome
of the model it chose and from its shadow sample (another model's answer to the same query). Shadow calls are
paid for.

The reference is the model with the best mean quality; the target is 95% of its quality, and cost saved is
measured against sending everything to it. The baselines: always one model; random, the best random mix of the
models that reaches the target; and the oracle, which knows every outcome: its best quality (per query the cheapest
model with that query's best score) and, at the target, the cheapest choice per query that reaches it (a bound
no router can beat, see `oracle_at`). Costs are list prices at an estimated token count; the share of requests per model
(RouteLLM counts the strong model's) is reported beside them.
"""

from __future__ import annotations

import itertools
import random
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from podium._charts import Series, line_chart
from podium.models._route_data import CostColumn, Outcomes, Query, load_queries
from podium.models._route_prior import PriorScorer
from podium.models._router import Router, RouteTier

__all__ = [
    "FLOOR_SHARES",
    "QUALITY_SHARE",
    "CostColumn",
    "Evaluation",
    "Outcomes",
    "Point",
    "Query",
    "evaluate",
    "load_queries",
]

QUALITY_SHARE = 0.95
# Quality floors to sweep, as shares of the reference model's quality on the file (what an operator would read
# off a benchmark); each run is given its floor up front and steers towards it on its own.
FLOOR_SHARES = tuple(round(0.80 + 0.01 * i, 2) for i in range(25))
WINDOWS = 20  # consecutive stretches of the stream in which the floor is checked


@dataclass(frozen=True)
class Point:
    """One operating point: a router run at one floor, or a baseline. Quality is in the file's units."""

    quality: float
    cost_usd: float
    shares: tuple[float, ...]  # share of requests routed to each model (shadow calls count in the cost only)
    windows: tuple[float, ...] = ()  # a router run's realised quality in each consecutive window of its stream


@dataclass(frozen=True)
class Evaluation:
    models: tuple[str, ...]  # cheapest over the file first
    kind: Literal["boolean", "numeric"]
    scale: tuple[float, float]
    scale_source: str
    queries: int
    seeds: int
    always: tuple[Point, ...]  # per model
    oracle: Point
    router: list[list[Point]]  # per seed, per floor
    floor_shares: tuple[float, ...]
    oracle_start: Point  # every query on its cheapest model (the best of them where several cost the same)
    upgrades: tuple[_Upgrade, ...]  # the oracle's moves up from there, most quality per extra dollar first
    reference_windows: tuple[tuple[float, ...], ...]  # per seed: the reference model's quality in each window
    measured: tuple[Point, ...] = ()  # per seed: told "95% of the reference's quality", which it measures itself

    @property
    def reference_index(self) -> int:
        """The model with the best mean quality (the cheaper one on a tie): the "strong" model."""
        return _strongest(self.always)

    @property
    def cheapest(self) -> Point:
        return self.always[0]

    @property
    def reference(self) -> Point:
        return self.always[self.reference_index]

    @property
    def target_quality(self) -> float:
        return QUALITY_SHARE * self.reference.quality

    @property
    def floors(self) -> tuple[float, ...]:
        return tuple(share * self.reference.quality for share in self.floor_shares)

    def random_frontier(self) -> list[Point]:
        """What mixing the models at random can reach: the upper convex hull of the always-one-model points, from
        the cheapest up to the reference (any mix is a point on a chord between them; the best lie on the hull)."""
        return [self.always[i] for i in _upper_hull([(p.cost_usd, p.quality) for p in self.always])]

    def at_target(self, points: Sequence[Point]) -> Point | None:
        """The cheapest point reaching the target quality, interpolating between neighbouring points."""
        frontier = sorted(points, key=lambda p: p.cost_usd)
        target = self.target_quality
        for low, high in itertools.pairwise(frontier):
            if low.quality < target <= high.quality:
                t = (target - low.quality) / (high.quality - low.quality)
                return Point(
                    target,
                    low.cost_usd + t * (high.cost_usd - low.cost_usd),
                    tuple(a + t * (b - a) for a, b in zip(low.shares, high.shares, strict=True)),
                )
        reaching = [p for p in frontier if p.quality >= target]
        return reaching[0] if reaching else None

    def oracle_at(self, quality: float) -> Point | None:
        """The cheapest way to reach `quality` knowing every outcome: start with every query on its cheapest model
        and take, most quality per extra dollar first, each query's upgrades to a better model (the steps of its
        upper convex hull of cost and quality), the last one in part. A bound on any router at that quality; None
        if even the best choice per query falls short."""
        n = self.queries
        gained, cost = self.oracle_start.quality * n, self.oracle_start.cost_usd
        counts = [share * n for share in self.oracle_start.shares]
        for step in self.upgrades:
            if gained >= quality * n:
                break
            part = min(1.0, (quality * n - gained) / step.quality)
            gained, cost = gained + part * step.quality, cost + part * step.cost_usd
            counts[step.source] -= part
            counts[step.target] += part
        if gained < quality * n - 1e-9:
            return None
        return Point(quality, cost, tuple(c / n for c in counts))

    def cost_saved(self, point: Point | None) -> float | None:
        return None if point is None else 1 - point.cost_usd / self.reference.cost_usd

    def cost_share(self, point: Point) -> float | None:
        """How far a point's mix of models goes from always-cheapest (0) to always-reference (1) spending, each
        request counted at its model's average price on the file. With two models it is the strong model's share
        of requests. None when the reference costs no more than the cheapest model (nothing to share out)."""
        cheapest, span = self.cheapest.cost_usd, self.reference.cost_usd - self.cheapest.cost_usd
        if span <= 0:
            return None
        steps = [(model.cost_usd - cheapest) / span for model in self.always]
        return sum(share * step for share, step in zip(point.shares, steps, strict=True))

    def apgr(self, points: Sequence[Point]) -> float | None:
        """Area under the performance-gap-recovered curve over the cost share (RouteLLM's APGR, generalised).

        The curve runs from always-cheapest (0, 0) to always-reference (1, 1) through the points; y is the share of
        the quality gap between the two that a point recovers, x its `cost_share`. With two models x is the share
        of strong calls, so this is RouteLLM's APGR exactly and the MMLU figure stays comparable; with more, a mix
        is placed by what its models cost on average, so a router that uses a middle model well scores above the
        random mix. Points dearer than always-reference (x > 1) are left out: always-reference does better there.
        None when the reference is no better or no dearer than the cheapest model (no gap to recover)."""
        gap = self.reference.quality - self.cheapest.quality
        placed = [(self.cost_share(p), p.quality) for p in points]
        if gap <= 0 or any(x is None for x, _ in placed):
            return None
        curve = [(0.0, 0.0), *sorted((x, (q - self.cheapest.quality) / gap) for x, q in placed if x is not None)]
        curve = [(x, y) for x, y in curve if x <= 1.0] + [(1.0, 1.0)]
        return sum((x2 - x1) * (y1 + y2) / 2 for (x1, y1), (x2, y2) in itertools.pairwise(curve))

    def floor_kept(self) -> list[bool]:
        """For each window of the runs whose floor is the target, over seeds, whether its realised quality met it."""
        at = self.floor_shares.index(QUALITY_SHARE)
        return [w >= self.target_quality for run in self.router for w in run[at].windows]

    def floor_kept_share(self) -> float:
        """The share of `floor_kept` windows that met the floor: how often an operator watching the stream would
        have seen the promise kept."""
        return _share(self.floor_kept())

    def floor_kept_paired(self) -> list[bool]:
        """For the same windows, whether the router's quality met 95% of what the reference model scored on that
        window's own tasks: the promise "95% of the strong model's quality" measured on the same work, so that a
        window of hard tasks does not count against the router (nor a window of easy ones for it)."""
        at = self.floor_shares.index(QUALITY_SHARE)
        return [
            w >= QUALITY_SHARE * strong
            for run, strongs in zip(self.router, self.reference_windows, strict=True)
            for w, strong in zip(run[at].windows, strongs, strict=True)
        ]

    def reference_floor_kept(self) -> list[bool]:
        """For the same windows, whether the reference model alone met the target: the baseline of `floor_kept` for
        a router that saves nothing (one that mixes models can do better, where another scores higher). Windows of
        few tasks are noisy, and even the best model misses many."""
        return [w >= self.target_quality for strongs in self.reference_windows for w in strongs]

    def reference_floor_kept_share(self) -> float:
        return _share(self.reference_floor_kept())

    def measured_floor_kept(self, *, paired: bool = False) -> list[bool]:
        """For each window of the `measured` runs, whether its quality met the target (paired: 95% of what the
        reference scored on the window's own tasks)."""
        return [
            w >= (QUALITY_SHARE * strong if paired else self.target_quality)
            for run, strongs in zip(self.measured, self.reference_windows, strict=True)
            for w, strong in zip(run.windows, strongs, strict=True)
        ]

    def measured_summary(self) -> dict[str, float | None]:
        """The runs told the floor as an operator states it, 95% of the reference model's quality, which each
        measures as it goes (its outcomes, and a shadow sample asked of the reference) instead of being told what
        95% of it is on the file: their cost saved, the share of the reference's quality they reached, and the floor
        kept over their windows, as told and paired."""
        runs, reference = self.measured, self.reference.quality
        kept = [_share(self.measured_floor_kept(paired=paired)) if runs else None for paired in (False, True)]
        return {
            "measured_cost_saved_at_95pct": _mean([self.cost_saved(run) for run in runs]) if runs else None,
            "measured_quality_share": _mean([run.quality / reference for run in runs]) if runs and reference else None,
            "measured_floor_kept_share": kept[0],
            "measured_floor_kept_share_paired": kept[1],
        }

    def summary(self) -> dict[str, object]:
        """Figures over seeds (mean and spread), for the CLI table and the benchmark JSON."""
        ref = self.reference_index
        targets = [self.at_target(points) for points in self.router]
        saved = [self.cost_saved(p) for p in targets]
        calls = [None if p is None else 1 - p.shares[ref] for p in targets]
        apgrs = [self.apgr(points) for points in self.router]
        random_target = self.at_target(self.random_frontier())
        oracle_target = self.oracle_at(self.target_quality)
        return {
            "queries": self.queries,
            "seeds": self.seeds,
            "models": list(self.models),
            "reference": self.models[ref],
            "quality_kind": self.kind,
            "scale": list(self.scale),
            "scale_source": self.scale_source,
            "model_quality": {m: p.quality for m, p in zip(self.models, self.always, strict=True)},
            "model_cost_usd": {m: p.cost_usd for m, p in zip(self.models, self.always, strict=True)},
            "target_quality": self.target_quality,
            "weak_quality": self.cheapest.quality,
            "strong_quality": self.reference.quality,
            "cost_saved_at_95pct": _mean(saved),
            "cost_saved_at_95pct_sd": _sd(saved),
            "strong_calls_saved_at_95pct": _mean(calls),
            "apgr": _mean(apgrs),
            "apgr_sd": _sd(apgrs),
            "floor_kept_share": self.floor_kept_share(),
            "floor_kept_share_paired": _share(self.floor_kept_paired()),
            "reference_floor_kept_share": self.reference_floor_kept_share(),
            "tier_shares": self._mean_shares(targets),
            "random_cost_saved_at_95pct": self.cost_saved(random_target),
            "random_strong_calls_saved_at_95pct": None if random_target is None else 1 - random_target.shares[ref],
            "random_apgr": self.apgr(self.random_frontier()),
            "random_tier_shares": self._mean_shares([random_target]),
            "oracle_cost_saved_at_95pct": self.cost_saved(oracle_target),
            "oracle_strong_calls_saved_at_95pct": None if oracle_target is None else 1 - oracle_target.shares[ref],
            "oracle_tier_shares": self._mean_shares([oracle_target]),
            "oracle_quality": self.oracle.quality,
            **self.measured_summary(),
        }

    def _mean_shares(self, points: Sequence[Point | None]) -> dict[str, float] | None:
        known = [p for p in points if p is not None]
        if len(known) < len(points):
            return None  # a seed that never reached the target has no share at it
        return {m: statistics.fmean(p.shares[i] for p in known) for i, m in enumerate(self.models)}

    def plot(self, title: str) -> str:
        """Quality against the strong model's share of requests for two models (RouteLLM's plot), against the
        share of always-reference cost for more."""
        low, high = self._y_range()
        y_label = "quality (share answered correctly)" if self.kind == "boolean" else "quality (mean score)"
        target = [(0.0, self.target_quality), (1.0, self.target_quality)]
        if len(self.models) == 2:
            ref = self.reference_index
            weak, strong = self.cheapest, self.reference
            return line_chart(
                title,
                "share of queries sent to the strong model",
                y_label,
                [
                    Series(f"podium router (mean of {self.seeds} seeds)", self._mean_curve(lambda p: p.shares[ref])),
                    Series("random", [(0.0, weak.quality), (1.0, strong.quality)]),
                    Series("95% of always-strong", target, dashed=True),
                    Series(
                        "always weak / always strong", [(0.0, weak.quality), (1.0, strong.quality)], markers_only=True
                    ),
                    Series("oracle", [(self.oracle.shares[ref], self.oracle.quality)], markers_only=True),
                ],
                x_range=(0.0, 1.0),
                y_range=(low, high),
            )
        base = self.reference.cost_usd
        right = max(1.0, *(p.cost_usd / base for p in (*self.always, self.oracle))) * 1.05
        return line_chart(
            title,
            "cost, as a share of always-reference cost",
            y_label,
            [
                Series(f"podium router (mean of {self.seeds} seeds)", self._mean_curve(lambda p: p.cost_usd / base)),
                Series("random mix (best)", [(p.cost_usd / base, p.quality) for p in self.random_frontier()]),
                Series(
                    f"95% of always-{self.models[self.reference_index]}",
                    [(0.0, self.target_quality), (right, self.target_quality)],
                    dashed=True,
                ),
                Series(
                    "always one model: " + ", ".join(self.models),
                    [(p.cost_usd / base, p.quality) for p in self.always],
                    markers_only=True,
                ),
                Series("oracle", [(self.oracle.cost_usd / base, self.oracle.quality)], markers_only=True),
            ],
            x_range=(0.0, right),
            y_range=(low, high),
        )

    def _mean_curve(self, x: Callable[[Point], float]) -> list[tuple[float, float]]:
        """(x, quality) per floor, averaged over seeds."""
        return sorted(
            (
                statistics.fmean(x(run[i]) for run in self.router),
                statistics.fmean(run[i].quality for run in self.router),
            )
            for i in range(len(self.floor_shares))
        )

    def _y_range(self) -> tuple[float, float]:
        bottom = min(p.quality for p in self.always)
        if self.kind == "boolean":
            return round(bottom - 0.05, 1), min(1.0, round(self.oracle.quality + 0.05, 1))
        pad = 0.05 * ((self.oracle.quality - bottom) or 1.0)
        return bottom - pad, self.oracle.quality + pad


def evaluate(
    outcomes: Outcomes,
    *,
    seeds: int = 5,
    floor_shares: tuple[float, ...] = FLOOR_SHARES,
    shadow_rate: float | None = None,
    prior: PriorScorer | None = None,
    progress: Callable[[], None] = lambda: None,
) -> Evaluation:
    """Replay the queries `seeds` times in random orders, once per floor; the run at the target floor (95%) is
    always among them, since the floor kept over the stream is measured on it. With `prior`, every run starts from
    what it says of the models (a prior trained on these very queries would be a leak: hold them out). The shadow
    sample is 5% by default, 1% with a prior: there is less left to discover (MMLU, half held out, 1 seed: 54% saved
    at 95% against 52% at 5%)."""
    shadow_rate = (0.05 if prior is None else 0.01) if shadow_rate is None else shadow_rate
    queries, models = outcomes.queries, outcomes.models
    n = len(queries)
    always = tuple(
        Point(
            sum(q.scores[i] for q in queries) / n,
            sum(q.costs[i] for q in queries),
            tuple(float(j == i) for j in range(len(models))),
        )
        for i in range(len(models))
    )
    picks = [_oracle_pick(q) for q in queries]
    oracle = Point(
        sum(q.scores[i] for q, i in zip(queries, picks, strict=True)) / n,
        sum(q.costs[i] for q, i in zip(queries, picks, strict=True)),
        tuple(picks.count(i) / n for i in range(len(models))),
    )
    floor_shares = tuple(sorted({*floor_shares, QUALITY_SHARE}))
    strong = _strongest(always)
    reference = always[strong].quality
    floors = [min(1.0, max(0.0, outcomes.unit(share * reference))) for share in floor_shares]
    units = [tuple(outcomes.unit(s) for s in q.scores) for q in queries]
    router, reference_windows, measured = [], [], []
    for seed in range(seeds):
        order = list(zip(queries, units, strict=True))
        random.Random(seed).shuffle(order)
        reference_windows.append(_windows([q.scores[strong] for q, _ in order]))
        points = []
        for floor in floors:
            points.append(_stream(order, models, floor, shadow_rate, seed, prior))
            progress()
        router.append(points)
        zero = outcomes.unit(0.0)  # the floor is 95% of the reference's quality, not of its place on the scale
        measured.append(_stream(order, models, QUALITY_SHARE, shadow_rate, seed, prior, (models[strong], zero)))
        progress()
    kind, scale, source = outcomes.kind, outcomes.scale, outcomes.scale_source
    hulls = [_upper_hull(list(zip(q.costs, q.scores, strict=True))) for q in queries]
    start = Point(
        sum(q.scores[h[0]] for q, h in zip(queries, hulls, strict=True)) / n,
        sum(q.costs[h[0]] for q, h in zip(queries, hulls, strict=True)),
        tuple(sum(h[0] == i for h in hulls) / n for i in range(len(models))),
    )
    upgrades = sorted(
        (
            _Upgrade(a, b, q.scores[b] - q.scores[a], max(q.costs[b] - q.costs[a], 1e-18))
            for q, h in zip(queries, hulls, strict=True)
            for a, b in itertools.pairwise(h)
        ),
        key=lambda u: -u.quality / u.cost_usd,
    )
    return Evaluation(
        models,
        kind,
        scale,
        source,
        n,
        seeds,
        always,
        oracle,
        router,
        floor_shares,
        start,
        tuple(upgrades),
        tuple(reference_windows),
        tuple(measured),
    )


def _stream(
    stream: Sequence[tuple[Query, tuple[float, ...]]],
    models: tuple[str, ...],
    floor: float,
    shadow_rate: float,
    seed: int,
    prior: PriorScorer | None,
    reference: tuple[str, float] | None = None,
) -> Point:
    """One deployment: decide, pay, observe the chosen (and shadow) outcome, learn; nothing seen in advance. With
    `reference` (a model, and where quality 0 lies in units), the floor is a share of that model's quality, which
    the run measures (`Router.reference`)."""
    router = Router(
        [RouteTier(m, c) for m, c in zip(models, stream[0][0].costs, strict=True)],
        floor=floor,
        shadow_rate=shadow_rate,
        seed=seed,
        window=len(stream) // WINDOWS,  # the floor is promised, and checked, in windows of this many queries
        prior=prior,
        reference=None if reference is None else reference[0],
        zero=0.0 if reference is None else reference[1],
    )
    index = {m: i for i, m in enumerate(models)}
    realised: list[float] = []
    calls = [0] * len(models)
    cost = 0.0
    for query, units in stream:
        decision = router.decide(query.task, costs=dict(zip(models, query.costs, strict=True)))
        for tier in (decision.tier, decision.shadow) if decision.shadow else (decision.tier,):
            cost += query.costs[index[tier]]
            router.learn(decision.features, tier, units[index[tier]], shadow=tier != decision.tier)
        chosen = index[decision.tier]
        realised.append(query.scores[chosen])
        calls[chosen] += 1
    n = len(stream)
    return Point(sum(realised) / n, cost, tuple(c / n for c in calls), _windows(realised))


def _windows(realised: Sequence[float]) -> tuple[float, ...]:
    """Mean quality in each of `WINDOWS` consecutive stretches (one query each when there are fewer)."""
    k = min(WINDOWS, len(realised))
    bounds = [len(realised) * i // k for i in range(k + 1)]
    return tuple(statistics.fmean(realised[a:b]) for a, b in itertools.pairwise(bounds))


def _strongest(always: Sequence[Point]) -> int:
    """The model with the best mean quality (the first, i.e. the cheapest, on a tie)."""
    return max(range(len(always)), key=lambda i: always[i].quality)


def _share(flags: Sequence[bool]) -> float:
    return sum(flags) / len(flags)


def _oracle_pick(query: Query) -> int:
    """The cheapest model (for this query) among those with its best score."""
    best = max(query.scores)
    return min((i for i, s in enumerate(query.scores) if s == best), key=lambda i: query.costs[i])


@dataclass(frozen=True)
class _Upgrade:
    """Moving one query from model `source` to the better model `target`: what it adds and what it costs."""

    source: int
    target: int
    quality: float
    cost_usd: float


def _upper_hull(options: Sequence[tuple[float, float]]) -> list[int]:
    """The indices of the (cost, quality) options worth paying for, cheapest first: their upper convex hull. An
    option no better than one no dearer is left out, and so is one on or below the chord between its neighbours
    (mixing those two does at least as well for the money)."""
    hull: list[int] = []
    for i in sorted(range(len(options)), key=lambda i: (options[i][0], -options[i][1])):
        if hull and options[i][1] <= options[hull[-1]][1]:
            continue
        while len(hull) > 1 and _on_or_below(options[hull[-2]], options[hull[-1]], options[i]):
            hull.pop()
        hull.append(i)
    return hull


def _on_or_below(a: tuple[float, float], b: tuple[float, float], c: tuple[float, float]) -> bool:
    """Is b on or below the chord from a to c (costs increasing)?"""
    return (b[0] - a[0]) * (c[1] - a[1]) >= (b[1] - a[1]) * (c[0] - a[0])


def _mean(values: Sequence[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return statistics.fmean(known) if len(known) == len(values) else None


def _sd(values: Sequence[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return statistics.stdev(known) if len(known) == len(values) and len(known) > 1 else None
