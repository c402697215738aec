"""Read per-query outcome data for `podium route eval`: one row per query, one quality column per model.

A quality column holds either correct/incorrect (True/False, 1/0, yes/no) or a numeric score (a judge's 1-10,
a percentage). The kind is decided per file, over every value of every model column, so that one stray value
cannot turn a column of scores into a column of booleans or back. Numeric scores reach the router mapped to
[0, 1] by a scale (given, or the observed min and max); every figure is reported in the file's own units.

Each model's cost per query is its price at an estimated token count (prompt characters / 4 in, a fixed number
of tokens out), or, where the file records what each query cost, that column (`CostColumn`). The models are put
in order of their cost over the file, cheapest first: the order the router escalates in.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from podium.cost import Price, usd
from podium.errors import InputDataError
from podium.models._router import Task

_TRUE, _FALSE = {"true", "1", "yes", "y", "t"}, {"false", "0", "no", "n", "f"}
_PRICE_FIX = (
    "state its price: --model '{column}=IN/OUT' (USD per million input/output tokens, e.g. 0.9/0.9) or "
    "--model '{column}=provider:model' (e.g. openai:gpt-4o); with --weak/--strong, --weak-price/--strong-price"
)


@dataclass(frozen=True)
class CostColumn:
    """A model's cost per query as the file records it: a column of USD amounts (what the calls really cost)."""

    name: str


@dataclass(frozen=True)
class Query:
    """One query: what the router sees, and per model (in `Outcomes.models` order) its quality and cost."""

    task: Task
    scores: tuple[float, ...]  # in the file's units: 0/1 for correct/incorrect, else the score as written
    costs: tuple[float, ...]  # USD


@dataclass(frozen=True)
class Outcomes:
    """A file's queries and how to read their scores."""

    models: tuple[str, ...]  # cheapest over the file first
    queries: list[Query]
    kind: Literal["boolean", "numeric"]
    scale: tuple[float, float]  # the scores mapped to 0 and 1 for the router
    scale_source: Literal["boolean", "--scale", "observed"]

    def unit(self, score: float) -> float:
        """A score as the router learns it: a share of the scale, in [0, 1] (all of it when every score is equal)."""
        low, high = self.scale
        return (score - low) / (high - low) if high > low else 1.0


