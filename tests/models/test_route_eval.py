"""`podium route eval`: any per-query file of the right shape, replayed as a live stream through the router."""

from __future__ import annotations

import csv
import dataclasses
import random
from pathlib import Path

import pytest
from benchmarks.routing import load_mmlu
from typer.testing import CliRunner

from podium.cli import app
from podium.cost import Price
from podium.errors import InputDataError
from podium.models._route_eval import QUALITY_SHARE, CostColumn, Outcomes, evaluate, load_queries

runner = CliRunner()


def write_csv(path: Path, rows: list[list[object]]) -> Path:
    with path.open("w", newline="") as file:
        csv.writer(file).writerows(rows)
    return path


def write_queries(path: Path, n: int = 3000, *, as_numbers: bool = False) -> Path:
    """Billing questions the weak model gets right, law questions it gets wrong; the strong one gets 90%."""
    rng = random.Random(1)
    rows: list[list[object]] = [["question", "cheap_ok", "big_ok", "topic"]]
    for i in range(n):
        law = rng.random() < 0.4
        text = f"question {i}: " + ("appeal under statute of limitations" if law else "refund for my invoice")
        cheap, big = (not law) and rng.random() < 0.9, rng.random() < 0.9
        rows.append([text, *((float(cheap), float(big)) if as_numbers else (cheap, big)), "law" if law else "billing"])
    return write_csv(path, rows)


def write_scores(path: Path, n: int = 2000) -> Path:
    """A judge's 1-10 scores for three models, most expensive column first: the cheap model scores ~9 on billing
    and ~2 on law, the mid one ~7 on both, the big one ~9 on both."""
    rng = random.Random(2)

    def score(mean: float) -> int:
        return min(10, max(1, round(rng.gauss(mean, 1))))

    rows: list[list[object]] = [["question", "big", "cheap", "mid", "topic"]]
    for i in range(n):
        law = rng.random() < 0.4
        text = f"question {i}: " + ("appeal under statute of limitations" if law else "refund for my invoice")
        rows.append([text, score(9), score(2 if law else 9), score(7), "law" if law else "billing"])
    return write_csv(path, rows)


PRICES = {"cheap": Price(1, 1), "mid": Price(5, 5), "big": Price(20, 20)}
TWO = {"cheap_ok": Price(1, 1), "big_ok": Price(20, 20)}


def read(
    path: Path, prices: dict[str, Price], *, models: list[str] | None = None, group: str | None = "topic"
) -> Outcomes:
    return load_queries(
        path,
        prompt="question",
        models=models or list(prices),
        prices=prices,
        group=group,
        exclude=None,
        output_tokens=5,
    )


def test_the_router_beats_random_and_never_the_oracle(tmp_path: Path) -> None:
    outcomes = read(write_queries(tmp_path / "q.csv"), TWO)
    summary = evaluate(outcomes, seeds=2).summary()
    assert summary["apgr"] > 0.7 > summary["random_apgr"] == 0.5  # type: ignore[operator]
    saved, random_saved, oracle_saved = (
        summary["cost_saved_at_95pct"],
        summary["random_cost_saved_at_95pct"],
        summary["oracle_cost_saved_at_95pct"],
    )
    assert random_saved < saved <= oracle_saved  # type: ignore[operator]
    assert 0.0 <= summary["floor_kept_share"] <= 1.0  # type: ignore[operator]


def test_three_models_with_judge_scores_beat_the_best_random_mix(tmp_path: Path) -> None:
    outcomes = read(write_scores(tmp_path / "scores.csv"), PRICES, models=["big", "cheap", "mid"])
    assert outcomes.models == ("cheap", "mid", "big")  # cheapest over the file first, whatever the column order
    assert (outcomes.kind, outcomes.scale, outcomes.scale_source) == ("numeric", (1.0, 10.0), "observed")
    s = evaluate(outcomes, seeds=2).summary()
    assert s["reference"] == "big" and 8.5 < s["strong_quality"] < 9.1  # type: ignore[operator]  # the file's units
    assert s["target_quality"] == pytest.approx(QUALITY_SHARE * s["strong_quality"])  # type: ignore[operator]
    # the best random mix needs the mid and big models (~17% saved); the router sends billing to the cheap one
    assert s["cost_saved_at_95pct"] > s["random_cost_saved_at_95pct"] + 0.2  # type: ignore[operator]
    assert s["apgr"] > s["random_apgr"] + 0.1  # type: ignore[operator]
    # the oracle's best quality takes each query's best score (a 10 over a 9 at 20 times the price); at the target
    # it buys quality where it is cheapest, so no router saves more
    assert s["oracle_quality"] > s["strong_quality"] + 0.2  # type: ignore[operator]
    assert s["cost_saved_at_95pct"] < s["oracle_cost_saved_at_95pct"] < 1.0  # type: ignore[operator]
    shares = s["tier_shares"]
    assert isinstance(shares, dict) and sum(shares.values()) == pytest.approx(1.0) and shares["cheap"] > 0.4
    random_shares = s["random_tier_shares"]
    assert isinstance(random_shares, dict) and random_shares["cheap"] == 0.0  # the hull skips the cheap model
    assert 0.0 <= s["floor_kept_share"] <= 1.0  # type: ignore[operator]
    # told only "95% of big", measuring it: it keeps the share and still saves
    assert s["measured_quality_share"] >= QUALITY_SHARE and s["measured_cost_saved_at_95pct"] > 0.1  # type: ignore[operator]


