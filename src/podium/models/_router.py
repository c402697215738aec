"""The cost router: send each task to the cheapest tier likely to do it well enough, and learn from outcomes.

For every tier the router keeps an online logistic model of "this tier succeeds at this task", over hashed
words of the task text and its group (the workflow step, or any category the caller knows), as a part all tiers
share (how hard such a task is) plus the tier's own (see `OnlineLogistic`). It picks the tier
with the best estimated success less its cost for this task times a cost weight, and steers that weight with the
outcomes it observes so that the share of successes holds the quality floor (see `Router`).

It learns only from outcomes podium observes: the result of the tier it chose (verified, or a reviewer's
approval or correction) and a shadow sample, a small share of tasks also sent to a second tier so that it keeps
measuring what it did not choose. Every decision carries its explanation (features, estimates, floor) for the
audit entry.
"""

from __future__ import annotations

import functools
import itertools
import json
import math
import random
import re
import statistics
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from podium.models._route_prior import PriorScorer

_WORD = re.compile(r"[a-z0-9]+")
_BUCKETS = 1 << 18


@dataclass(frozen=True)
class Task:
    """What the router sees of a task before it decides: its text and, if the caller knows one, its group."""

    text: str
    group: str = ""


@dataclass(frozen=True)
class Features:
    """A task as hashed feature indices, with the readable names of the ones worth showing in an explanation, and
    each tier's prior log-odds for it when the router has a prior (stored with the features, so that an outcome
    reported later is learnt against the same prior)."""

    indices: npt.NDArray[np.int64]
    shown: tuple[str, ...]
    prior: Mapping[str, float] = field(default_factory=dict)

    @classmethod
    def of(cls, task: Task) -> Features:
        return _features(task)

    def stored(self) -> str:
        """As JSON for the `podium_routed` table: the hashed indices and the prior's log-odds, never the text."""
        indices = self.indices.tolist()
        return json.dumps({"indices": indices, "prior": dict(self.prior)} if self.prior else indices)

    @classmethod
    def from_stored(cls, stored: str) -> Features:
        """Features as `stored` wrote them (a bare list: written before the router had a prior)."""
        data = json.loads(stored)
        if isinstance(data, list):
            return cls(np.array(data, dtype=np.int64), ())
        return cls(np.array(data["indices"], dtype=np.int64), (), {str(k): float(v) for k, v in data["prior"].items()})


@functools.lru_cache(maxsize=4096)  # a task is decided, then learnt from (and maybe shadowed): hash it once
def _features(task: Task) -> Features:
    words = _WORD.findall(task.text.lower())
    names = ["bias", f"group={task.group}", f"length={min(len(words) // 25, 8)}"]
    names += [f"w={w}" for w in words] + [f"w2={a}_{b}" for a, b in itertools.pairwise(words)]
    indices = np.unique(np.fromiter((zlib.crc32(n.encode()) % _BUCKETS for n in names), dtype=np.int64))
    return Features(indices, tuple(names[:3]))


class OnlineLogistic:
    """Logistic regressions learnt one outcome at a time (AdaGrad) over hashed binary features, one per tier, each
    the sum of a part shared by every tier and the tier's own part.

    The shared part learns from every outcome how hard a kind of task is; a tier's own part, how that tier
    differs. So a tier that has seen little starts from what the tiers achieve on such a task, not from a blank
    50%, which on a short stream or among many tiers would send work to an untried tier just because it is untried.
    """

    def __init__(self, tiers: Sequence[str], learning_rate: float = 0.05, prior: float = 0.5) -> None:
        self._weights = {name: np.zeros(_BUCKETS) for name in ("", *tiers)}  # "": the shared part
        self._squared = {name: np.ones(_BUCKETS) for name in self._weights}
        self._learning_rate = learning_rate
        self._weights[""][zlib.crc32(b"bias") % _BUCKETS] = math.log(prior / (1 - prior))
        self.observations = 0

    @property
    def tiers(self) -> tuple[str, ...]:
        return tuple(name for name in self._weights if name)

    def predict(self, tier: str, features: Features) -> float:
        score = features.prior.get(tier, 0.0)
        score += float(self._weights[""][features.indices].sum() + self._weights[tier][features.indices].sum())
        return 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, score))))

    def learn(self, tier: str, features: Features, success: float) -> None:
        """One outcome: True/False, or a quality in [0, 1] as a soft label (the log loss takes soft targets)."""
        gradient = float(success) - self.predict(tier, features)
        for part in ("", tier):
            squared = self._squared[part]
            squared[features.indices] += gradient * gradient
            self._weights[part][features.indices] += self._learning_rate * gradient / np.sqrt(squared[features.indices])
        self.observations += 1


