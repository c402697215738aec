"""Cascading failures contained: healthy workflows' p99 beside a tool that works, then beside the same tool failing.

    python -m benchmarks.cascade [--rounds 3] [--phase-s 20] [--rate 10]

Two agents on one podium process (SQLite, podium.toml's default [resilience]). The healthy workflows (3 steps, each
a governed call of an async `quote` tool that answers in ~2 ms) arrive at `--rate` a second throughout. Each round
has three phases: they run alone; then alongside as many workflows of another agent whose one step calls `notify`,
a consequential plain function that queues a message in the outbox (keyed by its call, the way a retried side
effect must be), while `notify` works; then alongside the same load while `notify` hangs on half its tries (for
30 s): its declared 5 s timeout ends the wait and its declared 2 retries try again after a jittered backoff. The
containment stage's circuit breaker refuses `notify` once half its recent tries failed, its bulkhead bounds the
hung threads, and the notifier's failures never reach the quoting agent's breaker.

Reported: the healthy workflows' p50 and p99 latency (from starting each to its return, both in this process) in
each phase, pooled over the rounds, and the ratio of their p99 beside the failing tool to their p99 beside the
working one: the same load, so the ratio is what the failure itself costs them (target < 1.10); the ratio to the
alone phase too. How the notifier's workflows ended; tries per `notify` call from the audit log (bounded by its
retries); and the side effects: each time `send_to_outbox` queued a message, per call key (duplicates: target 0).
Writes results/cascade.json, RESULTS.md, and merges `cascade_healthy_p99_ratio`, `cascade_duplicate_side_effects`,
`cascade_max_retries` into results/security.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import random
import statistics
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from dbos import DBOS, WorkflowHandle

import podium
from benchmarks._report import merge_result, write_result
from podium.errors import Unavailable
from podium.store import tables

NOTIFY_TIMEOUT_S = 5.0
NOTIFY_RETRIES = 2
HANG_S = 30.0  # how long a hung try hangs (past the 5 s timeout), unless the benchmark ends first
SEED = 16
PHASES = ("alone", "working", "failing")  # healthy workflows alone; beside notify working; beside notify failing

hung = threading.Event()  # set when the benchmark ends: the hung threads return
failing_now = threading.Event()  # whether notify fails (hangs on half its tries) or always works
_lock = threading.Lock()
_chance = random.Random(SEED)
side_effects: Counter[str] = Counter()  # messages queued, by call key
tries: Counter[str] = Counter()  # tries of notify, by call key
started: dict[int, float] = {}  # when each healthy workflow was started, by order
finished: dict[int, float] = {}  # when it returned


async def quote(item: str) -> str:
    """A healthy dependency: answers in about 2 ms."""
    await asyncio.sleep(0.002)
    return f"{item}: 12.50 EUR"


@podium.tool(consequential=True, timeout_s=NOTIFY_TIMEOUT_S, retries=NOTIFY_RETRIES)
def notify(customer: str, text: str) -> str:
    """A dependency that may fail: its side effect is keyed by the call, then, while failing, half its tries hang."""
    key = podium.current_call().key
    queued = podium.send_to_outbox("cascade", customer, text)
    with _lock:
        tries[key] += 1
        side_effects[key] += int(queued)
        hangs = failing_now.is_set() and _chance.random() < 0.5
    if hangs:
        hung.wait(HANG_S)
    return "sent"


quoter = podium.Agent("quoter", owner="sales-lead@example.com", models=[], tools=[quote])
notifier = podium.Agent("notifier", owner="support-lead@example.com", models=[], tools=[notify])
APP = podium.App(agents=[quoter, notifier], tools=[quote, notify])


@podium.step(name="cascade_bench.quote")
def quote_step(item: str) -> str:
    return str(quoter.call_tool("quote", item=item))


@podium.workflow(name="cascade_bench.healthy")
def healthy(order: int) -> list[str]:
    quotes = [quote_step(f"order {order} line {line}") for line in range(3)]
    finished[order] = time.perf_counter()
    return quotes


@podium.step(name="cascade_bench.notify")
def notify_step(order: int) -> str:
    return str(notifier.call_tool("notify", customer=f"c-{order}", text=f"order {order} shipped"))


@podium.workflow(name="cascade_bench.failing")
def failing(order: int) -> str:
    return notify_step(order)


def drive(phase_s: float, rate: float, alongside: bool, first: int) -> tuple[list[Any], list[Any]]:
    """Start healthy workflows (and failing ones, if `alongside`) at `rate` a second each, for `phase_s`."""
    healthy_runs: list[WorkflowHandle[Any]] = []
    failing_runs: list[WorkflowHandle[Any]] = []
    begun = time.perf_counter()
    for n in range(int(phase_s * rate)):
        time.sleep(max(0.0, begun + n / rate - time.perf_counter()))
        started[first + n] = time.perf_counter()
        healthy_runs.append(DBOS.start_workflow(healthy._registered, first + n))
        if alongside:
            failing_runs.append(DBOS.start_workflow(failing._registered, first + n))
    return healthy_runs, failing_runs


def latencies_ms(runs: list[WorkflowHandle[Any]], first: int) -> list[float]:
    """From each healthy workflow's start to its return (both seen in this process), in milliseconds."""
    for handle in runs:
        handle.get_result()
    return [(finished[first + n] - started[first + n]) * 1000 for n in range(len(runs))]


