"""The gateway's added latency and throughput: direct to a stub upstream, through `podium serve` (SQLite and
PostgreSQL) and through the LiteLLM proxy, side by side in one run.

    python -m benchmarks.gateway [--rounds 5] [--requests 300] [--duration 3] [--no-litellm] [--no-postgres]

Every path ends at the same fast local OpenAI-compatible stub (benchmarks/_gateway_stub.py), each server in a
process of its own; the load generator (benchmarks/_gateway_load.py) sends the same small non-streaming chat
completion (max_tokens 16) over keep-alive connections. Through podium, each request is governed: key
authentication, the Cedar decision, a budget reserve before the upstream call and a settle after it, a ledger row
and an audit entry. LiteLLM runs with its master key and no database (see _gateway_servers.py): no budget or
spend tracking on its side.

Latency: `--rounds` rounds of `--requests` requests one at a time, the paths taking turns in rotating order, so a
slow spell of the machine weighs on all alike; added latency is a path's p50 or p99 minus the direct path's.
Throughput: a closed loop at each concurrency level, the paths taking turns at each level; a path's throughput is
the most requests per second it served at a level whose p99 stayed under 50 ms with no error. Writes
benchmarks/results/gateway.json and updates RESULTS.md. Target: podium's throughput >= 3x LiteLLM's and its p99
overhead <= 1/5 of LiteLLM's.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks import _gateway_servers as servers
from benchmarks._gateway_load import LoadResult, Target, run_closed_loop, run_sequential
from benchmarks._report import write_result

POSTGRES_URL = os.environ.get("PODIUM_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
LEVELS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
P99_LIMIT_MS = 50.0
THROUGHPUT_TARGET = 3.0  # x LiteLLM's
OVERHEAD_TARGET = 0.2  # of LiteLLM's p99 overhead
PROMPT = "Say hello in five words."
FIELDS = ("p50_ms", "p99_ms", "p50_overhead_ms", "p99_overhead_ms", "server_cpu_ms", "throughput_rps", "peak_rps")
KEY_PREFIX = {"podium (sqlite)": "sqlite", "podium (postgres)": "postgres"}  # in gateway.json; others by name


def target_of(running: servers.Running) -> Target:
    body = {"model": running.model, "messages": [{"role": "user", "content": PROMPT}], "max_tokens": 16}
    return Target(
        name=running.name,
        host="127.0.0.1",
        port=running.port,
        path="/v1/chat/completions",
        headers=(("authorization", f"Bearer {running.key}"),),
        body=json.dumps(body).encode(),
    )


def probe(target: Target) -> str | None:
    """None if the path answers a chat completion with a choice and usage; else what went wrong."""
    result = run_sequential(target, 3)
    if result.errors:
        return result.first_error
    return None


@contextmanager
def temporary_postgres(server_url: str) -> Iterator[str]:
    from podium.testing import temporary_postgres_database  # podium is needed only for its PostgreSQL run

    with temporary_postgres_database(server_url, prefix="podium_bench_gateway") as url:
        yield url


@dataclass(frozen=True)
class Route:
    """One way to the stub: the request the load generator sends, and the server that answers it."""

    target: Target
    server: servers.Running

    @property
    def name(self) -> str:
        return self.target.name


def session_cpu_s(session: int) -> float:
    """User + system CPU seconds of every live process in `session` (a server and whatever it started)."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue  # gone meanwhile
        if int(fields[3]) == session:
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def start_routes(stack: ExitStack, folder: Path, args: argparse.Namespace) -> tuple[list[Route], dict[str, str]]:
    """Start every server (those that cannot start or do not answer are skipped, with the reason)."""
    skipped: dict[str, str] = {}
    upstream = stack.enter_context(servers.stub(folder))
    routes = [Route(target_of(upstream), upstream)]
    starters: list[tuple[str, Any]] = []
    if not args.no_litellm:
        starters.append(("litellm", lambda: servers.litellm(folder, upstream)))
    starters.append(
        (
            "podium (sqlite)",
            lambda: servers.podium_serve(folder, upstream, database="sqlite", database_url=None, key_of=args.key_of),
        )
    )
    if not args.no_postgres:

        def on_postgres() -> Any:
            url = stack.enter_context(temporary_postgres(args.postgres_url))
            return servers.podium_serve(folder, upstream, database="postgres", database_url=url, key_of=args.key_of)

        starters.append(("podium (postgres)", on_postgres))
    for name, start in starters:
        try:
            running = stack.enter_context(start())
        except (servers.ServerFailed, OSError) as exc:
            skipped[name] = str(exc)
            continue
        target = target_of(running)
        problem = probe(target)
        if problem is not None:
            if problem.startswith("HTTP 404"):
                problem = f"POST /v1/chat/completions answered {problem[:120]} (no gateway route in this checkout yet)"
            skipped[name] = problem
            continue
        routes.append(Route(target, running))
    for name, reason in skipped.items():
        print(f"{name}: skipped: {reason}", flush=True)
    return routes, skipped


