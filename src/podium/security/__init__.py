"""Security: defences at the boundaries where untrusted text reaches agents and models.

The injection detector scores how likely a text is a prompt injection or a jailbreak. It is defence in depth, a
signal for policies and the audit, never the boundary: detectors are evaded by paraphrase and adaptive attacks.
"""

from podium.security._detector import (
    MAX_CHARS,
    SHIPPED_FILE,
    SHIPPED_SHA256,
    SHIPPED_THRESHOLD,
    WINDOW_TOKENS,
    Detector,
    windows,
)
from podium.security._training import Labelled, threshold_for, train_detector

__all__ = [
    "MAX_CHARS",
    "SHIPPED_FILE",
    "SHIPPED_SHA256",
    "SHIPPED_THRESHOLD",
    "WINDOW_TOKENS",
    "Detector",
    "Labelled",
    "threshold_for",
    "train_detector",
    "windows",
]
