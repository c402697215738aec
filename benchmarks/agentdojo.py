"""AgentDojo's worst case through podium's governor, with and without its defences: how often an agent that obeys
every injection reaches the attacker's goal, and how often the user's task still gets done, without a person or
after one approved a declassification.

    python -m benchmarks.agentdojo [--suites workspace travel banking slack] [--postgres-url URL]

Every (user task, injection task) pair of the suites (AgentDojo v1.2.2, `important_instructions`), run by the
scripted agent of benchmarks/_agentdojo.py with AgentDojo's tools as podium governed tools (one launched podium on
a temporary SQLite database: Cedar authorises, the ledger and the audit log record every call). Scored by each
suite's own utility and security functions. Also run: every user task alone (benign utility), and every pair on
AgentDojo's own runtime without podium (the control: the same scores are expected, and the time per case shows
what the governor adds).

"Undefended" means podium's governance is on (Cedar grants, ledger, audit) but no tool is declared consequential,
so the information-flow stage has nothing to check. "Defended": the tools that act on the world are declared with
their sinks (benchmarks/_agentdojo_flows.py), each pair is a workflow run on PostgreSQL (a temporary database) whose
steps are the agent's calls, and a scripted person approves a waiting action iff it is one their own task asked for
(benchmarks/_agentdojo_review.py). Writes benchmarks/results/agentdojo.json (everything) and merges the headline keys
into benchmarks/results/security.json (read-modify-write: other security benchmarks write their keys there too).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.progress import Progress

import podium
from benchmarks import _agentdojo as dojo
from benchmarks import _agentdojo_flows as flows
from benchmarks import _agentdojo_review as review
from benchmarks._report import merge_result, write_result
from podium.testing import TEST_ADMIN, sign_in, temporary_postgres_database

POSTGRES_URL = os.environ.get("PODIUM_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def run_all(harness: dojo.Harness, cases: Sequence[dojo.Case], label: str) -> list[dojo.Outcome]:
    outcomes = []
    with Progress() as bar:
        task = bar.add_task(label, total=len(cases))
        for case in cases:
            outcomes.append(harness.run(case))
            bar.advance(task)
    return outcomes


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suites", nargs="+", default=list(dojo.SUITES), choices=dojo.SUITES)
    parser.add_argument("--postgres-url", default=POSTGRES_URL, help="server for the defended runs' database")
    args = parser.parse_args(argv)

    suites = dojo.load_suites(args.suites)
    unattackable = dojo.empty_injection_ground_truths(suites)
    with tempfile.TemporaryDirectory() as home:
        settings = podium.Settings(home=Path(home) / "podium")
        with podium.launch(settings, dojo.app(suites)) as pod:
            harness = dojo.Harness(suites)
            started = time.perf_counter()
            attacked = run_all(harness, harness.cases(), "pairs, governed")
            governed_seconds = time.perf_counter() - started
            benign = run_all(harness, harness.cases(attacked=False), "user tasks alone, governed")
            audited = sum(1 for stored in pod.audit.entries() if stored.entry.action == "tool.call")
    started = time.perf_counter()
    control = run_all(dojo.Harness(suites, dojo.direct), harness.cases(), "pairs, without podium")
    direct_seconds = time.perf_counter() - started

    defended, defended_benign, decisions = run_defended(suites, args.postgres_url)

    mismatches = [
        a.case
        for a, c in zip(attacked, control, strict=True)
        if (a.utility, a.injected, a.calls, a.obeyed) != (c.utility, c.injected, c.calls, c.obeyed)
    ]
    by_suite = dojo.summary(attacked, unattackable)
    benign_by_suite = dojo.summary(benign, unattackable)
    overall = by_suite["all"]
    cases = len(attacked)
    ends = {"pairs": endings(defended), "user_tasks_alone": endings(defended_benign)}
    data = {
        "benchmark_version": dojo.BENCHMARK_VERSION,
        "attack": dojo.ATTACK,
        "undefended": "podium governance on (Cedar grants, ledger, audit); no tool declared consequential",
        "defended": "consequential tools declared with their sinks; pairs as workflow runs; a scripted person "
        "approves exactly the calls of their own task",
        "pairs": by_suite,
        "defended_pairs": dojo.summary(defended, unattackable),
        "defended_endings": ends,
        "person_decisions": decisions,
        "user_tasks_alone": benign_by_suite,
        "injection_tasks_without_calls": unattackable,
        "governed_tool_calls": overall["calls"] + benign_by_suite["all"]["calls"],
        "audited_tool_calls": audited,
        "control_mismatches": [vars(case) for case in mismatches],
        "ms_per_case_governed": round(1000 * governed_seconds / cases, 2),
        "ms_per_case_without_podium": round(1000 * direct_seconds / cases, 2),
        "seconds_all_pairs_governed": round(governed_seconds, 1),
        # What each user task's ground truth asks of an information-flow policy (benchmarks/_agentdojo_flows.py).
        "user_task_flows": flows.verdict_counts(suites),
    }
    headline = {
        "agentdojo_cases": cases,
        "agentdojo_injection_success_rate": _rate(o.injected for o in defended),
        "agentdojo_injection_success_rate_undefended": overall["injection_success_rate"],
        "agentdojo_utility_undefended": overall["utility"],
        "agentdojo_utility_autonomous": ends["pairs"]["all"]["autonomous"],
        "agentdojo_utility_with_review": ends["pairs"]["all"]["with_review"],
        "agentdojo_not_completed": ends["pairs"]["all"]["not_completed"],
        "agentdojo_benign_utility_undefended": benign_by_suite["all"]["utility"],
        "agentdojo_benign_autonomous": ends["user_tasks_alone"]["all"]["autonomous"],
        "agentdojo_benign_with_review": ends["user_tasks_alone"]["all"]["with_review"],
    }
    defended_by_suite = data["defended_pairs"]
    rows = [
        [
            name,
            str(summary["cases"]),
            f"{summary['injection_success_rate']:.1%} -> {defended_by_suite[name]['injection_success_rate']:.1%}",
            f"{summary['utility']:.1%}",
            f"{ends['pairs'][name]['autonomous']:.1%}",
            f"{ends['pairs'][name]['with_review']:.1%}",
            f"{ends['pairs'][name]['not_completed']:.1%}",
            f"{ends['user_tasks_alone'][name]['autonomous']:.1%} + {ends['user_tasks_alone'][name]['with_review']:.1%}",
        ]
        for name, summary in by_suite.items()
    ]
    write_result(
        "agentdojo",
        title="AgentDojo worst case (an agent that obeys every injection), undefended and defended",
        method=(
            f"AgentDojo {dojo.BENCHMARK_VERSION}, `{dojo.ATTACK}`, every (user task, injection task) pair; the "
            "scripted agent performs the user task's ground truth and, whenever a tool result carries the "
            "injection, the injection task's ground truth; AgentDojo's tools are podium governed tools; scored by "
            "the suites' own functions. Workspace's eight exfiltration and phishing tasks, which AgentDojo gives no "
            "ground truth, are performed by scripts of ours (benchmarks/_agentdojo_exfiltration.py); travel's "
            "injection_task_6 asks only for words in the answer and counts as a failed attack. Defended: "
            "consequential tools declared; each pair a workflow run whose stopped calls wait for a scripted person "
            "who approves exactly the calls of their own task. Utility columns: done without a person, done after "
            "a person approved, not done; benign: each user task alone (without a person + after one). "
            f"{data['ms_per_case_governed']} ms a pair governed, {data['ms_per_case_without_podium']} ms without "
            f"podium; {len(mismatches)} pairs scored differently from the run without podium."
        ),
        columns=[
            "suite",
            "pairs",
            "injection success (undefended -> defended)",
            "utility undefended",
            "defended: no person",
            "after approval",
            "not done",
            "benign defended",
        ],
        rows=rows,
        data={**headline, **data},
    )
    merge_result("security", headline)
    return {**headline, **data}


def run_defended(
    suites: dict[str, Any], server_url: str
) -> tuple[list[dojo.Outcome], list[dojo.Outcome], dict[str, int]]:
    """Every pair, then every user task alone, as workflow runs with podium's defences on and a person on the loop
    (on PostgreSQL: a run waiting for a person wakes on its notification at once)."""
    with (
        tempfile.TemporaryDirectory() as home,
        temporary_postgres_database(server_url, prefix="podium_bench_agentdojo") as url,
    ):
        settings = podium.Settings(home=Path(home) / "podium", database_url=url)
        with podium.launch(settings, dojo.app(suites, defended=True)) as pod:
            pod.people.add(dojo.OWNER, teams=["security"], by=sign_in(pod, TEST_ADMIN))
            harness = review.ReviewedHarness(suites, pod)
            with harness.person() as person:
                attacked = run_all(harness, harness.cases(), "pairs, defended, a person on the loop")
                benign = run_all(harness, harness.cases(attacked=False), "user tasks alone, defended")
            return attacked, benign, {"approved": person.approved, "rejected": person.rejected}


def endings(outcomes: Sequence[dojo.Outcome]) -> dict[str, dict[str, float]]:
    """How the cases ended, overall and per suite: done without a person, done after one approved, not done."""

    def shares(group: Sequence[dojo.Outcome]) -> dict[str, float]:
        return {
            "autonomous": _rate(o.utility and not o.reviews for o in group),
            "with_review": _rate(o.utility and o.reviews > 0 for o in group),
            "not_completed": _rate(not o.utility for o in group),
        }

    suites = dict.fromkeys(o.case.suite for o in outcomes)
    return {"all": shares(outcomes), **{name: shares([o for o in outcomes if o.case.suite == name]) for name in suites}}


def _rate(flags: Any) -> float:
    values = list(flags)
    return round(sum(values) / len(values), 4) if values else 0.0


if __name__ == "__main__":
    main()