def test_the_oracle_buys_the_cheapest_quality_first(tmp_path: Path) -> None:
    """Four queries, scores for a cheap model and one three times dearer: upgrading query b gains 4 points for 2
    units of cost, query a 1 point, c and d nothing (d's dear answer is worse). Worked by hand."""
    rows = [["question", "cheap", "dear"], ["a", 5, 6], ["b", 2, 6], ["c", 6, 6], ["d", 6, 3]]
    outcomes = read(write_csv(tmp_path / "q.csv", rows), {"cheap": Price(1e6, 0), "dear": Price(3e6, 0)}, group=None)
    evaluation = evaluate(outcomes, seeds=1, floor_shares=(QUALITY_SHARE,))
    unit = [q.costs[0] for q in outcomes.queries]  # a one-character prompt: one input token, the same for all
    cheapest = evaluation.oracle_at(19 / 4)  # what always-cheap already reaches: nothing to buy
    assert cheapest is not None and cheapest.cost_usd == pytest.approx(4 * unit[0])
    after_b = evaluation.oracle_at(23 / 4)  # b upgraded, and only b
    assert after_b is not None and after_b.cost_usd == pytest.approx(6 * unit[0])
    assert after_b.shares == pytest.approx((0.75, 0.25))
    half_a = evaluation.oracle_at(23.5 / 4)  # then half of a's upgrade
    assert half_a is not None and half_a.cost_usd == pytest.approx(7 * unit[0])
    assert evaluation.oracle_at(24.5 / 4) is None  # the best per query (6, 6, 6, 6) is 24 points


def test_numeric_zero_one_scores_give_what_booleans_give(tmp_path: Path) -> None:
    summaries = []
    for as_numbers in (False, True):
        outcomes = read(write_queries(tmp_path / f"q{as_numbers}.csv", 600, as_numbers=as_numbers), TWO)
        assert outcomes.kind == ("numeric" if as_numbers else "boolean")
        summaries.append(evaluate(outcomes, seeds=2, floor_shares=(0.9, 0.95, 1.0)).summary())
    boolean, numeric = ({k: v for k, v in s.items() if k not in ("quality_kind", "scale_source")} for s in summaries)
    assert boolean == numeric


def test_the_floor_is_kept_in_every_window_when_the_cheapest_model_already_keeps_it(tmp_path: Path) -> None:
    rng = random.Random(3)
    rows: list[list[object]] = [["question", "small", "large"]]
    rows += [[f"ticket {i}", 10 if rng.random() < 0.8 else 9, 10] for i in range(400)]
    outcomes = read(write_csv(tmp_path / "easy.csv", rows), {"small": Price(1, 1), "large": Price(10, 10)}, group=None)
    evaluation = evaluate(outcomes, seeds=2)
    assert evaluation.cheapest.quality >= evaluation.target_quality  # the premise
    assert evaluation.summary()["floor_kept_share"] == 1.0
    assert all(len(run[0].windows) == 20 for run in evaluation.router)