def latency_rounds(
    routes: Sequence[Route], rounds: int, requests: int
) -> tuple[dict[str, LoadResult], dict[str, float]]:
    """Concurrency 1, the paths taking turns in rotating order each round; each path's latencies pooled, and the
    CPU time its server's own processes used per request (the stub's is not counted, except on the direct path)."""
    pooled = {route.name: LoadResult(1) for route in routes}
    cpu = dict.fromkeys(pooled, 0.0)
    for _ in range(max(1, requests // 10)):  # warm every path (connections, caches, lazy imports)
        for route in routes:
            run_sequential(route.target, 1)
    for round_number in range(rounds):
        shift = round_number % len(routes)
        for route in [*routes[shift:], *routes[:shift]]:
            before = session_cpu_s(route.server.pid)
            result = run_sequential(route.target, requests)
            cpu[route.name] += session_cpu_s(route.server.pid) - before
            into = pooled[route.name]
            into.latencies_s += result.latencies_s
            into.errors += result.errors
            into.first_error = into.first_error or result.first_error
            into.elapsed_s += result.elapsed_s
        print(f"latency round {round_number + 1}/{rounds} done", flush=True)
    per_request = {name: cpu[name] / max(1, len(result.latencies_s) + result.errors) for name, result in pooled.items()}
    return pooled, per_request


def sweep(targets: Sequence[Target], levels: Sequence[int], duration_s: float) -> dict[str, list[LoadResult]]:
    """A closed loop per concurrency level, the paths taking turns; a path leaves the sweep after two levels in a
    row over the p99 limit or with errors (it will not come back under it with more connections)."""
    results: dict[str, list[LoadResult]] = {target.name: [] for target in targets}
    over = dict.fromkeys(results, 0)
    for index, level in enumerate(levels):
        active = [target for target in targets if over[target.name] < 2]
        if not active:
            break
        shift = index % len(active)
        for target in [*active[shift:], *active[:shift]]:
            result = run_closed_loop(target, level, duration_s, warmup_s=min(1.0, duration_s / 4))
            results[target.name].append(result)
            over[target.name] = over[target.name] + 1 if not within_limit(result) else 0
        print(
            f"concurrency {level}: "
            + ", ".join(
                f"{t.name} {results[t.name][-1].rps:,.0f} rps p99 {results[t.name][-1].percentile_ms(0.99):.1f} ms"
                for t in active
            ),
            flush=True,
        )
    return results


def within_limit(result: LoadResult) -> bool:
    return result.errors == 0 and bool(result.latencies_s) and result.percentile_ms(0.99) < P99_LIMIT_MS


def best_within_limit(results: Sequence[LoadResult]) -> LoadResult | None:
    good = [result for result in results if within_limit(result)]
    return max(good, key=lambda result: result.rps) if good else None


def summarise(
    latency: dict[str, LoadResult], cpu_per_request: dict[str, float], swept: dict[str, list[LoadResult]], direct: str
) -> dict[str, Any]:
    """Per path: p50/p99 at concurrency 1, added over direct, best throughput under the limit, peak throughput."""
    base = latency[direct]
    summary: dict[str, Any] = {}
    for name, result in latency.items():
        best = best_within_limit(swept[name])
        summary[name] = {
            "p50_ms": result.percentile_ms(0.5),
            "p99_ms": result.percentile_ms(0.99),
            "p50_overhead_ms": result.percentile_ms(0.5) - base.percentile_ms(0.5),
            "p99_overhead_ms": result.percentile_ms(0.99) - base.percentile_ms(0.99),
            "server_cpu_ms": cpu_per_request[name] * 1000,
            "latency_errors": result.errors,
            "throughput_rps": best.rps if best else 0.0,
            "throughput_concurrency": best.concurrency if best else None,
            "peak_rps": max((r.rps for r in swept[name]), default=0.0),
            "sweep": [
                {
                    "concurrency": r.concurrency,
                    "rps": round(r.rps, 1),
                    "p50_ms": round(r.percentile_ms(0.5), 3) if r.latencies_s else None,
                    "p99_ms": round(r.percentile_ms(0.99), 3) if r.latencies_s else None,
                    "errors": r.errors,
                    **({"first_error": r.first_error} if r.first_error else {}),
                }
                for r in swept[name]
            ],
            "requests_timed": len(result.latencies_s),
        }
    return summary


def _ms(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.2f}"


def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or denominator is None or denominator <= 0:
        return None
    return round(numerator / denominator, 3)


def report(
    summary: dict[str, Any], skipped: dict[str, str], budgets: dict[str, list[str]], args: argparse.Namespace
) -> None:
    levels = [level for level in LEVELS if level <= args.max_concurrency]
    rows = []
    for name, figures in summary.items():
        direct = name == "direct"
        capped = figures["throughput_concurrency"] == levels[-1]  # still under the limit at the sweep's last level
        rows.append(
            (
                name,
                _ms(figures["p50_ms"]),
                _ms(figures["p99_ms"]),
                "-" if direct else _ms(figures["p50_overhead_ms"]),
                "-" if direct else _ms(figures["p99_overhead_ms"]),
                _ms(figures["server_cpu_ms"]),
                f"{'>= ' if capped else ''}{figures['throughput_rps']:,.0f}"
                + (f" (c={figures['throughput_concurrency']})" if figures["throughput_concurrency"] else ""),
                f"{figures['peak_rps']:,.0f}",
            )
        )
    rows.extend((name, "skipped", "", "", "", "", "", "") for name in skipped)

    litellm = summary.get("litellm")
    headline_database = next((db for db in ("postgres", "sqlite") if f"podium ({db})" in summary), None)
    podium = summary.get(f"podium ({headline_database})") if headline_database else None
    data: dict[str, Any] = {
        "p99_overhead_ms": _round(podium and podium["p99_overhead_ms"]),
        "litellm_p99_overhead_ms": _round(litellm and litellm["p99_overhead_ms"]),
        "throughput_rps": _round(podium and podium["throughput_rps"], 1),
        "litellm_throughput_rps": _round(litellm and litellm["throughput_rps"], 1),
        "throughput_ratio_vs_litellm": _ratio(
            podium and podium["throughput_rps"], litellm and litellm["throughput_rps"]
        ),
        "p99_overhead_ratio_vs_litellm": _ratio(
            podium and podium["p99_overhead_ms"], litellm and litellm["p99_overhead_ms"]
        ),
        "headline_database": headline_database,
        "peak_throughput_ratio_vs_litellm": _ratio(podium and podium["peak_rps"], litellm and litellm["peak_rps"]),
        "server_cpu_ratio_vs_litellm": _ratio(podium and podium["server_cpu_ms"], litellm and litellm["server_cpu_ms"]),
    }
    for name, figures in summary.items():
        key = KEY_PREFIX.get(name, name)
        for field in FIELDS:
            data[f"{key}_{field}"] = _round(figures[field])
        data[f"{key}_sweep"] = figures["sweep"]
    data.update(
        skipped=skipped,
        podium_budgets=budgets,
        podium_key=args.key_of,
        litellm_version=servers.LITELLM_VERSION,
        litellm_auth="master key, no database (LiteLLM's virtual keys need Prisma and a database)",
        rounds=args.rounds,
        requests_per_round=args.requests,
        sweep_duration_s=args.duration,
        p99_limit_ms=P99_LIMIT_MS,
        target_throughput_ratio=THROUGHPUT_TARGET,
        target_p99_overhead_ratio=OVERHEAD_TARGET,
    )
    verdict = ""
    if data["throughput_ratio_vs_litellm"] is not None and data["p99_overhead_ratio_vs_litellm"] is not None:
        verdict = (
            f" This run: podium ({headline_database}) served {data['throughput_ratio_vs_litellm']:.2f}x LiteLLM's "
            f"throughput (target >= {THROUGHPUT_TARGET:.0f}x) with {data['p99_overhead_ratio_vs_litellm']:.2f}x its "
            f"p99 overhead (target <= {OVERHEAD_TARGET})."
        )
    budget_kinds = ", ".join(sorted({scope.split(":")[0] for scopes in budgets.values() for scope in scopes}))
    skipped_text = "".join(f" Skipped {name}: {reason.splitlines()[0][:160]}." for name, reason in skipped.items())
    write_result(
        "gateway",
        title="Gateway: added latency and throughput, podium vs LiteLLM proxy",
        method=(
            "One non-streaming chat completion (max_tokens 16) to a local OpenAI-compatible stub upstream "
            "(raw asyncio, TCP_NODELAY, answers at once with usage), each server in its own process on this "
            "machine, a keep-alive raw-socket load generator in another. Through podium serve: an "
            f"{'agent' if args.key_of == 'agent' else 'non-admin person'}'s key, Cedar decision, budget reserve and "
            f"settle ({budget_kinds or 'no'} budgets), ledger and audit entry on every request. LiteLLM proxy "
            f"{servers.LITELLM_VERSION}, offline, one worker, master key and no database (virtual keys need Prisma "
            "and a database): no budget or spend tracking. Latency at "
            f"concurrency 1: {args.rounds} rounds x {args.requests} requests per path, paths in rotating order; "
            "added = the path's percentile minus direct's; server CPU = the user + system time of the server's "
            "own processes per request over those rounds (the stub's only on the direct path). Throughput: closed "
            "loop at concurrency "
            f"{', '.join(map(str, levels))} ({args.duration:g} s each after a warm-up), the best requests/s with "
            f"p99 < {P99_LIMIT_MS:.0f} ms and no error ('>=': the sweep ended first). Headline keys in gateway.json "
            f"are podium on {headline_database or 'neither database'}; both databases are under sqlite_* and "
            f"postgres_*. Target: throughput >= {THROUGHPUT_TARGET:.0f}x LiteLLM's, p99 overhead <= "
            f"{OVERHEAD_TARGET} of LiteLLM's.{verdict}{skipped_text}"
        ),
        columns=(
            "path",
            "p50 ms",
            "p99 ms",
            "added p50 ms",
            "added p99 ms",
            "server CPU ms/req",
            f"req/s at p99 < {P99_LIMIT_MS:.0f} ms",
            "peak req/s",
        ),
        rows=rows,
        data=data,
    )


def _round(value: float | None, digits: int = 3) -> float | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return round(value, digits)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="latency rounds (concurrency 1)")
    parser.add_argument("--requests", type=int, default=300, help="requests per path per latency round")
    parser.add_argument("--duration", type=float, default=3.0, help="seconds timed per sweep level and path")
    parser.add_argument("--max-concurrency", type=int, default=LEVELS[-1], help="the sweep's last level")
    parser.add_argument("--no-litellm", action="store_true", help="leave out the LiteLLM proxy")
    parser.add_argument("--no-postgres", action="store_true", help="leave out podium on PostgreSQL")
    parser.add_argument("--postgres-url", default=POSTGRES_URL, help="a PostgreSQL server podium may create on")
    parser.add_argument(
        "--key-of",
        choices=("agent", "person"),
        default="agent",
        help="podium's gateway key: a registered agent's (default) or a non-admin person's",
    )
    parser.add_argument("--keep", action="store_true", help="keep the servers' logs and homes (printed)")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="podium-bench-gateway-"))
    with ExitStack() as stack:
        routes, skipped = start_routes(stack, folder, args)
        print("measuring: " + ", ".join(route.name for route in routes), flush=True)
        latency, cpu = latency_rounds(routes, args.rounds, args.requests)
        levels = [level for level in LEVELS if level <= args.max_concurrency]
        swept = sweep([route.target for route in routes], levels, args.duration)
    summary = summarise(latency, cpu, swept, direct="direct")
    budgets = {route.name: list(route.server.budgets) for route in routes if route.server.budgets}
    report(summary, skipped, budgets, args)
    if args.keep:
        print(f"logs and homes kept in {folder}")
    else:
        import shutil

        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
