"""The kill switch under load, and the audit log's append and verification speed.

    python -m benchmarks.governance [--runs 1000] [--pace 4] [--audit-entries 1000000]

Kill: `--runs` workflow runs are started and left in flight; each performs a side effect (a governed tool call
that writes the outbox) every ~`--pace` seconds. Once every run has acted, `podium kill --agent` is pulled. For
each run: the time from the kill command until it was stopped, that is until the kill was acknowledged or until
its last side effect, whichever is later (p50/p99 over runs). Side effects after the acknowledgement are counted
two ways: outbox rows stamped after it, and rows that appeared after the kill returned; both must be 0. Fence
refusals are side effects that were under way when the kill landed and did not happen.

Audit: entries appended per second through the governor's group committer (8 threads, one entry per write,
as governed calls append them); and the seconds the independent verifier takes over an export of
`--audit-entries` entries (built with batched appends on SQLite; the verifier reads files only).
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import statistics
import tempfile
import threading
import time
from pathlib import Path

import sqlalchemy as sa
from dbos import DBOS
from rich.progress import Progress

import podium
from benchmarks._report import write_result
from podium.audit import AuditEntry, append_many
from podium.audit.verifier import verify_export
from podium.store import tables
from podium.store._group_commit import GroupCommitter
from podium.testing import sign_in, temporary_postgres_database

POSTGRES_URL = os.environ.get("PODIUM_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
EFFECTS_PER_RUN = 1000  # more than any run reaches before the kill: runs stay in flight until killed


def effect(run: int, n: int) -> str:
    """The side effect: a message in the outbox, exactly once per call site."""
    return "queued" if podium.send_to_outbox("bench", f"customer-{run}", f"update {n}") else "already queued"


agent = podium.Agent("bench-killable", owner="perf@example.com", models=[], tools=[effect])
PACE = {"seconds": 4.0}


@podium.step(name="bench.act")
def act(run: int, n: int) -> str:
    time.sleep(random.uniform(0.5, 1.5) * PACE["seconds"])
    return str(agent.call_tool("effect", run=run, n=n))


@podium.workflow(name="bench.busy")
def busy(run: int) -> int:
    for n in range(EFFECTS_PER_RUN):
        act(run, n)
    return EFFECTS_PER_RUN


def outbox_rows(pod: podium.Podium) -> list[tuple[str, float]]:
    with pod.engine.connect() as conn:
        return [
            (str(r), float(t)) for r, t in conn.execute(sa.select(tables.outbox.c.run_id, tables.outbox.c.created_at))
        ]


def measure_kill(settings: podium.Settings, runs: int, pace: float) -> dict[str, float]:
    PACE["seconds"] = pace
    app = podium.App(agents=[agent], tools=[effect])
    with podium.launch(settings, app) as pod:
        handles = [DBOS.start_workflow(busy._registered, i) for i in range(runs)]  # type: ignore[attr-defined]
        ids = {h.get_workflow_id() for h in handles}
        with Progress() as bar:
            task = bar.add_task("runs in flight that have acted", total=runs)
            while True:
                acted = {run_id for run_id, _ in outbox_rows(pod)} & ids
                bar.update(task, completed=len(acted))
                if len(acted) == runs:
                    break
                time.sleep(0.5)
        in_flight = len(pod.runs.list(status="PENDING", limit=runs * 2))
        operator = sign_in(pod, "benchmark", teams=["admins"])  # kills are admins' (a test admin appoints one)
        started_wall, started = time.time(), time.perf_counter()
        report = pod.kill("agent:bench-killable", by=operator, reason="kill-switch benchmark")
        returned = time.perf_counter() - started
        acknowledged_wall = started_wall + report.acknowledged_s
        after_return = len(outbox_rows(pod))
        time.sleep(2.5 * pace)  # every run that was mid-step has tried its side effect by now
        rows = outbox_rows(pod)
        with pod.engine.connect() as conn:
            refusals = conn.execute(
                sa.select(sa.func.count())
                .select_from(tables.audit_log)
                .where(tables.audit_log.c.decision == "stopped", tables.audit_log.c.detail.like("%was not performed%"))
            ).scalar_one()
        still_running = len(pod.runs.list(status="PENDING", limit=runs * 2))
    last_effect = {run_id: 0.0 for run_id in ids}
    for run_id, at in rows:
        last_effect[run_id] = max(last_effect[run_id], at - started_wall)
    halted = sorted(max(report.acknowledged_s, last) for last in last_effect.values())
    stamped_after = sum(at > acknowledged_wall for _, at in rows)
    return {
        "in_flight": in_flight,
        "ack_s": report.acknowledged_s,
        "kill_returned_s": returned,
        "runs_cancelled": report.runs_cancelled,
        "halt_p50_s": statistics.median(halted),
        "halt_p99_s": halted[min(len(halted) - 1, int(0.99 * len(halted)))],
        "side_effects_before": after_return,
        "side_effects_after_kill": stamped_after + (len(rows) - after_return),
        "fence_refusals": refusals,
        "still_pending": still_running,
    }


def measure_appends(settings: podium.Settings, entries: int, threads: int = 8) -> float:
    with podium.connect(settings) as pod:

        def append(conn: sa.Connection, batch: list[AuditEntry]) -> None:
            append_many(conn, batch)

        committer: GroupCommitter[AuditEntry] = GroupCommitter(pod.engine, append)
        per_thread = entries // threads

        def write(t: int) -> None:
            for i in range(per_thread):
                committer.write(AuditEntry(f"bench-{t}-{i}", "agent:bench", "tool.call", "effect", "allowed"))

        started = time.perf_counter()
        workers = [threading.Thread(target=write, args=(t,)) for t in range(threads)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        rate = per_thread * threads / (time.perf_counter() - started)
        committer.close()
    return rate


def measure_verify(entries: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as home, podium.connect(podium.Settings(home=Path(home))) as pod:
        started = time.perf_counter()
        batch = 10_000
        for first in range(0, entries, batch):
            with pod.engine.begin() as conn:
                append_many(
                    conn,
                    [
                        AuditEntry(f"v-{n}", "agent:bench", "tool.call", "effect", "allowed", f"run-{n // 3}", n % 3)
                        for n in range(first, min(entries, first + batch))
                    ],
                )
            if first and first % 100_000 == 0:
                pod.audit.checkpoint()  # heads along the way, as a worker signs them once a minute
        built = time.perf_counter() - started
        started = time.perf_counter()
        pod.audit.export(Path(home) / "export")
        exported = time.perf_counter() - started
        started = time.perf_counter()
        report = verify_export(Path(home) / "export", public_key=None)
        verified = time.perf_counter() - started
        if not report.ok:
            raise SystemExit(f"the export did not verify: {report.problem}")
    return {"build_s": built, "export_s": exported, "verify_s": verified}


def main() -> None:
    logging.getLogger("dbos").setLevel(logging.CRITICAL)  # DBOS logs every cancelled run's awaiter as an error
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000, help="runs in flight when the kill lands")
    parser.add_argument("--pace", type=float, default=4.0, help="seconds between a run's side effects (mean)")
    parser.add_argument("--audit-entries", type=int, default=1_000_000, help="entries in the exported log")
    parser.add_argument("--appends", type=int, default=20_000, help="entries appended to measure appends/s")
    args = parser.parse_args()
    kills: dict[str, dict[str, float]] = {}
    appends: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as home:
        kills["sqlite"] = measure_kill(podium.Settings(home=Path(home)), args.runs, args.pace)
    with tempfile.TemporaryDirectory() as home:
        appends["sqlite"] = measure_appends(podium.Settings(home=Path(home)), args.appends)
    with temporary_postgres_database(POSTGRES_URL, prefix="podium_bench") as url, tempfile.TemporaryDirectory() as home:
        kills["postgres"] = measure_kill(podium.Settings(home=Path(home), database_url=url), args.runs, args.pace)
    with temporary_postgres_database(POSTGRES_URL, prefix="podium_bench") as url, tempfile.TemporaryDirectory() as home:
        appends["postgres"] = measure_appends(podium.Settings(home=Path(home), database_url=url), args.appends)
    verify = measure_verify(args.audit_entries)
    rows = [
        (
            db,
            f"{k['in_flight']:.0f}",
            f"{k['ack_s'] * 1000:.0f} ms",
            f"{k['halt_p50_s']:.3f} / {k['halt_p99_s']:.3f} s",
            f"{k['side_effects_after_kill']:.0f}",
            f"{k['fence_refusals']:.0f}",
            f"{k['runs_cancelled']:.0f} in {k['kill_returned_s']:.2f} s",
            f"{appends[db]:,.0f}",
        )
        for db, k in kills.items()
    ]
    worst = max(kills.values(), key=lambda k: k["halt_p99_s"])
    write_result(
        "governance",
        title="Kill switch under load; audit log appends and verification",
        method=(
            f"{args.runs} runs in flight, each performing a governed side effect every ~{args.pace:g} s; "
            "`kill --agent` once every run has acted. Halted = max(kill acknowledged, the run's last side effect), "
            "from the kill command. Side effects after the kill: outbox rows stamped after the acknowledgement plus "
            "rows that appeared after the kill returned (target 0). Fence refusals: side effects under way when the "
            "kill landed, refused at commit. Appends: 8 threads, one entry per write, through the group committer. "
            f"Verify: the independent verifier over an export of {args.audit_entries:,} entries: "
            f"{verify['verify_s']:.1f} s (building the log {verify['build_s']:.0f} s, exporting it "
            f"{verify['export_s']:.0f} s, SQLite). Target: halted p99 < 1 s on both databases."
        ),
        columns=(
            "database",
            "runs in flight",
            "kill acknowledged",
            "halted p50 / p99",
            "side effects after kill",
            "fence refusals",
            "runs cancelled",
            "audit appends/s",
        ),
        rows=rows,
        data={
            "kill_p99_s": round(worst["halt_p99_s"], 4),
            "side_effects_after_kill": int(sum(k["side_effects_after_kill"] for k in kills.values())),
            "audit_appends_per_s": round(min(appends.values()), 1),
            "audit_verify_1m_s": round(verify["verify_s"] * 1_000_000 / args.audit_entries, 2),
            **{f"{db}_{key}": round(value, 4) for db, k in kills.items() for key, value in k.items()},
            **{f"{db}_audit_appends_per_s": round(rate, 1) for db, rate in appends.items()},
            **{f"audit_{key}": round(value, 2) for key, value in verify.items()},
            "audit_entries": args.audit_entries,
            "runs": args.runs,
            "pace_s": args.pace,
        },
    )


if __name__ == "__main__":
    main()
