"""The cost router on every shared per-query outcome set, each replayed as a live stream.

    python -m benchmarks.routing [--seeds 5] [--sets mmlu,llmrouter,...]

Per seed the prompts arrive in a random order; the router decides each one before it sees its outcome and learns
only from what it routed plus its 5% shadow sample (paid for), at 25 quality floors. Reported per set: cost saved
at 95% of the best model's quality against always-that-model, with the best random mix and the oracle; APGR; how
often the floor held over the stream (20 windows of the runs at the 95% floor). Also the router's own cost per
decision on one core. Writes benchmarks/results/routing.json, RESULTS.md and the MMLU plot docs/routing.svg.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

from benchmarks._report import write_result
from benchmarks._routing_sets import SETS, OutcomeSet
from podium.models import MiniLM, Router, RouteTier
from podium.models._route_eval import FLOOR_SHARES, Evaluation, Outcomes, evaluate

PLOT = Path(__file__).parent.parent / "docs" / "routing.svg"


def load_mmlu() -> Outcomes:
    """RouteLLM's MMLU outcomes, contaminated prompts excluded, at genai-prices list prices."""
    return SETS[0].load()


def decision_ms(outcomes: Outcomes, decisions: int = 3000) -> list[float]:
    """Wall time of `Router.decide` per task, on one core, with the router learning as it goes (its state grows)."""
    queries = outcomes.queries[:decisions]
    router = Router([RouteTier(m, c) for m, c in zip(outcomes.models, queries[0].costs, strict=True)], floor=0.9)
    times = []
    for query in queries:
        start = time.perf_counter()
        decision = router.decide(query.task, costs=dict(zip(outcomes.models, query.costs, strict=True)))
        times.append((time.perf_counter() - start) * 1000)
        router.learn(query.task, decision.tier, outcomes.unit(query.scores[outcomes.models.index(decision.tier)]))
    return times


def embedding_ms(outcomes: Outcomes, texts: int = 300) -> list[float]:
    """Wall time of one sentence embedding per prompt (all-MiniLM-L6-v2 int8, one thread, no cache)."""
    model = MiniLM(cache_size=0)
    model.embed(["warm up"])
    times = []
    for query in outcomes.queries[:texts]:
        start = time.perf_counter()
        model.embed([query.task.text])
        times.append((time.perf_counter() - start) * 1000)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--sets", default=",".join(s.name for s in SETS), help="comma-separated set names")
    args = parser.parse_args()
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core: the decision times are per core
    chosen = [s for s in SETS if s.name in args.sets.split(",")]
    results: dict[str, Evaluation] = {}
    for outcome_set in chosen:
        print(f"{outcome_set.name}: replaying…", flush=True)
        results[outcome_set.name] = evaluate(outcome_set.load(), seeds=args.seeds)
    if "mmlu" in results:
        PLOT.write_text(results["mmlu"].plot("MMLU: quality vs share of GPT-4 calls"), encoding="utf-8")
    mmlu = load_mmlu()
    decisions, embeddings = sorted(decision_ms(mmlu)), sorted(embedding_ms(mmlu))
    windows = [kept for e in results.values() for kept in e.floor_kept()]
    write_result(
        "routing",
        title="Cost routing on the shared outcome sets, live-stream replay",
        method=_method(chosen, args.seeds, decisions, embeddings),
        columns=("set", "queries x models", "podium saved at 95%", "random", "oracle", "APGR", "floor kept"),
        rows=[_row(s, results[s.name]) for s in chosen],
        data=_data(results, args.seeds, decisions, embeddings, windows),
    )


def _row(outcome_set: OutcomeSet, e: Evaluation) -> tuple[str, ...]:
    s = e.summary()
    return (
        outcome_set.name,
        f"{s['queries']:,} x {len(e.models)}",
        _pct(s["cost_saved_at_95pct"])
        + ("" if s["cost_saved_at_95pct_sd"] is None else f" (sd {s['cost_saved_at_95pct_sd']:.1%})"),
        _pct(s["random_cost_saved_at_95pct"]),
        _pct(s["oracle_cost_saved_at_95pct"]),
        "n/a" if s["apgr"] is None else f"{s['apgr']:.3f} (random {s['random_apgr']:.3f})",
        _pct(s["floor_kept_share"]),
    )


def _method(chosen: list[OutcomeSet], seeds: int, decisions: list[float], embeddings: list[float]) -> str:
    sets = "; ".join(f"**{s.name}**: {s.about}" for s in chosen)
    return (
        f"{seeds} random arrival orders x {len(FLOOR_SHARES)} quality floors per set, shadow calls (5%) paid for. "
        "Target quality: 95% of the best model's mean on the set; cost saved against always-that-model. Random: the "
        "best random mix of the set's models; oracle: the cheapest per-query choice that reaches the target knowing "
        "every outcome. Floor kept: the share of 20 consecutive windows of the runs at the 95% floor whose quality "
        "met it; the router is told the window (routing.floor_window) and aims above the floor by 1.645 standard "
        "errors of a window's quality. "
        f"Sets: {sets}. No prior and no embeddings yet: every set is learnt from its own stream alone, so every set "
        "is held out. The router's own cost per decision (hashed words, one core): p50 "
        f"{_p(decisions, 50):.3f} ms, p99 {_p(decisions, 99):.3f} ms; a sentence embedding of an MMLU prompt "
        f"(all-MiniLM-L6-v2 int8, one thread), which the router does not use yet: p50 {_p(embeddings, 50):.1f} ms, "
        f"p99 {_p(embeddings, 99):.1f} ms. Targets (issue 17): MMLU >= 55% saved; floor kept in >= 95% of windows."
    )


def _data(
    results: dict[str, Evaluation], seeds: int, decisions: list[float], embeddings: list[float], windows: list[bool]
) -> dict[str, object]:
    data: dict[str, object] = {}
    for name, evaluation in results.items():
        s = evaluation.summary()
        data |= {
            f"{name}_cost_saved_at_95pct": _round(s["cost_saved_at_95pct"]),
            f"{name}_cost_saved_at_95pct_sd": _round(s["cost_saved_at_95pct_sd"]),
            f"{name}_random_cost_saved_at_95pct": _round(s["random_cost_saved_at_95pct"]),
            f"{name}_oracle_cost_saved_at_95pct": _round(s["oracle_cost_saved_at_95pct"]),
            f"{name}_apgr": _round(s["apgr"]),
            f"{name}_floor_kept_share": _round(s["floor_kept_share"]),
            f"{name}_queries": s["queries"],
            f"{name}_models": len(evaluation.models),
        }
        if name == "mmlu":
            data["mmlu_strong_calls_saved_at_95pct"] = _round(s["strong_calls_saved_at_95pct"])
    return data | {
        "floor_kept_share": _round(statistics.fmean(windows)) if windows else None,
        "decision_ms_p50": round(_p(decisions, 50), 4),
        "decision_ms_p99": round(_p(decisions, 99), 4),
        "embedding_ms_p50": round(_p(embeddings, 50), 2),
        "embedding_ms_p99": round(_p(embeddings, 99), 2),
        "seeds": seeds,
    }


def _p(ordered: list[float], percent: int) -> float:
    return ordered[min(len(ordered) - 1, len(ordered) * percent // 100)]


def _pct(value: object) -> str:
    return "not reached" if value is None else f"{float(value):.1%}"  # type: ignore[arg-type]


def _round(value: object) -> float | None:
    return None if value is None else round(float(value), 4)  # type: ignore[arg-type]


if __name__ == "__main__":
    main()