def test_a_window_of_hard_tasks_misses_the_floor_for_every_router_but_not_against_the_best_on_the_same_work(
    tmp_path: Path,
) -> None:
    """Two models that score alike on every task, four tasks in forty that both fail: whichever the router picks,
    its quality is the best model's, task by task. A two-task window that draws a failed task falls short of 95% of
    the whole file's mean, for the router and for the best model alone alike; against what the best model scored
    on that window's own tasks, the router never falls short."""
    rows: list[list[object]] = [["question", "small", "large"]]
    rows += [[f"ticket {i}", 1 if i % 10 == 0 else 10, 1 if i % 10 == 0 else 10] for i in range(40)]
    outcomes = read(write_csv(tmp_path / "hard.csv", rows), {"small": Price(1, 1), "large": Price(10, 10)}, group=None)
    evaluation = evaluate(outcomes, seeds=2)
    summary = evaluation.summary()
    alone = summary["reference_floor_kept_share"]
    assert alone == summary["floor_kept_share"]  # the router's windows are the best model's, score for score
    assert 0.8 <= alone < 1.0  # type: ignore[operator]  # a window holding one of the four failures misses
    assert summary["floor_kept_share_paired"] == 1.0
    assert [len(windows) for windows in evaluation.reference_windows] == [20, 20]
    # the router's windows are the reference's; against a reference 5% better every window still holds 95% of it,
    # against one 6% better none does
    for scale, kept in ((1.05, 1.0), (1.06, 0.0)):
        better = tuple(tuple(w * scale for w in windows) for windows in evaluation.reference_windows)
        assert dataclasses.replace(evaluation, reference_windows=better).summary()["floor_kept_share_paired"] == kept
    # so do the runs told "95% of large" that measure it: the same windows, the best model's quality to the point
    assert summary["measured_quality_share"] == 1.0
    assert (summary["measured_floor_kept_share"], summary["measured_floor_kept_share_paired"]) == (alone, 1.0)


def test_on_real_mmlu_outcomes_it_recovers_more_of_the_gap_than_random() -> None:
    outcomes = load_mmlu()
    assert len(outcomes.queries) == 14_037  # 14,042 less the 5 contaminated prompts
    first = dataclasses.replace(outcomes, queries=outcomes.queries[:6000])
    summary = evaluate(first, seeds=1, floor_shares=(0.9, 0.93, 0.96, 0.99)).summary()
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
    out = " ".join(result.output.split())  # as wrapped at the terminal's width
    assert "At 95% of the strong model's quality" in out and "cost saved" in out and "APGR" in out
    assert "oracle" in out and "always cheap_ok" in out and "Requests per model at 95%, podium: cheap_ok" in out
    svg = plot.read_text()
    assert svg.startswith("<svg") and "podium router" in svg and "share of queries sent to the strong model" in svg


def test_cli_over_three_models_with_scores(tmp_path: Path) -> None:
    file, plot = write_scores(tmp_path / "scores.csv", 400), tmp_path / "routing.svg"
    result = runner.invoke(
        app,
        ["route", "eval", str(file), "--prompt", "question", "--group", "topic", "--model", "cheap=1/1",
         "--model", "mid=5/5", "--model", "big=20/20", "--scale", "1:10", "--seeds", "1", "--plot", str(plot)],
        terminal_width=200,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    out = " ".join(result.output.split())  # as wrapped at the terminal's width
    assert "3 models" in out and "mapped from 1:10 to 0..1 (given with --scale)" in out
    assert "random mix" in out and "always cheap" in out and "always mid" in out and "always big" in out
    assert "Requests per model at 95%, podium: cheap " in out and "Requests per model at 95%, oracle:" in out
    assert "Floor kept in " in out
    assert "Told only '95% of big', measuring it as it goes" in out and "of its quality" in out
    svg = plot.read_text()
    assert "always one model: cheap, mid, big" in svg and "share of always-reference cost" in svg


@pytest.mark.parametrize(
    ("rows", "options", "message"),
    [
        ([["q", "maybe", "False"]], [], "line 2: column 'cheap_ok' holds 'maybe', neither a boolean nor a number"),
        ([["q", "7", "8"], ["r", "True", "9"]], [], "line 3: column 'cheap_ok' holds 'True', a boolean among numeric"),
        ([["q", "7", "-1"]], [], "column 'big_ok' holds '-1', a negative score"),
        ([["q", "True", "False"]], ["--model", "nope=1/1"], "no column 'nope' for a model"),
        ([["q", "1", "0"]], ["--strong-price", "acme:nothing"], "genai-prices"),
        ([["q", "7", "8"]], ["--scale", "a:b"], "--scale 'a:b' is not LOW:HIGH"),
        ([["q", "7", "8"]], ["--scale", "10:1"], "0 <= LOW < HIGH"),
        ([["q", "7", "8"]], ["--scale", "1:5"], "column 'cheap_ok' holds 7, off --scale 1:5"),
        ([["q", "True", "False"]], ["--scale", "0:1"], "leave --scale out"),
        ([["q", "1", "0"]], ["--model", "cheap_ok=1/1"], "named twice"),
        ([], [], "holds no queries"),
    ],
)
def test_bad_input_is_one_line_naming_the_fix(
    tmp_path: Path, rows: list[list[object]], options: list[str], message: str
) -> None:
    file = write_csv(tmp_path / "q.csv", [["question", "cheap_ok", "big_ok"], *rows])
    args = ["route", "eval", str(file), "--prompt", "question", "--weak", "cheap_ok", "--weak-price", "1/1",
            "--strong", "big_ok", "--strong-price", "20/20", *options]  # fmt: skip
    result = runner.invoke(app, args, terminal_width=200)
    assert result.exit_code == 2, result.output
    assert result.output.startswith("error: ") and result.output.count("\n") == 1, result.output
    assert message in result.output, result.output


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--model", "cheap_ok=1/1"], "compares at least two models, got 1: give --model COLUMN two or more times"),
        ([], "compares at least two models, got 0"),
        (["--model", "cheap_ok=1/1", "--strong-price", "1/1"], "--strong-price prices the --strong model"),
        (["--model", "=1/1", "--model", "big_ok=1/1"], "names no column"),
        (
            ["--model", "cheap_ok", "--model", "big_ok=1/1"],
            "genai-prices knows no model 'cheap_ok' (the column's name)",
        ),
        (["--model", "cheap_ok", "--model", "big_ok=1/1"], "--model 'cheap_ok=IN/OUT'"),
        (["--model", "cheap_ok=column:", "--model", "big_ok=1/1"], "column: names no cost column"),
        (["--model", "cheap_ok=column:usd", "--model", "big_ok=1/1"], "no column 'usd' for a model"),
        (["--model", "cheap_ok=column:question", "--model", "big_ok=1/1"], "cost column 'question' holds 'q'"),
        (["--model", "cheap_ok=column:big_ok", "--model", "big_ok=1/1"], "the best model, 'cheap_ok', costs nothing"),
    ],
)
def test_the_models_are_two_or_more_and_named(tmp_path: Path, options: list[str], message: str) -> None:
    file = write_csv(tmp_path / "q.csv", [["question", "cheap_ok", "big_ok"], ["q", "1", "0"]])
    result = runner.invoke(app, ["route", "eval", str(file), "--prompt", "question", *options], terminal_width=200)
    assert result.exit_code == 2 and result.output.count("\n") == 1 and message in result.output, result.output


