"""Copies of the real log samples in data/, made usable: Zeek's masked timestamps replaced by real ones, AI
domains put in place of the samples' own, Zeek TSV rewritten as Zeek's JSON, files gzipped."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

from podium.discovery import Catalogue, Service

DATA = Path(__file__).parent / "data"
MASKED = "XXXXXXXXXX.XXXXXX"
DAY_START = 1_764_547_200.0  # 2025-12-01T00:00:00Z


def ai_catalogue() -> Catalogue:
    return Catalogue(
        [
            Service("openai", "OpenAI", "OpenAI", "chat", ("openai.com", "chatgpt.com")),
            Service("gemini", "Gemini", "Google", "chat", ("gemini.google.com",), hosts=("www.google.com",)),
            Service("claude", "Claude", "Anthropic", "chat", ("claude.ai", "anthropic.com")),
        ]
    )


def zeek_copy(name: str, folder: Path, *, start: float, replace: dict[str, str] | None = None) -> Path:
    """data/zeek/`name` with the n-th data line's masked time set to `start` + n seconds, and `replace` applied."""
    lines = (DATA / "zeek" / name).read_text().splitlines()
    out, row = [], 0
    for original in lines:
        line = original
        if line.startswith(MASKED):
            line = f"{start + row:.6f}" + line[len(MASKED) :]
            row += 1
        for old, new in (replace or {}).items():
            line = line.replace(old, new)
        out.append(line)
    path = folder / name
    path.write_text("\n".join(out) + "\n")
    return path


def as_json(tsv: Path) -> Path:
    """The Zeek TSV log `tsv` as Zeek's JSON writer would have written it (unset fields left out)."""
    header = {line.split("\t", 1)[0]: line.split("\t")[1:] for line in tsv.read_text().splitlines() if line[:1] == "#"}
    fields, types = header["#fields"], header["#types"]
    rows = []
    for line in tsv.read_text().splitlines():
        if line.startswith("#") or not line:
            continue
        record: dict[str, object] = {}
        for name, kind, value in zip(fields, types, line.split("\t"), strict=True):
            if value != "-":
                record[name] = _json_value(kind, value)
        rows.append(json.dumps(record))
    path = tsv.with_suffix(".json")
    path.write_text("\n".join(rows) + "\n")
    return path


def _json_value(kind: str, value: str) -> object:
    if kind.startswith(("set[", "vector[")):
        return [] if value == "(empty)" else value.split(",")
    if kind in ("time", "interval", "double"):
        return float(value)
    if kind in ("count", "int", "port"):
        return int(value)
    if kind == "bool":
        return value == "T"
    return value


def gzipped(path: Path) -> Path:
    target = path.with_name(path.name + ".gz")
    target.write_bytes(gzip.compress(path.read_bytes()))
    return target
