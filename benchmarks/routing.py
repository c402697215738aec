"""The cost router on RouteLLM's MMLU outcomes, replayed as a live stream.

    python -m benchmarks.routing [--seeds 5]

14,037 MMLU prompts (the contaminated ones excluded) with whether Mixtral-8x7B (weak) and GPT-4 (strong)
answered each correctly. Per seed the prompts arrive in a random order; the router decides each one before it
sees its outcome and learns only from what it routed plus its 5% shadow sample (paid for). Writes
benchmarks/results/routing.json, RESULTS.md and the plot docs/routing.svg.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from benchmarks._report import write_result
from podium.cost import Price
from podium.models._route_eval import Outcomes, evaluate, load_queries

DATA = Path(__file__).parent / "data" / "routellm"
WEAK, STRONG = "mistralai/Mixtral-8x7B-Instruct-v0.1", "gpt-4-1106-preview"
PLOT = Path(__file__).parent.parent / "docs" / "routing.svg"


def load_mmlu() -> Outcomes:
    """RouteLLM's MMLU outcomes, contaminated prompts excluded, at genai-prices list prices."""
    return load_queries(
        DATA / "mmlu_responses.csv",
        prompt="prompt",
        models=[WEAK, STRONG],
        prices={WEAK: Price.listed(WEAK, "together"), STRONG: Price.listed(STRONG, "openai")},
        group="subject",
        exclude=DATA / "mmlu_contaminated_prompts.jsonl",
        output_tokens=5,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    args = parser.parse_args()
    evaluation = evaluate(load_mmlu(), seeds=args.seeds)
    PLOT.write_text(evaluation.plot("MMLU: quality vs share of GPT-4 calls"), encoding="utf-8")
    s = evaluation.summary()

    def pct(key: str) -> str:
        return "not reached" if s[key] is None else f"{s[key]:.1%}"

    write_result(
        "routing",
        title="Cost routing on MMLU (RouteLLM outcomes), live-stream replay",
        method=(
            f"{s['queries']:,} prompts, {args.seeds} random arrival orders x {len(evaluation.floors)} quality floors. "
            "Cost = genai-prices list prices (GPT-4-1106 $10/$30, Mixtral-8x7B at Together $0.90/$0.90 per Mtok) at "
            "prompt chars/4 input tokens and 5 output tokens, shadow calls included. Target quality: 95% of "
            "always-GPT-4. Anchor: RouteLLM ~45% (measured in GPT-4 calls). Target: >= 55% cost saved. "
            "Plot: docs/routing.svg."
        ),
        columns=("router", "cost saved at 95%", "GPT-4 calls saved at 95%", "APGR"),
        rows=[
            (
                "podium (mean of seeds)",
                f"{pct('cost_saved_at_95pct')} (sd {s['cost_saved_at_95pct_sd'] or 0:.1%})",
                pct("strong_calls_saved_at_95pct"),
                f"{s['apgr']:.3f} (sd {s['apgr_sd'] or 0:.3f})",
            ),
            ("random", pct("random_cost_saved_at_95pct"), pct("random_strong_calls_saved_at_95pct"), "0.500"),
            ("oracle", pct("oracle_cost_saved_at_95pct"), pct("oracle_strong_calls_saved_at_95pct"), ""),
            ("always GPT-4", "0.0%", "0.0%", ""),
        ],
        data={
            "mmlu_cost_saved_at_95pct": _round(s["cost_saved_at_95pct"]),
            "mmlu_apgr": _round(s["apgr"]),
            "mmlu_strong_calls_saved_at_95pct": _round(s["strong_calls_saved_at_95pct"]),
            "mmlu_random_cost_saved_at_95pct": _round(s["random_cost_saved_at_95pct"]),
            "mmlu_oracle_cost_saved_at_95pct": _round(s["oracle_cost_saved_at_95pct"]),
            "floor_kept_share": _round(s["floor_kept_share"]),
            "queries": s["queries"],
            "seeds": args.seeds,
        },
    )


def _round(value: object) -> float | None:
    return None if value is None else round(float(value), 4)  # type: ignore[arg-type]


if __name__ == "__main__":
    main()
