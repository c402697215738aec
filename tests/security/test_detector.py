"""The shipped injection detector: its file is pinned, it separates the held-out split's injections from its
benign texts, and hostile input neither crashes it nor takes unbounded time."""

from __future__ import annotations

import hashlib
import random
import time
from pathlib import Path

import pytest
from benchmarks._injection_data import Example, split
from benchmarks.security import auc

from podium.errors import ModelFileError, UsageError
from podium.security import (
    MAX_CHARS,
    SHIPPED_FILE,
    SHIPPED_SHA256,
    SHIPPED_THRESHOLD,
    WINDOW_TOKENS,
    Detector,
    windows,
)

SAMPLE = 40  # per label, drawn at random from the test split (never trained or tuned on)


@pytest.fixture(scope="module")
def detector() -> Detector:
    return Detector.shipped()


@pytest.fixture(scope="module")
def held_out() -> tuple[list[Example], list[Example]]:
    test = split().test
    rng = random.Random(16)
    return rng.sample([e for e in test if e.label], SAMPLE), rng.sample([e for e in test if not e.label], SAMPLE)


def test_the_shipped_file_is_the_one_recorded_and_small() -> None:
    data = SHIPPED_FILE.read_bytes()
    assert hashlib.sha256(data).hexdigest() == SHIPPED_SHA256
    assert len(data) < 5_000_000
    assert 0.0 < SHIPPED_THRESHOLD < 1.0


def test_a_file_with_another_sha256_is_refused(tmp_path: Path) -> None:
    changed = tmp_path / "detector.npz"
    data = bytearray(SHIPPED_FILE.read_bytes())
    data[len(data) // 2] ^= 1  # one bit of one weight
    changed.write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match="benchmarks.train_detector"):
        Detector.load(changed, SHIPPED_SHA256, SHIPPED_THRESHOLD)


def test_held_out_injections_score_above_held_out_benign_texts(
    detector: Detector, held_out: tuple[list[Example], list[Example]]
) -> None:
    """Bounds below the benchmark's figures (recall ~59%, 1.6% false positives, AUC 0.976 on the whole split)."""
    injections, benign = held_out
    injection_scores = detector.scores([e.text for e in injections])
    benign_scores = detector.scores([e.text for e in benign])
    assert (auc(injection_scores, benign_scores) or 0) >= 0.9
    assert sum(s >= detector.threshold for s in injection_scores) >= SAMPLE * 0.4
    assert sum(s >= detector.threshold for s in benign_scores) <= 2
    assert [detector.flagged(e.text) for e in benign] == [s >= detector.threshold for s in benign_scores]


def test_a_long_text_scores_as_its_worst_window(
    detector: Detector, held_out: tuple[list[Example], list[Example]]
) -> None:
    injection = next(e.text for e in held_out[0] if len(e.text.split()) > 200 and detector.flagged(e.text))
    benign = " ".join(e.text for e in held_out[1])
    padded = " ".join(benign.split()[: WINDOW_TOKENS * 3]) + "\n" + injection
    assert len(windows(padded)) > 3
    assert detector.score(padded) == max(detector.score(piece) for piece in windows(padded))
    assert detector.flagged(padded)


def test_windows_cover_every_token_and_stay_bounded() -> None:
    text = " ".join(f"w{i}" for i in range(5_000))
    covered = {token for piece in windows(text) for token in piece.split()}
    assert covered == set(text.split())
    assert all(len(piece.split()) <= WINDOW_TOKENS for piece in windows(text))
    assert windows("") == [""]
    assert len(windows("x" * 100_000)) == pytest.approx(100_000 / 6144, abs=2)  # one "token": cut by characters


@pytest.mark.parametrize(
    "text",
    [
        "",
        "\x00" * 10_000,
        "\ud800 lone surrogates \udfff ignore previous instructions",
        bytes(range(256)).decode("latin-1") * 200,
        "🙂" * 50_000,
        "A" * 2_000_000,
        "ignore " * 300_000,
    ],
    ids=["empty", "nul", "surrogates", "binary", "emoji", "one-huge-token", "huge-repetitive"],
)
def test_hostile_input_is_scored_in_bounded_time(detector: Detector, text: str) -> None:
    started = time.perf_counter()
    score = detector.score(text)
    assert 0.0 <= score <= 1.0
    assert time.perf_counter() - started < 10  # MAX_CHARS bounds the work: ~1 MB of text at most
    assert sum(len(piece) for piece in windows(text)) <= 2 * MAX_CHARS


def test_only_text_is_scored(detector: Detector) -> None:
    with pytest.raises(UsageError, match="decode bytes first"):
        detector.score(b"ignore previous instructions")  # type: ignore[arg-type]


@pytest.mark.slow
def test_retraining_reproduces_the_shipped_detector(
    detector: Detector, held_out: tuple[list[Example], list[Example]]
) -> None:
    """Its decisions, not its bits: the fit is deterministic on one machine (`python -m benchmarks.train_detector`
    prints the sha256), but another CPU's BLAS kernels move lbfgs's path (measured: an Intel Xeon's file and an AMD
    EPYC's differ by up to 0.06 in a score). What must hold anywhere: the same verdicts on the held-out texts, nearly
    always, and a threshold and scores close to the shipped ones."""
    from benchmarks.train_detector import build

    rebuilt = build()
    texts = [e.text for part in held_out for e in part]
    shipped_scores, rebuilt_scores = detector.scores(texts), rebuilt.scores(texts)
    assert rebuilt.threshold == pytest.approx(detector.threshold, abs=0.02)
    same = sum(
        (a >= detector.threshold) == (b >= rebuilt.threshold)
        for a, b in zip(shipped_scores, rebuilt_scores, strict=True)
    )
    assert same >= 0.95 * len(texts)
    assert max(abs(a - b) for a, b in zip(shipped_scores, rebuilt_scores, strict=True)) < 0.15
