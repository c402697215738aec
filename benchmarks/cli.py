"""How fast the command line starts: `podium --help` and `podium runs list` against `python -c pass`.

    python -m benchmarks.cli [--rounds 15] [--runs 20]

Each command runs as a new process, as a person runs it, with its output discarded. `runs list` reads a home
prepared once with `podium init` and `--runs` finished runs. The three commands take turns within each round
(their order rotating), so a slow spell of the machine weighs on all of them alike; each figure is the median of the
rounds, with the fastest beside it, and the CPU time the process used (user + system), which a busy machine inflates
less than the wall time. Writes benchmarks/results/cli.json and updates RESULTS.md. Target: < 0.5 s each.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import podium
from benchmarks._report import write_result

TARGET_S = 0.5


@podium.step(name="bench.cli_tick")
def tick(x: int) -> int:
    return x + 1


@podium.workflow(name="bench.cli")
def flow(x: int) -> int:
    return tick(x)


def podium_command() -> str:
    """The `podium` script installed beside this Python (the one `make install` puts in .venv/bin)."""
    beside = Path(sys.executable).with_name("podium")
    found = str(beside) if beside.exists() else shutil.which("podium")
    if found is None:
        raise SystemExit("no `podium` command beside this Python or on PATH: run `make install` first.")
    return found


def prepare_home(home: Path, runs: int) -> None:
    """A home as a person has it after a little use: initialised, with `runs` finished runs to list."""
    subprocess.run(
        [podium_command(), "--home", str(home), "init", "--admin", "bench@example.com"],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    with podium.launch(podium.Settings(home=home)):
        for run in [flow.start(i) for i in range(runs)]:
            run.result()


def timed(command: Sequence[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of running `command` to its end."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def measure(home: Path, rounds: int) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    env = {**os.environ, "COLUMNS": "120"}
    env.pop("PODIUM_DATABASE_URL", None)  # the prepared home's SQLite file, whatever the shell points at
    commands = {
        "python_pass": [sys.executable, "-c", "pass"],
        "help": [podium_command(), "--help"],
        "runs_list": [podium_command(), "--home", str(home), "runs", "list"],
    }
    for command in commands.values():  # warm the file cache (and .pyc files) before timing
        timed(command, env)
    walls: dict[str, list[float]] = {name: [] for name in commands}
    cpus: dict[str, list[float]] = {name: [] for name in commands}
    names = list(commands)
    for round_number in range(rounds):
        shift = round_number % len(names)
        for name in names[shift:] + names[:shift]:
            wall, cpu = timed(commands[name], env)
            walls[name].append(wall)
            cpus[name].append(cpu)
    return walls, cpus


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15, help="times each command runs")
    parser.add_argument("--runs", type=int, default=20, help="finished runs in the prepared home")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        home = Path(folder) / "home"
        prepare_home(home, args.runs)
        times, cpus = measure(home, args.rounds)
    median = {name: statistics.median(values) for name, values in times.items()}
    cpu = {name: statistics.median(values) for name, values in cpus.items()}
    labels = {
        "python_pass": "python -c pass",
        "help": "podium --help",
        "runs_list": f"podium runs list ({args.runs} runs)",
    }
    rows = [
        (
            labels[name],
            f"{median[name]:.3f}",
            f"{min(times[name]):.3f}",
            f"{cpu[name]:.3f}",
            f"{median[name] / median['python_pass']:.0f}x",
            "-" if name == "python_pass" else ("yes" if median[name] < TARGET_S else "no"),
        )
        for name in ("python_pass", "help", "runs_list")
    ]
    write_result(
        "cli",
        title="Command-line start time",
        method=(
            f"Each command a new process with its output discarded, {args.rounds} rounds in rotating order after one "
            "warm-up run each; the median round, the fastest, and the median CPU time (user + system). `runs list` "
            f"reads a SQLite home made with `podium init` holding {args.runs} finished runs. Target: < {TARGET_S} s "
            "for `podium --help` and `podium runs list`."
        ),
        columns=("command", "median s", "fastest s", "CPU s", "vs python -c pass", f"< {TARGET_S} s"),
        rows=rows,
        data={
            "help_s": round(median["help"], 4),
            "runs_list_s": round(median["runs_list"], 4),
            "python_pass_s": round(median["python_pass"], 4),
            "help_vs_python": round(median["help"] / median["python_pass"], 1),
            "runs_list_vs_python": round(median["runs_list"] / median["python_pass"], 1),
            "help_fastest_s": round(min(times["help"]), 4),
            "runs_list_fastest_s": round(min(times["runs_list"]), 4),
            "help_cpu_s": round(cpu["help"], 4),
            "runs_list_cpu_s": round(cpu["runs_list"], 4),
            "python_pass_cpu_s": round(cpu["python_pass"], 4),
            "rounds": args.rounds,
            "runs": args.runs,
            "target_s": TARGET_S,
        },
    )


if __name__ == "__main__":
    main()