def test_a_cost_column_is_what_each_query_cost(tmp_path: Path) -> None:
    rows = [["question", "cheap_ok", "cheap_usd", "big_ok", "big_usd"], ["q", "1", "0.001", "1", "0.5"]]
    rows += [["r", "0", "0.002", "1", "0.25"]]
    outcomes = read(
        write_csv(tmp_path / "q.csv", rows),
        {"cheap_ok": CostColumn("cheap_usd"), "big_ok": CostColumn("big_usd")},
        group=None,
    )
    assert [q.costs for q in outcomes.queries] == [(0.001, 0.5), (0.002, 0.25)]
    rows[2][2] = "-0.1"
    with pytest.raises(InputDataError, match=r"line 3: cost column 'cheap_usd' holds '-0.1', not an amount"):
        read(
            write_csv(tmp_path / "q.csv", rows),
            {"cheap_ok": CostColumn("cheap_usd"), "big_ok": Price(1, 1)},
            group=None,
        )


def test_a_missing_file_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputDataError, match="does not exist"):
        load_queries(
            tmp_path / "none.csv", prompt="p", models=["w", "s"], prices={"w": Price(), "s": Price()}, group=None,
            exclude=None, output_tokens=1,
        )  # fmt: skip


def test_cli_starts_the_router_from_the_prior_of_public_outcomes_and_says_which_models_it_knows(
    tmp_path: Path,
) -> None:
    pytest.importorskip("onnxruntime", reason="the embeddings extra is not installed: pip install 'podium[embeddings]'")
    rng = random.Random(3)
    rows: list[list[object]] = [["question", "mixtral-8x7b-instruct-v0.1", "our-model", "gpt-4-1106-preview"]]
    for i in range(60):
        hard = i % 2 == 0
        text = f"Question {i}: " + ("prove the theorem about group homomorphisms" if hard else "what is 2 + 2?")
        rows.append([text, not hard and rng.random() < 0.9, rng.random() < 0.5, rng.random() < 0.9])
    file = write_csv(tmp_path / "q.csv", rows)
    result = runner.invoke(
        app,
        ["route", "eval", str(file), "--prompt", "question", "--model", "mixtral-8x7b-instruct-v0.1=1/1",
         "--model", "our-model=2/2", "--model", "gpt-4-1106-preview=20/20", "--seeds", "1", "--prior"],
        terminal_width=200,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    out = " ".join(result.output.split())
    assert "The prior knows 2 of the 3 models; these start from its generic head: our-model" in out
    assert "cost saved" in out
