"""Evaluate the router on per-query outcome data, the way it would run in production.

The input is any CSV with one row per query: the prompt, whether the weak model answered it correctly, and
whether the strong model did (optionally a group column, such as the subject). For each seed the queries arrive
in a random order; for each quality floor the router decides every query before it sees any outcome of it, and
learns only from the outcome of the model it chose and from its shadow sample. Shadow calls are paid for.

Costs are list prices from genai-prices at an estimated token count (prompt characters / 4 in, a fixed number of
tokens out); the share of strong calls (RouteLLM's cost measure) is reported beside it.
"""

from __future__ import annotations

import csv
import itertools
import json
import random
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from podium._charts import Series, line_chart
from podium.cost import Price, usd
from podium.errors import InputDataError
from podium.models._router import Router, RouteTier, Task

_TRUE, _FALSE = {"true", "1", "yes", "y", "t"}, {"false", "0", "no", "n", "f"}
QUALITY_SHARE = 0.95
# Quality floors to sweep, as shares of the strong model's accuracy on the file (what an operator would read off
# a benchmark); each run is given its floor up front and steers towards it on its own.
FLOOR_SHARES = tuple(round(0.88 + 0.01 * i, 2) for i in range(17))


@dataclass(frozen=True)
class Query:
    task: Task
    weak_correct: bool
    strong_correct: bool
    weak_usd: float
    strong_usd: float


@dataclass(frozen=True)
class Point:
    """One operating point: a router run at one floor, or a baseline."""

    quality: float
    strong_share: float
    cost_usd: float


@dataclass(frozen=True)
class Evaluation:
    queries: int
    seeds: int
    always_weak: Point
    always_strong: Point
    oracle: Point
    router: list[list[Point]]  # per seed, per floor
    floors: tuple[float, ...]

    @property
    def target_quality(self) -> float:
        return QUALITY_SHARE * self.always_strong.quality

    def random_at(self, strong_share: float) -> Point:
        weak, strong = self.always_weak, self.always_strong
        return Point(
            weak.quality + strong_share * (strong.quality - weak.quality),
            strong_share,
            weak.cost_usd + strong_share * (strong.cost_usd - weak.cost_usd),
        )

    def at_target(self, points: Sequence[Point]) -> Point | None:
        """The cheapest point reaching the target quality, interpolating between neighbouring points."""
        frontier = sorted(points, key=lambda p: p.cost_usd)
        target = self.target_quality
        for low, high in itertools.pairwise(frontier):
            if low.quality < target <= high.quality:
                t = (target - low.quality) / (high.quality - low.quality)
                return Point(
                    target,
                    low.strong_share + t * (high.strong_share - low.strong_share),
                    low.cost_usd + t * (high.cost_usd - low.cost_usd),
                )
        reaching = [p for p in frontier if p.quality >= target]
        return reaching[0] if reaching else None

    def cost_saved(self, point: Point | None) -> float | None:
        return None if point is None else 1 - point.cost_usd / self.always_strong.cost_usd

    def apgr(self, points: Sequence[Point]) -> float:
        """Area under the performance-gap-recovered curve over the share of strong calls (RouteLLM's APGR).

        The curve runs from always-weak (0, 0) to always-strong (1, 1) through the router's points.
        """
        gap = self.always_strong.quality - self.always_weak.quality
        curve = [(0.0, 0.0), *sorted((p.strong_share, (p.quality - self.always_weak.quality) / gap) for p in points)]
        curve.append((1.0, 1.0))
        return sum((x2 - x1) * (y1 + y2) / 2 for (x1, y1), (x2, y2) in itertools.pairwise(curve))

    def summary(self) -> dict[str, object]:
        """Figures over seeds (mean and spread), for the CLI table and the benchmark JSON."""
        saved = [self.cost_saved(self.at_target(points)) for points in self.router]
        calls = [None if (p := self.at_target(points)) is None else 1 - p.strong_share for points in self.router]
        apgrs = [self.apgr(points) for points in self.router]
        random_point = self.random_at(
            (self.target_quality - self.always_weak.quality) / (self.always_strong.quality - self.always_weak.quality)
        )
        oracle_target = self.at_target([self.always_weak, self.oracle])
        return {
            "queries": self.queries,
            "seeds": self.seeds,
            "target_quality": self.target_quality,
            "weak_quality": self.always_weak.quality,
            "strong_quality": self.always_strong.quality,
            "cost_saved_at_95pct": _mean(saved),
            "cost_saved_at_95pct_sd": _sd(saved),
            "strong_calls_saved_at_95pct": _mean(calls),
            "apgr": _mean(apgrs),
            "apgr_sd": _sd(apgrs),
            "random_cost_saved_at_95pct": self.cost_saved(random_point),
            "random_strong_calls_saved_at_95pct": 1 - random_point.strong_share,
            "random_apgr": 0.5,
            "oracle_cost_saved_at_95pct": self.cost_saved(oracle_target),
            "oracle_strong_calls_saved_at_95pct": None if oracle_target is None else 1 - oracle_target.strong_share,
            "oracle_quality": self.oracle.quality,
        }

    def mean_curve(self) -> list[tuple[float, float]]:
        """(share of strong calls, quality) per floor, averaged over seeds."""
        return sorted(
            (
                statistics.fmean(run[i].strong_share for run in self.router),
                statistics.fmean(run[i].quality for run in self.router),
            )
            for i in range(len(self.floors))
        )

    def plot(self, title: str) -> str:
        weak, strong = self.always_weak, self.always_strong
        return line_chart(
            title,
            "share of queries sent to the strong model",
            "quality (share answered correctly)",
            [
                Series(f"podium router (mean of {self.seeds} seeds)", self.mean_curve()),
                Series("random", [(0.0, weak.quality), (1.0, strong.quality)]),
                Series("95% of always-strong", [(0.0, self.target_quality), (1.0, self.target_quality)], dashed=True),
                Series("always weak / always strong", [(0.0, weak.quality), (1.0, strong.quality)], markers_only=True),
                Series("oracle", [(self.oracle.strong_share, self.oracle.quality)], markers_only=True),
            ],
            x_range=(0.0, 1.0),
            y_range=(round(weak.quality - 0.05, 1), min(1.0, round(self.oracle.quality + 0.05, 1))),
        )


