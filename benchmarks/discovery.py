"""How fast `podium discover` reads network logs, how much memory it takes, and how right it is.

    python -m benchmarks.discovery [--lines 10000000] [--rounds 1] [--seed 7]

Speed: a generated Zeek conn log of `--lines` lines (benchmarks/_discovery_corpus.py, cached in
~/.cache/podium/bench-discovery/), gzipped, once as TSV and once as JSON. Each read is `read_logs([file],
catalogue, threads=1)` (one core, the default 256 MB DuckDB limit) in a child process of its own, which times the
call and reports its peak RSS (VmHWM: the interpreter, DuckDB and the read). In the same run, beside each read,
`zcat FILE | wc -l` on the same file is timed: the ratio zcat_wc_seconds / read_seconds says how close reading comes
to the cost of merely decompressing and counting the lines (1.0: no dearer). With several rounds each figure is the
median. The conn log is read alone, as the issue's "the same file" asks: its bytes are what a reader pays for.

Accuracy: a labelled corpus the size of tests/discovery/test_recall.py's (seed 7) read in each of its formats, scored by
benchmarks/_discovery_score.py; recall is the lowest and the false-positive rate the highest over the formats.

Writes benchmarks/results/discovery.json and updates RESULTS.md. Targets: >= 150,000 lines/s on one core, ratio
>= 0.25 (the lower of TSV's and JSON's is the headline), peak RSS < 400 MB, recall >= 99%, false positives <= 0.1%.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks._discovery_corpus import FAMILY, Spec, corpus
from benchmarks._discovery_score import score
from benchmarks._report import write_result
from podium.discovery import Catalogue, read_logs

TARGET_LINES_PER_S = 150_000
TARGET_RATIO = 0.25
TARGET_RSS_MB = 400
TARGET_RECALL = 0.99
TARGET_FPR = 0.001
FORMATS = {"tsv": "zeek-tsv-gz", "json": "zeek-json-gz"}


def child(path: str) -> None:
    """In the child: read one file, print what it took as JSON."""
    catalogue = Catalogue.load()
    before = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    reading = read_logs([Path(path)], catalogue, threads=1)
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_SELF)
    print(
        json.dumps(
            {
                "seconds": seconds,
                "cpu_seconds": (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime),
                "peak_rss_mb": peak_rss_mb(),
                "lines": sum(f.lines for f in reading.files),
                "skipped": reading.skipped_lines,
                "format": reading.files[0].format,
            }
        )
    )


def peak_rss_mb() -> float:
    """This process's peak resident set (VmHWM). Not ru_maxrss: Linux carries the parent's peak across fork and
    exec into it (a child of a benchmark that had just generated its corpus reported the parent's 555 MB)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def read_in_child(path: Path) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.discovery", "--child", str(path)],
        check=True,
        capture_output=True,
        text=True,
    )
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def zcat_wc(path: Path) -> tuple[float, int]:
    started = time.perf_counter()
    done = subprocess.run(f"zcat '{path}' | wc -l", shell=True, check=True, capture_output=True, text=True)
    return time.perf_counter() - started, int(done.stdout.split()[0])


def speed(lines: int, seed: int, rounds: int) -> tuple[dict[str, dict[str, Any]], float]:
    """Per format: the medians of `rounds` reads and zcat | wc -l runs, taking turns; and the generation time."""
    spec = Spec(seed=seed, zeek_lines=lines, zeek_logs=("conn",), zeek_compression=("gz",), proxy_and_dns=False,
                days=7, seats=2_000)  # fmt: skip
    started = time.perf_counter()
    made = corpus(Catalogue.load(), spec)
    generated = time.perf_counter() - started
    found: dict[str, dict[str, Any]] = {}
    for fmt, name in FORMATS.items():
        path = made.files[name][0]
        reads, zcats = [], []
        for _ in range(rounds):
            zcats.append(zcat_wc(path))
            reads.append(read_in_child(path))
        read_seconds = statistics.median(r["seconds"] for r in reads)
        zcat_seconds = statistics.median(seconds for seconds, _ in zcats)
        total_lines = zcats[0][1]
        found[fmt] = {
            "file": str(path),
            "file_mb": path.stat().st_size / 2**20,
            "lines": reads[0]["lines"],
            "file_lines": total_lines,  # headers included, as wc -l counts them
            "skipped": reads[0]["skipped"],
            "detected": reads[0]["format"],
            "read_seconds": read_seconds,
            "read_cpu_seconds": statistics.median(r["cpu_seconds"] for r in reads),
            "lines_per_s": reads[0]["lines"] / read_seconds,
            "lines_per_cpu_s": reads[0]["lines"] / statistics.median(r["cpu_seconds"] for r in reads),
            "zcat_wc_seconds": zcat_seconds,
            "ratio_vs_zcat_wc": zcat_seconds / read_seconds,
            "peak_rss_mb": max(r["peak_rss_mb"] for r in reads),
            "rounds": rounds,
        }
    return found, generated


