"""Shared output of every benchmark: a table on the terminal, a JSON file, and a section of RESULTS.md."""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

HERE = Path(__file__).parent
RESULTS_MD = HERE / "RESULTS.md"


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, {platform.system()}"


def write_result(
    name: str,
    *,
    title: str,
    method: str,
    columns: Sequence[str],
    rows: Sequence[Sequence[str]],
    data: dict[str, Any],
) -> None:
    when = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    table = Table(*columns, title=title)
    for row in rows:
        table.add_row(*row)
    Console().print(table)

    results = HERE / "results"
    results.mkdir(exist_ok=True)
    (results / f"{name}.json").write_text(
        json.dumps({**data, "measured_at": when, "machine": machine()}, indent=2) + "\n"
    )

    section = "\n".join(
        [
            f"<!-- {name} -->",
            f"## {title}",
            "",
            f"Measured {when} on {machine()}. This machine is noisy (CPU speed swings for minutes); re-run before "
            "relying on a figure.",
            "",
            method,
            "",
            "| " + " | ".join(columns) + " |",
            "|" + "---|" * len(columns),
            *("| " + " | ".join(row) + " |" for row in rows),
            f"<!-- /{name} -->",
        ]
    )
    text = RESULTS_MD.read_text() if RESULTS_MD.exists() else "# Benchmark results\n\nWritten by `make bench`.\n"
    pattern = re.compile(rf"<!-- {name} -->.*?<!-- /{name} -->", re.S)
    text = pattern.sub(section, text) if pattern.search(text) else text.rstrip() + "\n\n" + section + "\n"
    RESULTS_MD.write_text(text)


def merge_result(name: str, keys: dict[str, Any]) -> None:
    """Add `keys` to results/NAME.json, keeping the keys other benchmarks wrote there."""
    path = HERE / "results" / f"{name}.json"
    current = json.loads(path.read_text()) if path.exists() else {}
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps({**current, **keys}, indent=2) + "\n")
