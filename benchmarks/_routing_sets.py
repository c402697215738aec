"""The shared per-query outcome sets the routing benchmark replays, each as `podium route eval` would read it.

Prices are the ones each set's SOURCE.md gives (USD per million tokens); where a set records what every query
cost, that column is used instead of a price at estimated tokens. Every model of a set takes part: the router
chooses among all of them, as it would among an organisation's declared tiers.
"""

from __future__ import annotations

import csv
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from podium.cost import Price
from podium.models import CostColumn
from podium.models._route_eval import Outcomes, load_queries

DATA = Path(__file__).parent / "data"
MMLU_WEAK, MMLU_STRONG = "mistralai/Mixtral-8x7B-Instruct-v0.1", "gpt-4-1106-preview"


@dataclass(frozen=True)
class OutcomeSet:
    name: str
    path: Path
    models: dict[str, Price | CostColumn]  # quality column -> its price, or the column of what each query cost
    group: str
    about: str
    output_tokens: int = 5
    exclude: Path | None = None
    scale: tuple[float, float] | None = field(default=None)
    clip_negative: bool = False  # a score below 0 (a metric's artefact) read as 0: podium takes no negative scores

    def load(self) -> Outcomes:
        if self.clip_negative:
            with tempfile.TemporaryDirectory() as folder:
                return self._load(_clipped(self.path, list(self.models), Path(folder) / self.path.name))
        return self._load(self.path)

    def _load(self, path: Path) -> Outcomes:
        return load_queries(
            path,
            prompt="prompt",
            models=list(self.models),
            prices=self.models,
            group=self.group,
            exclude=self.exclude,
            output_tokens=self.output_tokens,
            scale=self.scale,
        )


def _clipped(path: Path, columns: list[str], to: Path) -> Path:
    with path.open(newline="", encoding="utf-8") as source, to.open("w", newline="", encoding="utf-8") as target:
        reader = csv.DictReader(source)
        writer = csv.DictWriter(target, reader.fieldnames or [])
        writer.writeheader()
        for row in reader:
            writer.writerow(row | {c: str(max(0.0, float(row[c]))) for c in columns})
    return to


def _same(price: float) -> Price:
    return Price(price, price)


def _costed(*models: str) -> dict[str, Price | CostColumn]:
    return {f"{m}_score": CostColumn(f"{m}_cost_usd") for m in models}


MORE = DATA / "routing_more"
SETS = (
    OutcomeSet(
        "mmlu",
        DATA / "routellm" / "mmlu_responses.csv",
        {MMLU_WEAK: Price.listed(MMLU_WEAK, "together"), MMLU_STRONG: Price.listed(MMLU_STRONG, "openai")},
        "subject",
        "RouteLLM MMLU: Mixtral-8x7B vs GPT-4-1106, correct/incorrect, genai-prices list prices at prompt chars/4 "
        "input and 5 output tokens",
        exclude=DATA / "routellm" / "mmlu_contaminated_prompts.jsonl",
    ),
    OutcomeSet(
        "llmrouter",
        MORE / "llmrouter_ulab" / "llmrouter_ulab.csv",
        {
            "gemma-2-9b-it_score": _same(0.10),
            **{
                f"{m}_score": _same(0.20)
                for m in (
                    "qwen2.5-7b-instruct",
                    "codegemma-7b",
                    "llama-3.1-8b-instruct",
                    "llama3-chatqa-1.5-8b",
                    "mistral-7b-instruct-v0.3",
                )
            },
            **{
                f"{m}_score": _same(0.90)
                for m in ("llama-3.3-nemotron-super-49b-v1", "llama-3.1-nemotron-51b-instruct", "llama3-chatqa-1.5-70b")
            },
        },
        "benchmark",
        "LLMRouter: 9 open models on 11 task sets, scores in [0, 1], NVIDIA NIM list prices at prompt chars/4 input "
        "and 60 output tokens (the set records no tokens; 60 is about RouteProfile's median answer on the same tasks)",
        output_tokens=60,
    ),
    OutcomeSet(
        "routeprofile",
        MORE / "routeprofile_ulab" / "routeprofile_ulab.csv",
        _costed(
            "llama-3.2-3b-instruct",
            "qwen2.5-7b-instruct",
            "llama-3.1-8b-instruct",
            "gemma-2-9b-it",
            "mistral-small-24b-instruct-2501-bf16",
            "mixtral-8x7b-instruct-v0.1",
            "llama-3.3-70b-instruct",
            "mixtral-8x22b-instruct-v0.1",
        ),
        "benchmark",
        "RouteProfile: 8 open models on 10 task sets, scores in [0, 1], each query's recorded cost",
    ),
    OutcomeSet(
        "routerarena",
        MORE / "routerarena_cached" / "routerarena_cached.csv",
        _costed("gemini-2.0-flash-001", "claude-3-haiku-20240307"),
        "benchmark",
        "RouterArena: Gemini 2.0 Flash vs Claude 3 Haiku, scores in [0, 1], each query's recorded cost. The cheaper "
        "model is also the better one: nothing can be saved, and the test is that the router does not waste. "
        "One METEOR score of -0.033 (Haiku, NarrativeQA) is read as 0",
        clip_negative=True,
    ),
    OutcomeSet(
        "vicuna",
        MORE / "vicuna_bench_fastchat" / "vicuna_bench_fastchat.csv",
        {
            "llama-13b_score": _same(0.30),
            "alpaca-13b_score": _same(0.30),
            "vicuna-13b_score": _same(0.30),
            "gpt-3.5-turbo_score": _same(2.0),
        },
        "category",
        "Vicuna-bench: 78 open-ended prompts, GPT-4 judge scores on 1-10 (a few 0s), three self-hosted 13B models "
        "at an assumed $0.30 and gpt-3.5-turbo at its 2023 $2 per Mtok, 300 output tokens (Bard, with no API, left "
        "out). Tiny",
        output_tokens=300,
        scale=(0.0, 10.0),
    ),
)
