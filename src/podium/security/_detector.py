"""The injection detector: how likely a text is a prompt injection or a jailbreak, from 0 to 1.

Defence in depth, never the boundary: a linear model over word and character n-grams misses paraphrased and
adaptive attacks (benchmarks/RESULTS.md has its measured recall). Its file is a podium TextClassifier file (data,
no pickle), checked against the sha256 recorded here; `python -m benchmarks.train_detector --write` rebuilds it
and rewrites the two constants below.

Every text is hostile input: a text longer than one window (512 whitespace-separated tokens) is scored window by
window (overlapping, so an injection across a boundary is whole in one), and its score is its worst window's. Time
and memory are bounded by MAX_CHARS: a longer text is scored on its first and last MAX_CHARS // 2 characters.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Final

from podium.errors import UsageError
from podium.models import TextClassifier

SHIPPED_FILE: Final = Path(__file__).with_name("injection_detector.npz")
SHIPPED_SHA256: Final = "1e4f8e63d7ffa35a31c5f7fa186e95398739e0af532e2e1696576eaa5541ccdf"
SHIPPED_THRESHOLD: Final = 0.8675371956373957  # 1% false positives on the validation split
RETRAIN_HINT: Final = "Rebuild it: python -m benchmarks.train_detector --write (or reinstall podium)."

WINDOW_TOKENS: Final = 512
STRIDE_TOKENS: Final = 384  # windows overlap by 128 tokens
MAX_WINDOW_CHARS: Final = 8192  # a window of very long "tokens" (binary, base64) is cut by characters too
MAX_CHARS: Final = 1_000_000
_TOKEN = re.compile(r"\S+")
_INJECTION = "1"


class Detector:
    """Scores texts with a trained classifier; `flagged` at the threshold chosen for 1% false positives."""

    def __init__(self, classifier: TextClassifier, threshold: float) -> None:
        if _INJECTION not in classifier.classes or not 0.0 <= threshold <= 1.0:
            raise UsageError(
                f"a detector needs a classifier with class {_INJECTION!r} and a threshold in [0, 1] "
                f"(got classes {classifier.classes}, threshold {threshold}). {RETRAIN_HINT}"
            )
        self.classifier = classifier
        self.threshold = threshold
        self._column = classifier.classes.index(_INJECTION)

    @classmethod
    def load(cls, path: Path, sha256: str, threshold: float) -> Detector:
        """A detector from a classifier file whose bytes hash to `sha256` (ModelFileError if not)."""
        return cls(TextClassifier.load(path, sha256, fix=RETRAIN_HINT), threshold)

    @staticmethod
    @functools.cache
    def shipped() -> Detector:
        """The detector podium ships (loaded and checked once per process)."""
        return Detector.load(SHIPPED_FILE, SHIPPED_SHA256, SHIPPED_THRESHOLD)

    def score(self, text: str) -> float:
        """0..1: the highest injection probability over the text's windows."""
        return self.scores([text])[0]

    def flagged(self, text: str) -> bool:
        return self.score(text) >= self.threshold

    def scores(self, texts: Sequence[str]) -> list[float]:
        """One score per text."""
        return [
            max(float(self.classifier.probabilities_of(piece)[self._column]) for piece in windows(_text(text)))
            for text in texts
        ]


def windows(text: str) -> list[str]:
    """The overlapping windows a text is scored in: one for a text of up to WINDOW_TOKENS tokens."""
    if len(text) > MAX_CHARS:
        half = MAX_CHARS // 2
        return [*windows(text[:half]), *windows(text[-half:])]
    return [piece for begin, end in _token_spans(text) for piece in _cut(text, begin, end)]


def _token_spans(text: str) -> Iterator[tuple[int, int]]:
    starts = [match.start() for match in _TOKEN.finditer(text)]
    if len(starts) <= WINDOW_TOKENS:
        yield 0, len(text)
        return
    for first in range(0, len(starts), STRIDE_TOKENS):
        last = first + WINDOW_TOKENS
        yield starts[first], starts[last] if last < len(starts) else len(text)
        if last >= len(starts):
            return


def _cut(text: str, begin: int, end: int) -> Iterator[str]:
    step = MAX_WINDOW_CHARS * 3 // 4
    while end - begin > MAX_WINDOW_CHARS:
        yield text[begin : begin + MAX_WINDOW_CHARS]
        begin += step
    yield text[begin:end]


def _text(value: object) -> str:
    if not isinstance(value, str):
        raise UsageError(f"the detector scores text (str), not {type(value).__name__}: decode bytes first.")
    return value
