"""How the injection detector is trained: deterministic, CPU only, about a minute on one core.

Training units are the detector's own windows: an injection's first window (a jailbreak states itself up front; a
later window of a long one may be ordinary text) and up to eight windows of a benign text. Logistic regression
over TF-IDF word 1-2-grams and character 2-5-grams (class-balanced), then Platt scaling on the validation split,
folded into the weights, so the file stays a plain TextClassifier and scores are calibrated probabilities. The
threshold is the lowest that flags at most 1% of the validation split's benign texts.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from podium.errors import InputDataError
from podium.models import TextClassifier
from podium.security._detector import Detector, windows

MAX_FALSE_POSITIVES: float = 0.01
_BENIGN_WINDOWS = 8
_WORD_TOKENS = r"(?u)\b\w\w+\b"  # the pattern TextClassifier files use


@dataclass(frozen=True)
class Labelled:
    text: str
    injection: bool
    weight: float = 1.0


def train_detector(train: Sequence[Labelled], validation: Sequence[Labelled], *, seed: int = 0) -> Detector:
    """Fit on `train`, calibrate and pick the threshold on `validation`; the same inputs give the same file."""
    for name, part in (("train", train), ("validation", validation)):
        if {example.injection for example in part} != {False, True}:
            raise InputDataError(f"the {name} split needs injections and benign texts both. Check the data.")
    texts, labels, weights = [], [], []
    for example in train:
        pieces = windows(example.text)
        for piece in pieces[:1] if example.injection else pieces[:_BENIGN_WINDOWS]:
            texts.append(piece)
            labels.append(int(example.injection))
            weights.append(example.weight)
    pipeline = _fit(texts, labels, weights, seed)
    raw = Detector(TextClassifier.from_pipeline(pipeline), 0.5)
    scores = raw.scores([example.text for example in validation])
    slope, offset = _platt([_logit(s) for s in scores], [example.injection for example in validation])
    linear = pipeline.steps[-1][1]
    linear.coef_ = linear.coef_ * slope
    linear.intercept_ = linear.intercept_ * slope + offset
    calibrated = Detector(TextClassifier.from_pipeline(pipeline), 0.5)
    benign = [
        s for s, e in zip(calibrated.scores([e.text for e in validation]), validation, strict=True) if not e.injection
    ]
    return Detector(calibrated.classifier, threshold_for(benign, MAX_FALSE_POSITIVES))


def threshold_for(benign_scores: Sequence[float], max_false_positives: float) -> float:
    """The lowest threshold that flags at most `max_false_positives` of these benign scores."""
    ranked = sorted(benign_scores, reverse=True)
    allowed = math.floor(max_false_positives * len(ranked))
    return min(1.0, math.nextafter(ranked[allowed], 2.0)) if allowed < len(ranked) else 0.0


def _fit(texts: list[str], labels: list[int], weights: list[float], seed: int) -> Any:
    import numpy as np
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import FeatureUnion, make_pipeline

    features = FeatureUnion(
        [
            (
                "words",
                TfidfVectorizer(
                    ngram_range=(1, 2), sublinear_tf=True, min_df=2, max_features=30_000, token_pattern=_WORD_TOKENS
                ),
            ),
            (
                "chars",
                TfidfVectorizer(
                    analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True, min_df=2, max_features=60_000
                ),
            ),
        ]
    )
    linear = LogisticRegression(C=10.0, max_iter=2000, class_weight="balanced", random_state=seed)
    pipeline = make_pipeline(features, linear)
    pipeline.fit(texts, np.asarray(labels), logisticregression__sample_weight=np.asarray(weights))
    return pipeline


def _logit(p: float) -> float:
    p = min(max(p, 1e-12), 1 - 1e-12)
    return math.log(p / (1 - p))


def _platt(logits: list[float], injections: list[bool]) -> tuple[float, float]:
    """Slope and offset of a one-feature logistic regression of the label on the logit."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    fitted = LogisticRegression(C=1e6, max_iter=1000).fit(np.asarray(logits).reshape(-1, 1), np.asarray(injections))
    return float(fitted.coef_[0, 0]), float(fitted.intercept_[0])