def accuracy(seed: int) -> dict[str, dict[str, Any]]:
    """Per file group of the labelled corpus: recall, false positives and byte mismatches of one read_logs."""
    catalogue = Catalogue.load()
    made = corpus(catalogue, Spec(seed=seed))
    found = {}
    for name, paths in made.files.items():
        result = score(made, FAMILY[name], read_logs(paths, catalogue))
        found[name] = {
            "recall": result.recall,
            "pairs": result.expected_pairs,
            "false_positive_rate": result.false_positive_rate,
            "false_positives": sorted(result.false_positives)[:20],
            "non_ai_hosts": result.non_ai_hosts,
            "wrong_service": len(result.wrong_service),
            "extra_pairs": len(result.extra_pairs),
            "wrong_bytes_pairs": len(result.wrong_bytes),
        }
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=10_000_000, help="lines of the generated Zeek conn log")
    parser.add_argument("--rounds", type=int, default=1, help="reads (and zcat runs) per format; medians reported")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return
    load_before = os.getloadavg()
    formats, generated = speed(args.lines, args.seed, args.rounds)
    load_after = os.getloadavg()
    correct = accuracy(args.seed)
    recall = min(group["recall"] for group in correct.values())
    fpr = max(group["false_positive_rate"] for group in correct.values())
    wrong_bytes = sum(group["wrong_bytes_pairs"] for group in correct.values())
    headline = min(formats, key=lambda fmt: formats[fmt]["ratio_vs_zcat_wc"])
    rows = [
        (
            f"Zeek conn {fmt.upper()}.gz",
            f"{f['lines']:,}",
            f"{f['file_mb']:.0f}",
            f"{f['read_seconds']:.1f} ({f['read_cpu_seconds']:.1f})",
            f"{f['lines_per_s']:,.0f}",
            f"{f['zcat_wc_seconds']:.1f}",
            f"{f['ratio_vs_zcat_wc']:.2f}",
            f"{f['peak_rss_mb']:.0f}",
            "yes" if _met(f) else "no",
        )
        for fmt, f in formats.items()
    ]
    rows.append(("labelled corpus, 7 formats", f"recall {recall:.2%}", "", f"false pos. {fpr:.3%}",
                 f"wrong bytes: {wrong_bytes} pairs", "", "", "",
                 "yes" if recall >= TARGET_RECALL and fpr <= TARGET_FPR and not wrong_bytes else "no"))  # fmt: skip
    data = {
        "zeek_tsv_lines_per_s": round(formats["tsv"]["lines_per_s"]),
        "zeek_json_lines_per_s": round(formats["json"]["lines_per_s"]),
        "ratio_vs_zcat_wc": round(formats[headline]["ratio_vs_zcat_wc"], 3),
        "ratio_headline_format": headline,
        "ratio_vs_zcat_wc_tsv": round(formats["tsv"]["ratio_vs_zcat_wc"], 3),
        "ratio_vs_zcat_wc_json": round(formats["json"]["ratio_vs_zcat_wc"], 3),
        "peak_rss_mb": round(max(f["peak_rss_mb"] for f in formats.values()), 1),
        "recall": round(recall, 5),
        "false_positive_rate": round(fpr, 6),
        "wrong_bytes_pairs": wrong_bytes,
        "formats": formats,
        "accuracy": correct,
        "threads": 1,
        "memory_limit_mb": 256,
        "generation_seconds": round(generated, 1),
        "load_average_before": load_before,
        "load_average_after": load_after,
        "targets": {
            "lines_per_s": TARGET_LINES_PER_S,
            "ratio_vs_zcat_wc": TARGET_RATIO,
            "peak_rss_mb": TARGET_RSS_MB,
            "recall": TARGET_RECALL,
            "false_positive_rate": TARGET_FPR,
        },
    }
    method = (
        f"`python -m benchmarks.discovery --lines {args.lines}`: a generated Zeek conn log of {args.lines:,} lines "
        "(seed-deterministic; benchmarks/_discovery_corpus.py), gzipped, as TSV and as JSON, each read by "
        "`read_logs(threads=1)` in a child process (one core, DuckDB's limit 256 MB; peak RSS is the child's "
        "VmHWM, which includes the interpreter and the imports), beside `zcat FILE | wc -l` on the same file "
        "(zcat+wc; ratio = zcat_wc_seconds / read_seconds; the "
        f"headline ratio is the lower one, {headline.upper()}'s). Accuracy: a labelled corpus the size of "
        "tests/discovery/test_recall.py's (Zeek TSV/JSON plain and gzipped, Squid, BIND, dnsmasq; 10,000+ benign "
        "domains, CDN hosts, near misses and look-alikes) scored per format; the lowest recall and highest "
        f"false-positive rate shown. Load average (1, 5, 15 min) {_load(load_before)} before the reads, "
        f"{_load(load_after)} after, on 2 cores shared with other work. Targets: >= {TARGET_LINES_PER_S:,} lines/s, "
        f"ratio >= {TARGET_RATIO}, RSS < {TARGET_RSS_MB} MB, recall >= 99%, false positives <= 0.1%."
    )
    write_result(
        "discovery",
        title="Shadow-AI discovery: reading Zeek logs",
        method=method,
        columns=[
            "input",
            "lines",
            "MB (gz)",
            "read s (CPU s)",
            "lines/s",
            "zcat+wc s",
            "ratio",
            "peak RSS MB",
            "targets met",
        ],
        rows=rows,
        data=data,
    )


def _met(found: dict[str, Any]) -> bool:
    return bool(
        found["lines_per_s"] >= TARGET_LINES_PER_S
        and found["ratio_vs_zcat_wc"] >= TARGET_RATIO
        and found["peak_rss_mb"] < TARGET_RSS_MB
    )


def _load(averages: tuple[float, float, float]) -> str:
    return ", ".join(f"{value:.1f}" for value in averages)


if __name__ == "__main__":
    main()
