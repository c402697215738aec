"""What the cost router knows before it has seen an outcome: a prior learnt from public per-query outcomes.

For every model the public outcome sets measured, a logistic regression over the sentence embedding of a prompt
(`Embedder`, all-MiniLM-L6-v2) says how likely that model is to answer it well; a generic head, fitted on every
model's outcomes at once, says how hard the prompt is for a model the prior has never seen. The router adds a
tier's prior log-odds to its own online estimate (`OnlineLogistic`), so on its first task it already knows that
a 3B model is weaker than a 70B one at mathematics, and its outcomes then correct the prior where the
organisation's work differs.

The prior ships as plain JSON (`route_prior.json`, no pickle): the heads' weights, the embedding model they were
fitted on, and what they were trained on. `python -m benchmarks.routing_prior` rebuilds it from the shared
data.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import numpy.typing as npt

    from podium.models._embeddings import Embedder

    Matrix = npt.NDArray[np.float64]

PRIOR_FILE = Path(__file__).with_name("route_prior.json")
GENERIC = "*"  # the head for a model the prior has not seen
_PREFIX = re.compile(r"^(?:[a-z0-9_-]+:)?(?:[a-z0-9_.-]+/)?")  # provider: and org/ (openai:gpt-4o, mistralai/x)
_SUFFIX = re.compile(r"(?:_score|-bf16|-fp8|-instruct|-it)+$")


def model_key(name: str) -> str:
    """A model's name as the prior knows it: lower case, without its provider, organisation or a quality column's
    and quantisation's suffix ("together:mistralai/Mixtral-8x7B-Instruct-v0.1" -> "mixtral-8x7b-instruct-v0.1")."""
    key = _PREFIX.sub("", name.strip().lower(), count=1)
    return _SUFFIX.sub("", key) or key


def fit_head(x: Matrix, y: Matrix, *, l2: float = 1.0, steps: int = 25) -> Matrix:
    """A logistic regression of targets `y` in [0, 1] (soft labels allowed) on rows `x`, by Newton's method with
    an L2 penalty (not on the bias). Returns the weights with the bias last."""
    x1 = np.hstack([x, np.ones((len(x), 1))])
    weights = np.zeros(x1.shape[1])
    penalty = l2 * np.eye(x1.shape[1])
    penalty[-1, -1] = 0.0
    for _ in range(steps):
        p = 1.0 / (1.0 + np.exp(-np.clip(x1 @ weights, -30, 30)))
        gradient = x1.T @ (p - y) + penalty @ weights
        hessian = (x1 * (p * (1 - p))[:, None]).T @ x1 + penalty + 1e-9 * np.eye(x1.shape[1])
        step = np.linalg.solve(hessian, gradient)
        weights -= step
        if float(np.abs(step).max()) < 1e-6:
            break
    return weights


@dataclass(frozen=True)
class RoutePrior:
    """Per-model heads over an embedding: `log_odds` of each model answering a prompt well."""

    embedder: str
    heads: Mapping[str, Matrix]  # model_key -> weights (dimensions, then the bias); GENERIC for unseen models
    trained_on: tuple[str, ...]

    def __post_init__(self) -> None:
        if GENERIC not in self.heads:
            raise ValueError(f"a route prior needs a generic head {GENERIC!r} for models it has not seen")

    def knows(self, model: str) -> bool:
        return model_key(model) in self.heads

    def log_odds(self, vector: Matrix, models: Sequence[str]) -> dict[str, float]:
        """For one prompt's embedding, each model's prior log-odds of answering it well (unseen: generic)."""
        point = np.append(vector, 1.0)
        return {m: float(point @ self.heads.get(model_key(m), self.heads[GENERIC])) for m in models}

    @classmethod
    @functools.cache
    def shipped(cls) -> RoutePrior:
        """The prior podium ships, read once per process."""
        return cls.load(PRIOR_FILE)

    @classmethod
    def load(cls, path: Path = PRIOR_FILE) -> RoutePrior:
        data = json.loads(path.read_text(encoding="utf-8"))
        heads = {name: np.array(weights, dtype=np.float64) for name, weights in data["heads"].items()}
        return cls(data["embedder"], heads, tuple(data["trained_on"]))

    def save(self, path: Path) -> None:
        heads = {name: [round(float(w), 5) for w in weights] for name, weights in sorted(self.heads.items())}
        document = {"embedder": self.embedder, "trained_on": list(self.trained_on), "heads": heads}
        path.write_text(json.dumps(document, indent=0) + "\n", encoding="utf-8")


class PriorScorer:
    """A prior and the embedding model it was fitted on, for one router's tiers: a task's text in, each tier's
    prior log-odds out. The embedding is the router's one expensive step (about 20 ms on one core)."""

    def __init__(self, prior: RoutePrior, embedder: Embedder, known_as: Mapping[str, str] | None = None) -> None:
        """`known_as`: a tier's model under the name the prior may know it by (podium's name -> the provider's)."""
        if embedder.name != prior.embedder:
            raise ValueError(
                f"the route prior was fitted on {prior.embedder} embeddings, not {embedder.name}: rebuild it "
                "(python -m benchmarks.routing_prior) or use that embedding model"
            )
        self.prior = prior
        self._embedder = embedder
        self._known_as = dict(known_as or {})

    def log_odds(self, text: str, tiers: Sequence[str]) -> dict[str, float]:
        vector = self._embedder.embed([text])[0].astype(np.float64)
        odds = self.prior.log_odds(vector, [self._known_as.get(tier, tier) for tier in tiers])
        return {tier: odds[self._known_as.get(tier, tier)] for tier in tiers}