def load_queries(
    path: Path,
    *,
    prompt: str,
    weak: str,
    strong: str,
    group: str | None,
    exclude: Path | None,
    weak_price: Price,
    strong_price: Price,
    output_tokens: int,
) -> list[Query]:
    """Read the per-query file; a missing column or a value that is not a boolean is an InputDataError."""
    excluded = _excluded_prompts(exclude) if exclude else set()
    try:
        with path.open(newline="", encoding="utf-8") as file:
            reader = csv.DictReader(file)
            columns = reader.fieldnames or []
            for role, column in (("prompt", prompt), ("weak", weak), ("strong", strong), ("group", group)):
                if column is not None and column not in columns:
                    raise InputDataError(
                        f"{path}: no column {column!r} for --{role} (columns: {', '.join(columns)}). "
                        f"Name the column with --{role} COLUMN."
                    )
            queries = []
            for line, row in enumerate(reader, start=2):
                if row[prompt] in excluded:
                    continue
                tokens_in = max(1, len(row[prompt]) // 4)
                queries.append(
                    Query(
                        Task(row[prompt], row[group] if group else ""),
                        _boolean(row[weak], path, line, weak),
                        _boolean(row[strong], path, line, strong),
                        usd(weak_price.cost_nano_usd(tokens_in, output_tokens, 0.0)),
                        usd(strong_price.cost_nano_usd(tokens_in, output_tokens, 0.0)),
                    )
                )
    except FileNotFoundError:
        raise InputDataError(f"{path} does not exist. Give the path of a CSV file with one row per query.") from None
    except (OSError, UnicodeDecodeError, csv.Error) as exc:  # a folder, no permission, not text, a 128 KB field
        why = exc.strerror if isinstance(exc, OSError) else str(exc)
        raise InputDataError(f"cannot read {path} as CSV ({why}). Give a UTF-8 CSV file, one row per query.") from None
    if not queries:
        raise InputDataError(f"{path} holds no queries (after exclusions); the evaluation needs at least one.")
    return queries


def evaluate(
    queries: Sequence[Query],
    *,
    seeds: int = 5,
    floor_shares: tuple[float, ...] = FLOOR_SHARES,
    shadow_rate: float = 0.05,
    progress: Callable[[], None] = lambda: None,
) -> Evaluation:
    n = len(queries)
    always_weak = Point(sum(q.weak_correct for q in queries) / n, 0.0, sum(q.weak_usd for q in queries))
    always_strong = Point(sum(q.strong_correct for q in queries) / n, 1.0, sum(q.strong_usd for q in queries))
    oracle_strong = [q for q in queries if q.strong_correct and not q.weak_correct]
    oracle = Point(
        sum(q.weak_correct or q.strong_correct for q in queries) / n,
        len(oracle_strong) / n,
        always_weak.cost_usd + sum(q.strong_usd - q.weak_usd for q in oracle_strong),
    )
    floors = tuple(share * always_strong.quality for share in floor_shares)
    router = []
    for seed in range(seeds):
        order = list(queries)
        random.Random(seed).shuffle(order)
        points = []
        for floor in floors:
            points.append(_stream(order, floor, shadow_rate, seed))
            progress()
        router.append(points)
    return Evaluation(n, seeds, always_weak, always_strong, oracle, router, floors)


def _stream(queries: Sequence[Query], floor: float, shadow_rate: float, seed: int) -> Point:
    """One deployment: decide, pay, observe the chosen (and shadow) outcome, learn; nothing seen in advance."""
    first = queries[0]
    router = Router(
        [RouteTier("weak", first.weak_usd), RouteTier("strong", first.strong_usd)],
        floor=floor,
        shadow_rate=shadow_rate,
        seed=seed,
    )
    correct, strong_calls, cost = 0, 0, 0.0
    for query in queries:
        decision = router.decide(query.task, costs={"weak": query.weak_usd, "strong": query.strong_usd})
        for tier in (decision.tier, decision.shadow) if decision.shadow else (decision.tier,):
            success = query.strong_correct if tier == "strong" else query.weak_correct
            cost += query.strong_usd if tier == "strong" else query.weak_usd
            router.learn(query.task, tier, success, shadow=tier != decision.tier)
        correct += query.strong_correct if decision.tier == "strong" else query.weak_correct
        strong_calls += decision.tier == "strong"
    return Point(correct / len(queries), strong_calls / len(queries), cost)


def _boolean(value: str, path: Path, line: int, column: str) -> bool:
    text = value.strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise InputDataError(
        f"{path}, line {line}: column {column!r} holds {value!r}, not a boolean. Use True/False (or 1/0, yes/no)."
    )


def _excluded_prompts(path: Path) -> set[str]:
    """Prompts to leave out: a JSON-lines file whose rows name the prompt in `eval_prompt` or `prompt`."""
    try:
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    except (OSError, ValueError) as exc:  # unreadable, not UTF-8, not JSON
        raise InputDataError(f"{path}: cannot read the exclusion list ({exc}); give a JSON-lines file.") from None
    if not all(isinstance(row, dict) for row in rows):
        raise InputDataError(f"{path}: every line of the exclusion list must be a JSON object with a prompt.")
    return {str(row.get("eval_prompt", row.get("prompt", ""))) for row in rows}


def _mean(values: Sequence[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return statistics.fmean(known) if len(known) == len(values) else None


def _sd(values: Sequence[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return statistics.stdev(known) if len(known) == len(values) and len(known) > 1 else None
