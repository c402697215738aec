"""Security: defences at the boundaries where untrusted text reaches agents and models.

The injection detector scores how likely a text is a prompt injection or a jailbreak. It is defence in depth, a
signal for policies and the audit, never the boundary: detectors are evaded by paraphrase and adaptive attacks.

The PII and secret scan (`scan`, `Scanner`) finds credentials and personal data in any text crossing a boundary
(tool arguments and results, gateway prompts and replies, memory writes), as spans and kinds, never the text.
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
from podium.security._pii import Scanner, count_kinds, redact, require_scanners, scan, scan_output
from podium.security._pii_engine import KINDS, OUTPUT_KINDS, PII_KINDS, SECRET_KINDS, Finding, Kind
from podium.security._training import Labelled, threshold_for, train_detector

__all__ = [
    "KINDS",
    "MAX_CHARS",
    "OUTPUT_KINDS",
    "PII_KINDS",
    "SECRET_KINDS",
    "SHIPPED_FILE",
    "SHIPPED_SHA256",
    "SHIPPED_THRESHOLD",
    "WINDOW_TOKENS",
    "Detector",
    "Finding",
    "Kind",
    "Labelled",
    "Scanner",
    "count_kinds",
    "redact",
    "require_scanners",
    "scan",
    "scan_output",
    "threshold_for",
    "train_detector",
    "windows",
]