def load_queries(
    path: Path,
    *,
    prompt: str,
    models: Sequence[str],
    prices: Mapping[str, Price | CostColumn],
    group: str | None,
    exclude: Path | None,
    output_tokens: int,
    scale: tuple[float, float] | None = None,
) -> Outcomes:
    """Read the per-query file. A model's cost is its price in `prices` at the estimated tokens, or the column
    `prices` names for it; a model without either is looked up in genai-prices by its column name. Everything
    wrong with the input (a missing column, an unknown price, a quality value that is neither a boolean nor a
    number, a score off `scale`, a cost that is not an amount) is an InputDataError naming the fix, raised before
    any work."""
    if len(models) < 2:
        raise InputDataError(
            f"route eval compares at least two models, got {len(models)}: give --model COLUMN two or more times "
            "(or --weak COLUMN and --strong COLUMN)."
        )
    if twice := sorted({m for m in models if list(models).count(m) > 1}):
        raise InputDataError(f"model column {twice[0]!r} is named twice; name each model column once.")
    if scale is not None:
        check_scale(scale)
    excluded = _excluded_prompts(exclude) if exclude else set()
    try:
        with path.open(newline="", encoding="utf-8") as file:
            reader = csv.DictReader(file)
            columns = reader.fieldnames or []
            for role, column in (("--prompt", prompt), ("--group", group)):
                if column is not None and column not in columns:
                    raise InputDataError(
                        f"{path}: no column {column!r} for {role} (columns: {', '.join(columns)}). "
                        f"Name the column with {role} COLUMN."
                    )
            costed = [c.name for c in prices.values() if isinstance(c, CostColumn)]
            if missing := [m for m in [*models, *costed] if m not in columns]:
                raise InputDataError(
                    f"{path}: no column {', '.join(map(repr, missing))} for a model (columns: {', '.join(columns)}). "
                    "Name each model's quality column with --model COLUMN (or --weak/--strong COLUMN), and its cost "
                    "column, if any, with --model 'COLUMN=column:COST_COLUMN'."
                )
            listed = {m: prices[m] if m in prices else listed_price(m) for m in models}
            rows = [(line, row) for line, row in enumerate(reader, start=2) if row[prompt] not in excluded]
    except FileNotFoundError:
        raise InputDataError(f"{path} does not exist. Give the path of a CSV file with one row per query.") from None
    except (OSError, UnicodeDecodeError, csv.Error) as exc:  # a folder, no permission, not text, a 128 KB field
        why = exc.strerror if isinstance(exc, OSError) else str(exc)
        raise InputDataError(f"cannot read {path} as CSV ({why}). Give a UTF-8 CSV file, one row per query.") from None
    if not rows:
        raise InputDataError(f"{path} holds no queries (after exclusions); the evaluation needs at least one.")
    kind, scores = _scores(path, rows, models)
    if kind == "boolean" and scale is not None:
        raise InputDataError(f"--scale is for numeric scores, and {path}'s are correct/incorrect: leave --scale out.")
    if scale is not None:
        _check_on_scale(path, rows, models, scores, scale)
    low, high = (0.0, 1.0) if kind == "boolean" else scale or _observed(scores)
    queries = []
    for (line, row), row_scores in zip(rows, scores, strict=True):
        text = row[prompt] or ""  # a short row has no value there
        tokens_in = max(1, len(text) // 4)
        costs = tuple(_cost(path, line, row, listed[m], tokens_in, output_tokens) for m in models)
        queries.append(Query(Task(text, (row[group] or "") if group else ""), row_scores, costs))
    _check_something_to_save(models, queries)
    order = sorted(range(len(models)), key=lambda i: sum(q.costs[i] for q in queries))  # stable: ties keep order
    return Outcomes(
        tuple(models[i] for i in order),
        [Query(q.task, tuple(q.scores[i] for i in order), tuple(q.costs[i] for i in order)) for q in queries],
        kind,
        (low, high),
        "boolean" if kind == "boolean" else "--scale" if scale else "observed",
    )


def _check_something_to_save(models: Sequence[str], queries: list[Query]) -> None:
    """Cost saved is measured against the best model: it must cost something."""
    best = max(range(len(models)), key=lambda i: sum(q.scores[i] for q in queries))
    if sum(q.costs[best] for q in queries) <= 0:
        raise InputDataError(
            f"the best model, {models[best]!r}, costs nothing over the file, so there is nothing to save: give its "
            "price (--model 'COLUMN=IN/OUT') or a cost column with what its queries cost."
        )


def _cost(
    path: Path, line: int, row: dict[str, str], price: Price | CostColumn, tokens_in: int, output_tokens: int
) -> float:
    if isinstance(price, Price):
        return usd(price.cost_nano_usd(tokens_in, output_tokens, 0.0))
    value = row[price.name] or ""
    cost = _number(value)
    if cost is None or cost < 0:
        raise InputDataError(
            f"{path}, line {line}: cost column {price.name!r} holds {value!r}, not an amount. Give every query's "
            "cost in USD as a number >= 0 (e.g. 0.00012), or price the model instead: --model 'COLUMN=IN/OUT'."
        )
    return cost


def listed_price(column: str) -> Price:
    """The list price of the model a column is named after, at the provider genai-prices finds for it."""
    from genai_prices import Usage, calc_price  # its price data takes a while to load: only when asked

    try:
        provider = calc_price(Usage(input_tokens=1, output_tokens=1), column).provider.id
    except LookupError:
        raise InputDataError(
            f"genai-prices knows no model {column!r} (the column's name); " + _PRICE_FIX.format(column=column) + "."
        ) from None
    return Price.listed(column, provider)


def check_scale(scale: tuple[float, float]) -> None:
    low, high = scale
    if not (math.isfinite(low) and math.isfinite(high) and 0 <= low < high):
        raise InputDataError(
            f"--scale {low:g}:{high:g} is not a scale: give LOW:HIGH with 0 <= LOW < HIGH (e.g. --scale 1:10), the "
            "worst and best scores the quality columns can hold."
        )


def _scores(path: Path, rows: list[tuple[int, dict[str, str]]], models: Sequence[str]) -> tuple[
    Literal["boolean", "numeric"], list[tuple[float, ...]]
]:  # fmt: skip
    """Every model column as booleans if every value is one, else as numbers if every value is one."""
    cells = [(line, m, row[m] or "") for line, row in rows for m in models]
    if all(_boolean(v) is not None for _, _, v in cells):
        return "boolean", [tuple(1.0 if _boolean(row[m] or "") else 0.0 for m in models) for _, row in rows]
    for line, column, value in cells:
        number = _number(value)
        if number is None or number < 0:
            if _boolean(value) is not None:
                what = "a boolean among numeric scores"
            elif number is not None:
                what = "a negative score (quality is compared as a share of the best model's, so 0 must be the worst)"
            else:
                what = "neither a boolean nor a number"
            raise InputDataError(
                f"{path}, line {line}: column {column!r} holds {value!r}, {what}. Give every quality value as "
                "True/False (or 1/0, yes/no), or every one as a score >= 0 (e.g. a judge's 1-10)."
            )
    return "numeric", [tuple(float(row[m] or "") for m in models) for _, row in rows]


def _check_on_scale(
    path: Path,
    rows: list[tuple[int, dict[str, str]]],
    models: Sequence[str],
    scores: list[tuple[float, ...]],
    scale: tuple[float, float],
) -> None:
    for (line, _), row_scores in zip(rows, scores, strict=True):
        for column, score in zip(models, row_scores, strict=True):
            if not scale[0] <= score <= scale[1]:
                raise InputDataError(
                    f"{path}, line {line}: column {column!r} holds {score:g}, off --scale {scale[0]:g}:{scale[1]:g}. "
                    "Give the scale the scores are on, or leave --scale out to use the observed range."
                )


def _observed(scores: list[tuple[float, ...]]) -> tuple[float, float]:
    return min(min(s) for s in scores), max(max(s) for s in scores)


def _boolean(value: str) -> bool | None:
    text = value.strip().lower()
    return True if text in _TRUE else False if text in _FALSE else None


def _number(value: str) -> float | None:
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def _excluded_prompts(path: Path) -> set[str]:
    """Prompts to leave out: a JSON-lines file whose rows name the prompt in `eval_prompt` or `prompt`."""
    try:
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    except (OSError, ValueError) as exc:  # unreadable, not UTF-8, not JSON
        raise InputDataError(f"{path}: cannot read the exclusion list ({exc}); give a JSON-lines file.") from None
    if not all(isinstance(row, dict) for row in rows):
        raise InputDataError(f"{path}: every line of the exclusion list must be a JSON object with a prompt.")
    return {str(row.get("eval_prompt", row.get("prompt", ""))) for row in rows}