@dataclass
class _Moments:
    """Outcomes seen so far: how many, their sum and their sum of squares."""

    n: int = 0
    total: float = 0.0
    squares: float = 0.0

    def add(self, outcome: float) -> None:
        self.n, self.total, self.squares = self.n + 1, self.total + outcome, self.squares + outcome * outcome

    def mean_and_variance(self, *, assumed: float | None = None) -> tuple[float, float]:
        """Their mean (with `assumed`, one such outcome added to it: a prior that fades as outcomes come) and the
        variance of that mean: the outcomes' own spread (judge scores vary less than successes), with the spread of
        a share, p(1 - p), counted as one more observation (p kept off 0 and 1 by half an outcome), so that a few
        equal outcomes are not taken for certain."""
        mean = (self.total + assumed) / (self.n + 1) if assumed is not None else self.total / max(self.n, 1)
        if self.n == 0:
            return mean, 0.0
        deviations = max(0.0, self.squares - self.total * self.total / self.n)
        p = (self.total + 0.5) / (self.n + 1)
        return mean, (deviations + p * (1 - p)) / self.n / self.n


@dataclass
class ReferenceQuality:
    """How well the tier a floor is a share of does on all the work, from what was observed of it: its outcomes where
    it was chosen (the tasks the router thought hard), weighed by the share of decisions that chose it, and its
    shadow answers for the rest (a random sample of the tasks the other tiers took). Until the shadow sample has
    any, the rest counts as done perfectly, which puts the floor high: a router that has not measured its reference
    spends on quality. The variance treats the share chosen as known (its own error is small next to the rest)."""

    decided: int = 0
    decided_reference: int = 0
    chosen: _Moments = field(default_factory=_Moments)  # the reference's outcomes where the router chose it
    shadowed: _Moments = field(default_factory=_Moments)  # its shadow answers on the other tiers' tasks

    def decide(self, *, reference: bool) -> None:
        self.decided, self.decided_reference = self.decided + 1, self.decided_reference + reference

    def observe(self, outcome: float, *, shadow: bool) -> None:
        """An outcome of the reference: where it was chosen, or as a shadow answer."""
        (self.shadowed if shadow else self.chosen).add(outcome)

    def estimate(self) -> tuple[float, float]:
        """The reference's mean quality over the work, and the variance of that estimate."""
        share = self.decided_reference / self.decided if self.decided else 0.0
        chosen = self.chosen.mean_and_variance() if self.chosen.n else (0.0, 0.0)
        rest = self.shadowed.mean_and_variance(assumed=1.0)
        return (
            share * chosen[0] + (1 - share) * rest[0],
            share * share * chosen[1] + (1 - share) ** 2 * rest[1],
        )


@dataclass(frozen=True)
class RouteTier:
    """A tier as the router sees it: a name and the expected cost of one call, in any unit."""

    name: str
    cost: float


@dataclass(frozen=True)
class RouteDecision:
    """Where a task goes, and why: written into the audit entry of the call."""

    tier: str
    estimates: dict[str, float]
    costs: dict[str, float]
    floor: float
    cost_weight: float
    features: Features = field(repr=False, compare=False)  # as decided on: learn from these, never recompute them
    shadow: str | None = None
    aim: float | None = None  # above the floor when the router keeps it over windows of tasks (`Router.window`)
    prior: str | None = None  # the embedding model of the prior the estimates start from, if any
    reference: tuple[str, float] | None = None  # the tier the floor is a share of, and its quality as measured

    def explain(self) -> dict[str, str]:
        return {
            "route": self.tier,
            "route_estimates": ", ".join(f"{tier} {p:.2f}" for tier, p in self.estimates.items()),
            "route_costs": ", ".join(f"{tier} {c:.3g}" for tier, c in self.costs.items()),
            "route_floor": f"{self.floor:.2f}",
            "route_cost_weight": f"{self.cost_weight:.3g}",
            "route_features": " ".join(self.features.shown),
            **({"route_shadow": self.shadow} if self.shadow else {}),
            **({"route_aim": f"{self.aim:.3f}"} if self.aim is not None else {}),
            **({"route_prior": self.prior} if self.prior else {}),
            **({"route_floor_of": f"{self.reference[0]} {self.reference[1]:.3f}"} if self.reference else {}),
        }


