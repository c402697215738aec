"""`podium route eval`: any per-query file of the right shape, replayed as a live stream through the router."""

from __future__ import annotations

import csv
import random
from pathlib import Path

import pytest
from benchmarks.routing import load_mmlu
from typer.testing import CliRunner

from podium.cli import app
from podium.cost import Price
from podium.errors import InputDataError
from podium.models._route_eval import evaluate, load_queries

runner = CliRunner()


def write_queries(path: Path, n: int = 3000) -> Path:
    """Billing questions the weak model gets right, law questions it gets wrong; the strong one gets 90%."""
    rng = random.Random(1)
    with path.open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["question", "cheap_ok", "big_ok", "topic"])
        for i in range(n):
            law = rng.random() < 0.4
            text = f"question {i}: " + ("appeal under statute of limitations" if law else "refund for my invoice")
            writer.writerow([text, (not law) and rng.random() < 0.9, rng.random() < 0.9, "law" if law else "billing"])
    return path


def test_the_router_beats_random_and_never_the_oracle(tmp_path: Path) -> None:
    queries = load_queries(
        write_queries(tmp_path / "q.csv"),
        prompt="question",
        weak="cheap_ok",
        strong="big_ok",
        group="topic",
        exclude=None,
        weak_price=Price(1, 1),
        strong_price=Price(20, 20),
        output_tokens=5,
    )
    summary = evaluate(queries, seeds=2).summary()
    assert summary["apgr"] > 0.7 > summary["random_apgr"]  # type: ignore[operator]
    saved, random_saved, oracle_saved = (
        summary["cost_saved_at_95pct"],
        summary["random_cost_saved_at_95pct"],
        summary["oracle_cost_saved_at_95pct"],
    )
    assert random_saved < saved <= oracle_saved  # type: ignore[operator]


def test_on_real_mmlu_outcomes_it_recovers_more_of_the_gap_than_random() -> None:
    queries = load_mmlu()
    assert len(queries) == 14_037  # 14,042 less the 5 contaminated prompts
    summary = evaluate(queries[:6000], seeds=1, floor_shares=(0.9, 0.93, 0.96, 0.99)).summary()
    assert summary["apgr"] > 0.55 and summary["cost_saved_at_95pct"] > summary["random_cost_saved_at_95pct"]  # type: ignore[operator]


def test_cli_prints_the_table_and_writes_the_plot(tmp_path: Path) -> None:
    file, plot = write_queries(tmp_path / "q.csv", 300), tmp_path / "routing.svg"
    result = runner.invoke(
        app,
        ["route", "eval", str(file), "--prompt", "question", "--weak", "cheap_ok", "--strong", "big_ok",
         "--weak-price", "1/1", "--strong-price", "openai:gpt-4o", "--seeds", "1", "--plot", str(plot)],
        terminal_width=200,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "cost saved at 95%" in result.output and "APGR" in result.output and "oracle" in result.output
    svg = plot.read_text()
    assert svg.startswith("<svg") and "podium router" in svg and "<polyline" in svg


@pytest.mark.parametrize(
    ("rows", "options", "message"),
    [
        (
            [["question", "cheap_ok", "big_ok"], ["q", "True", "False"]],
            ["--weak", "nope"],
            "no column 'nope' for --weak",
        ),
        ([["question", "cheap_ok", "big_ok"], ["q", "maybe", "False"]], [], "line 2: column 'cheap_ok' holds 'maybe'"),
        ([["question", "cheap_ok", "big_ok"], ["q", "1", "0"]], ["--strong-price", "acme:nothing"], "genai-prices"),
        ([["question", "cheap_ok", "big_ok"]], [], "holds no queries"),
    ],
)
def test_bad_input_names_what_to_fix(tmp_path: Path, rows: list[list[str]], options: list[str], message: str) -> None:
    file = tmp_path / "q.csv"
    with file.open("w", newline="") as out:
        csv.writer(out).writerows(rows)
    args = ["route", "eval", str(file), "--prompt", "question", "--weak", "cheap_ok", "--strong", "big_ok", *options]
    result = runner.invoke(app, args, terminal_width=200)
    assert result.exit_code != 0
    error = result.output + str(result.exception or "")
    assert message in error


def test_a_missing_file_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputDataError, match="does not exist"):
        load_queries(
            tmp_path / "none.csv", prompt="p", weak="w", strong="s", group=None, exclude=None,
            weak_price=Price(), strong_price=Price(), output_tokens=1,
        )  # fmt: skip
