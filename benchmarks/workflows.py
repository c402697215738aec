"""Governed 3-step workflows per second against bare DBOS workflows of the same shape, same database.

    python -m benchmarks.workflows [--runs 300] [--rounds 9]

Each step of the governed workflow is a tool call through the governor (admission read, Cedar decision, the call,
a ledger row and a Merkle audit entry); each step of the bare workflow calls the same function directly.
Both run in one process on one database, in alternating rounds so that machine noise hits both alike; the
ratio reported is the median of the rounds' ratios. Writes benchmarks/results/workflows.json and updates RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from dbos import DBOS

import podium
from benchmarks._report import write_result
from podium.testing import temporary_postgres_database

POSTGRES_URL = os.environ.get("PODIUM_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def bump(x: int) -> int:
    """The work each step does: trivial, so the benchmark measures the orchestration."""
    return x + 1


agent = podium.Agent("bench", owner="perf@example.com", models=[], tools=[bump])


@DBOS.step(name="bench.bare_step")
def bare_step(x: int) -> int:
    return bump(x)


@DBOS.workflow(name="bench.bare")
def bare(x: int) -> int:
    return bare_step(bare_step(bare_step(x)))


@podium.step(name="bench.governed_step")
def governed_step(x: int) -> int:
    return int(agent.call_tool("bump", x=x))


@podium.workflow(name="bench.governed")
def governed(x: int) -> int:
    return governed_step(governed_step(governed_step(x)))


def throughput(start: Callable[[int], object], runs: int) -> float:
    started = time.perf_counter()
    handles = [start(i) for i in range(runs)]
    for handle in handles:
        handle.get_result()  # type: ignore[attr-defined]
    return runs / (time.perf_counter() - started)


def measure(settings: podium.Settings, runs: int, rounds: int) -> dict[str, float]:
    """Alternate bare and governed rounds; the ratio is the median of each round pair's ratio, so a slow spell of
    the machine (they last minutes here) weighs on both sides of a pair alike."""
    bare_rates: list[float] = []
    governed_rates: list[float] = []
    with podium.launch(settings, podium.App(agents=[agent], tools=[bump])):
        throughput(lambda i: DBOS.start_workflow(bare, i), 20)  # warm up both paths
        throughput(lambda i: DBOS.start_workflow(governed._registered, i), 20)
        for _ in range(rounds):
            bare_rates.append(throughput(lambda i: DBOS.start_workflow(bare, i), runs))
            governed_rates.append(throughput(lambda i: DBOS.start_workflow(governed._registered, i), runs))
    ratios = [g / b for g, b in zip(governed_rates, bare_rates, strict=True)]
    return {
        "bare_per_s": statistics.median(bare_rates),
        "governed_per_s": statistics.median(governed_rates),
        "ratio": statistics.median(ratios),
        "ratio_min": min(ratios),
        "ratio_max": max(ratios),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=300, help="workflows per round")
    parser.add_argument("--rounds", type=int, default=9)
    args = parser.parse_args()
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as home:
        results["sqlite"] = measure(podium.Settings(home=Path(home)), args.runs, args.rounds)
    with temporary_postgres_database(POSTGRES_URL, prefix="podium_bench") as url, tempfile.TemporaryDirectory() as home:
        results["postgres"] = measure(podium.Settings(home=Path(home), database_url=url), args.runs, args.rounds)
    rows = [
        (
            db,
            f"{r['bare_per_s']:.0f}",
            f"{r['governed_per_s']:.0f}",
            f"{r['ratio']:.2f}x",
            f"{r['ratio_min']:.2f}–{r['ratio_max']:.2f}",
        )
        for db, r in results.items()
    ]
    write_result(
        "workflows",
        title="Governed vs bare DBOS 3-step workflows",
        method=(
            f"{args.runs} workflows started at once per round, {args.rounds} alternating rounds of bare then governed; "
            "rates are the median round, the ratio the median of the rounds' ratios (its range beside it). Each "
            "governed step is a tool call through the governor (admission read: registry, kills, stops, budgets; "
            "Cedar decision; ledger row and Merkle audit entry, group-committed). Target: governed >= 0.7x bare."
        ),
        columns=("database", "bare DBOS wf/s", "governed wf/s", "governed / bare", "range over rounds"),
        rows=rows,
        data={
            "sqlite_ratio_vs_dbos": round(results["sqlite"]["ratio"], 3),
            "postgres_ratio_vs_dbos": round(results["postgres"]["ratio"], 3),
            **{
                f"{db}_{k}": round(v, 3 if k.startswith("ratio") else 1)
                for db, r in results.items()
                for k, v in r.items()
                if k != "ratio"
            },
            "runs_per_round": args.runs,
            "rounds": args.rounds,
        },
    )


if __name__ == "__main__":
    main()