@dataclass
class Router:
    """Picks a tier per task and learns from outcomes; tiers are given weakest (and usually cheapest) first.

    Each task goes to the tier with the best estimated success less its cost times a cost weight. The weight is
    steered by the outcomes the router observes: it rises while they beat the quality floor (spend less) and falls
    while they miss it (spend more), so the router settles on the cheapest mix that holds the floor, with no
    threshold tuned in hindsight. Costs are per task (a long prompt costs more on every tier), so expensive tasks
    must promise more to earn the strong tier.

    A floor held on average is missed in half of any stretch of work. With `window` set, the router aims above the
    floor by the margin that chance alone takes away from a window of that many tasks (`confidence` one-sided,
    binomial), so that the floor holds in about `confidence` of such windows (MMLU, 5 seeds: 95% of 700-task
    windows, against 62% without, at the same cost saved at the 95% target).

    With `reference`, the floor is a share of that tier's quality, as an operator states it ("95% of the frontier
    model"), and the router measures that quality as it goes (`ReferenceQuality`): the aim follows the estimate,
    above it also by the estimate's own uncertainty, the shadow sample goes to the reference, and no task goes to a
    tier dearer for it than the reference (RouteProfile, whose reference is mid-priced, 5 seeds: 38.2% saved at 90%
    of its quality, against -114.5% at 86% when the router could buy the dearer models).
    """

    tiers: Sequence[RouteTier]
    floor: float = 0.8
    shadow_rate: float = 0.05
    seed: int = 0
    steering: float = 0.02
    window: int = 0  # aim above the floor so that it holds in `confidence` of windows of this many tasks (0: mean)
    confidence: float = 0.95
    prior: PriorScorer | None = None  # what public outcomes say of each tier on a task, before any of its own
    reference: str | None = None  # the floor is a share of this tier's measured quality (None: a share of tasks)
    zero: float = 0.0  # where quality 0 lies on the outcomes' scale (a judge's 1-10 read as 0-1 puts it at -1/9)
    _model: OnlineLogistic = field(init=False)
    _random: random.Random = field(init=False)
    _cost_weight: float = field(init=False, default=0.05)  # start quality-first; outcomes teach thrift
    _typical_cost: float = field(init=False, default=0.0)
    _tasks_seen: int = field(init=False, default=0)
    _aim: float = field(init=False, default=0.0)
    _measured: ReferenceQuality = field(init=False, default_factory=ReferenceQuality)

    def __post_init__(self) -> None:
        if not self.tiers:
            raise ValueError("a router needs at least one tier")
        if len({tier.name for tier in self.tiers}) != len(self.tiers):
            raise ValueError(f"tier names must be distinct, got {[tier.name for tier in self.tiers]}")
        if not 0.0 <= self.floor <= 1.0 or not 0.0 <= self.shadow_rate <= 1.0:
            raise ValueError("floor and shadow_rate are shares between 0 and 1")
        if self.window < 0 or not 0.5 <= self.confidence < 1.0:
            raise ValueError("window is a number of tasks (0: the floor on average); confidence is in [0.5, 1)")
        if self.reference is not None and self.reference not in {tier.name for tier in self.tiers}:
            raise ValueError(f"the floor's reference {self.reference!r} is not one of the tiers")
        if self.reference is not None and not self.shadow_rate:
            raise ValueError("a floor measured on a reference tier needs a shadow sample: set shadow_rate above 0")
        # With a prior, outcomes correct it rather than discover everything: a lower rate keeps them from drowning
        # it in the noise of single outcomes (MMLU, half held out, 1 seed: 52.6% saved at 95% against 48.7% at 0.05).
        rate = 0.05 if self.prior is None else 0.01
        self._model = OnlineLogistic([tier.name for tier in self.tiers], learning_rate=rate)
        self._aim = self._aim_at(self.floor, 0.0) if self.reference is None else self._measured_aim()
        self._random = random.Random(self.seed)

    def decide(self, task: Task, *, costs: dict[str, float] | None = None) -> RouteDecision:
        """Choose a tier for `task`; `costs` are this task's expected cost per tier (default: each tier's cost)."""
        costs = costs or {tier.name: tier.cost for tier in self.tiers}
        features = self.features(task)
        estimates = {tier.name: self._model.predict(tier.name, features) for tier in self.tiers}
        self._tasks_seen += 1
        self._typical_cost += (max(costs.values()) - self._typical_cost) / self._tasks_seen
        weight = self._cost_weight / (self._typical_cost or 1.0)
        # a floor that is a share of the reference's quality is never bought dearer than the reference itself
        affordable = [t for t in self.tiers if self.reference is None or costs[t.name] <= costs[self.reference]]
        chosen = max(affordable, key=lambda tier: estimates[tier.name] - weight * costs[tier.name]).name
        if self.reference is not None:
            self._measured.decide(reference=chosen == self.reference)
        return RouteDecision(
            chosen,
            estimates,
            costs,
            self.floor,
            self._cost_weight,
            features,
            self._shadow_for(chosen),
            self._aim if self.window or self.reference is not None else None,
            None if self.prior is None else f"public outcomes ({self.prior.prior.embedder})",
            None if self.reference is None else (self.reference, self._measured.estimate()[0]),
        )

    def learn(self, task: Task | Features, tier: str, success: float, *, shadow: bool = False) -> None:
        """Record the observed outcome of `tier` on `task` (or on its features, as stored): success or failure, or
        a quality between 0 and 1 (a judge's score on its scale). Outcomes of the chosen tier (not of a shadow
        call) also steer the cost weight towards the floor, by how far they fall above or below it."""
        if not 0.0 <= success <= 1.0:
            raise ValueError(f"an outcome is a success (True/False) or a quality between 0 and 1, got {success}")
        if tier not in self._model.tiers:
            return  # a model no longer among this router's candidates
        self._model.learn(tier, task if isinstance(task, Features) else self.features(task), success)
        if self.reference is not None:
            if tier == self.reference:
                self._measured.observe(success, shadow=shadow)
            self._aim = self._measured_aim()
        if not shadow:
            self._cost_weight *= math.exp(self.steering * (float(success) - self._aim))
            self._cost_weight = min(max(self._cost_weight, 1e-4), 1e4)

    def _aim_at(self, floor: float, uncertain: float) -> float:
        """Where to steer so that the floor (a success share) holds with `confidence`: above it by the standard
        error of a window's quality and of the floor itself (`uncertain`, its variance, when it is measured),
        combined."""
        spread = floor * (1 - floor) / self.window if self.window else 0.0
        return min(1.0, floor + statistics.NormalDist().inv_cdf(self.confidence) * math.sqrt(spread + uncertain))

    def _measured_aim(self) -> float:
        """The aim for a floor that is a share of the reference's quality as measured so far."""
        quality, variance = self._measured.estimate()
        floor = self.floor * quality + (1 - self.floor) * self.zero  # the share of the quality, not of the scale
        return self._aim_at(floor, self.floor**2 * variance)

    def features(self, task: Task) -> Features:
        """What the router sees of `task`: its hashed words and, with a prior, each tier's prior log-odds."""
        features = Features.of(task)
        if self.prior is None:
            return features
        return replace(features, prior=self.prior.log_odds(task.text, [tier.name for tier in self.tiers]))

    def _shadow_for(self, chosen: str) -> str | None:
        """Another tier, at random, to learn what it would have done: over many tiers, one next to the choice would
        leave the far ones unmeasured (on LLMRouter's nine models, 2 seeds: 71% saved at 95%, against 77% at random)."""
        if len(self.tiers) < 2 or chosen == self.reference or self._random.random() >= self.shadow_rate:
            return None
        if self.reference is not None:
            return self.reference  # measuring the reference on the other tiers' tasks keeps the floor honest
        others = [tier.name for tier in self.tiers if tier.name != chosen]
        return others[0] if len(others) == 1 else self._random.choice(others)
