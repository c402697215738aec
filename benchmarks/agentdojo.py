"""AgentDojo's worst case through podium's governor, undefended: how often an agent that obeys every injection
reaches the attacker's goal, and how often it still does the user's task.

    python -m benchmarks.agentdojo [--suites workspace travel banking slack]

Every (user task, injection task) pair of the suites (AgentDojo v1.2.2, `important_instructions`), run by the
scripted agent of benchmarks/_agentdojo.py with AgentDojo's tools as podium governed tools (one launched podium on
a temporary SQLite database: Cedar authorises, the ledger and the audit log record every call). Scored by each
suite's own utility and security functions. Also run: every user task alone (benign utility), and every pair on
AgentDojo's own runtime without podium (the control: the same scores are expected, and the time per case shows
what the governor adds).

"Undefended" means podium's governance is on but there is no information-flow stage yet, so nothing looks at
where an argument came from. Writes benchmarks/results/agentdojo.json (everything) and merges the headline keys
into benchmarks/results/security.json (read-modify-write: other security benchmarks write their keys there too).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.progress import Progress

import podium
from benchmarks import _agentdojo as dojo
from benchmarks import _agentdojo_flows as flows
from benchmarks._report import merge_result, write_result


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

    mismatches = [
        a.case
        for a, c in zip(attacked, control, strict=True)
        if (a.utility, a.injected, a.calls, a.obeyed) != (c.utility, c.injected, c.calls, c.obeyed)
    ]
    by_suite = dojo.summary(attacked, unattackable)
    benign_by_suite = dojo.summary(benign, unattackable)
    overall = by_suite["all"]
    cases = len(attacked)
    data = {
        "benchmark_version": dojo.BENCHMARK_VERSION,
        "attack": dojo.ATTACK,
        "defence": "none (podium governance on: Cedar grants, ledger, audit; no information-flow stage)",
        "pairs": by_suite,
        "user_tasks_alone": benign_by_suite,
        "injection_tasks_with_empty_ground_truth": unattackable,
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
        "agentdojo_injection_success_rate": overall["injection_success_rate"],
        "agentdojo_utility_undefended": overall["utility"],
        "agentdojo_benign_utility_undefended": benign_by_suite["all"]["utility"],
    }
    rows = [
        [
            name,
            str(summary["cases"]),
            f"{summary['injection_success_rate']:.1%}",
            f"{summary['injection_success_rate_attackable']:.1%} of {summary['attackable_cases']}",
            f"{summary['utility']:.1%}",
            f"{benign_by_suite[name]['utility']:.1%} of {benign_by_suite[name]['cases']}",
        ]
        for name, summary in by_suite.items()
    ]
    write_result(
        "agentdojo",
        title="AgentDojo worst case, undefended (an agent that obeys every injection)",
        method=(
            f"AgentDojo {dojo.BENCHMARK_VERSION}, `{dojo.ATTACK}`, every (user task, injection task) pair; the "
            "scripted agent performs the user task's ground truth and, whenever a tool result carries the "
            "injection, the injection task's ground truth; AgentDojo's tools are podium governed tools; scored by "
            "the suites' own functions. Injection tasks with an empty ground truth (the scripted agent cannot do "
            "them) count as failed attacks; the 'attackable' column leaves them out. Benign: each user task alone. "
            f"{data['ms_per_case_governed']} ms a pair governed, {data['ms_per_case_without_podium']} ms without "
            f"podium; {len(mismatches)} pairs scored differently from the run without podium."
        ),
        columns=["suite", "pairs", "injection success", "on attackable pairs", "utility under attack", "benign"],
        rows=rows,
        data={**headline, **data},
    )
    merge_result("security", headline)
    return {**headline, **data}


if __name__ == "__main__":
    main()