def ending(handle: WorkflowHandle[Any]) -> str:
    try:
        handle.get_result()
    except Unavailable as exc:
        return f"refused ({exc.fields['why']})"
    except TimeoutError:
        return "timed out"
    except Exception as exc:  # noqa: BLE001 - counted by kind
        return type(exc).__name__
    return "sent"


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def measure(home: Path, rounds: int, phase_s: float, rate: float) -> dict[str, Any]:
    pooled: dict[str, list[float]] = {phase: [] for phase in PHASES}
    by_round: dict[str, list[float]] = {phase: [] for phase in PHASES}
    endings: dict[str, Counter[str]] = {phase: Counter() for phase in PHASES[1:]}
    order = 0
    with podium.launch(podium.Settings(home=home), APP) as pod:
        logging.getLogger("dbos").setLevel(logging.CRITICAL)  # after launch, which sets it: failures are expected
        warm, _ = drive(2.0, rate, False, -1000)  # warm up: the first calls load pydantic-ai and fill caches
        latencies_ms(warm, -1000)
        time.sleep(1.0)
        for _ in range(rounds):
            for phase in PHASES:
                if phase == "failing":
                    failing_now.set()
                else:
                    failing_now.clear()
                runs, notifying = drive(phase_s, rate, phase != "alone", order)
                latencies = latencies_ms(runs, order)
                order += len(runs)
                if phase != "alone":
                    endings[phase].update(ending(h) for h in notifying)  # all ended: the next phase starts clean
                pooled[phase] += latencies
                by_round[phase].append(percentile(latencies, 0.99))
        hung.set()
        with pod.engine.connect() as conn:
            entries = conn.execute(
                sa.select(tables.audit_log.c.decision, tables.audit_log.c.detail).where(
                    tables.audit_log.c.resource == "notify"
                )
            ).all()
            openings = conn.execute(
                sa.select(sa.func.count()).where(tables.audit_log.c.action == "breaker.open")
            ).scalar_one()
            quoter_turns = conn.execute(
                sa.select(sa.func.count()).where(
                    tables.audit_log.c.action.like("breaker.%"), tables.audit_log.c.resource.like("%:quote%")
                )
            ).scalar_one()
            outbox = conn.execute(sa.select(sa.func.count()).select_from(tables.outbox)).scalar_one()
    attempts = [int(json.loads(e.detail).get("attempts", 1)) for e in entries if e.decision in ("allowed", "failed")]
    with _lock:
        performed = sum(side_effects.values())
        duplicates = sum(max(0, n - 1) for n in side_effects.values())
        keys = sum(1 for n in side_effects.values() if n)
        most_tries = max(tries.values(), default=0)
    p50 = {phase: statistics.median(pooled[phase]) for phase in PHASES}
    p99 = {phase: percentile(pooled[phase], 0.99) for phase in PHASES}
    return {
        "p50_ms": p50,
        "p99_ms": p99,
        "ratio": p99["failing"] / p99["working"],
        "ratio_to_alone": p99["failing"] / p99["alone"],
        "round_p99_ms": {phase: [round(v, 1) for v in by_round[phase]] for phase in PHASES},
        "round_ratios": [round(f / w, 3) for w, f in zip(by_round["working"], by_round["failing"], strict=True)],
        "healthy_runs": sum(len(v) for v in pooled.values()),
        "notifier_runs": {phase: sum(e.values()) for phase, e in endings.items()},
        "endings": {phase: dict(e) for phase, e in endings.items()},
        "notify_calls_ran": len(attempts),
        "notify_calls_refused": sum(1 for e in entries if e.decision == "denied"),
        "max_retries": max(attempts, default=1) - 1,
        "max_tries_seen_by_tool": most_tries,
        "mean_tries": round(statistics.mean(attempts), 3) if attempts else 0.0,
        "breaker_openings": openings,
        "quoter_breaker_turns": quoter_turns,
        "side_effects_performed": performed,
        "side_effect_keys": keys,
        "outbox_messages": outbox,
        "duplicate_side_effects": duplicates,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="rounds of three phases: alone, working, failing")
    parser.add_argument("--phase-s", type=float, default=20.0, help="seconds each phase starts workflows for")
    parser.add_argument("--rate", type=float, default=10.0, help="workflows a second, of each kind")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as home:
        r = measure(Path(home) / "podium", args.rounds, args.phase_s, args.rate)
    p50, p99 = r["p50_ms"], r["p99_ms"]

    def ended(phase: str) -> str:
        counted = sorted(r["endings"][phase].items(), key=lambda kv: -kv[1])
        return f"{r['notifier_runs'][phase]:,}: " + ", ".join(f"{n} {how}" for how, n in counted)

    rows = [
        ("healthy p50: alone / notify working / failing", " / ".join(f"{p50[p]:.0f} ms" for p in PHASES)),
        ("healthy p99: alone / notify working / failing", " / ".join(f"{p99[p]:.0f} ms" for p in PHASES)),
        (
            "healthy p99 failing / working (target < 1.10)",
            f"{r['ratio']:.3f} (rounds: {', '.join(map(str, r['round_ratios']))})",
        ),
        ("healthy p99 failing / alone", f"{r['ratio_to_alone']:.3f}"),
        ("healthy workflows (each 3 governed calls)", f"{r['healthy_runs']:,}, all completed"),
        ("notifier workflows while notify works", ended("working")),
        ("notifier workflows while notify fails", ended("failing")),
        ("notify calls run / refused fast", f"{r['notify_calls_ran']:,} / {r['notify_calls_refused']:,}"),
        (
            f"tries per notify call: mean / max (retries bounded at {NOTIFY_RETRIES})",
            f"{r['mean_tries']} / {r['max_retries'] + 1} (the tool saw at most {r['max_tries_seen_by_tool']})",
        ),
        (
            "notify's breaker openings / quoter's (agent or tool) breaker turns",
            f"{r['breaker_openings']} / {r['quoter_breaker_turns']}",
        ),
        (
            "side effects performed / call keys / outbox rows",
            f"{r['side_effects_performed']:,} / {r['side_effect_keys']:,} / {r['outbox_messages']:,}",
        ),
        ("duplicate side effects (target 0)", str(r["duplicate_side_effects"])),
    ]
    write_result(
        "cascade",
        title="Cascading failures contained",
        method=(
            f"One process, SQLite, default [resilience]. Healthy 3-step workflows (an async tool answering in ~2 ms) "
            f"arrive at {args.rate:g}/s; {args.rounds} rounds of three {args.phase_s:g} s phases: alone; alongside "
            f"{args.rate:g}/s workflows of another agent calling `notify` (a consequential plain function that queues "
            "an outbox message keyed by its call) while it works; and alongside the same load while it hangs on half "
            f"its tries, for {HANG_S:g} s, past its declared {NOTIFY_TIMEOUT_S:g} s timeout, with {NOTIFY_RETRIES} "
            "declared retries (jittered). Latency: from starting a healthy workflow to its return, p99 pooled over the "
            "rounds; the ratio compares the same load with notify failing and working. Duplicates: messages queued "
            "more than once for one call key. The machine is shared and noisy."
        ),
        columns=("measure", "value"),
        rows=rows,
        data={**r, "rounds": args.rounds, "phase_s": args.phase_s, "rate_per_s": args.rate},
    )
    merge_result(
        "security",
        {
            "cascade_healthy_p99_ratio": round(r["ratio"], 3),
            "cascade_duplicate_side_effects": r["duplicate_side_effects"],
            "cascade_max_retries": r["max_retries"],
        },
    )


if __name__ == "__main__":
    main()
