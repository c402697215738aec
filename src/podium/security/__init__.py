"""Security: defences at the boundaries where untrusted text reaches agents and models.

The injection detector scores how likely a text is a prompt injection or a jailbreak. It is defence in depth, a
signal for policies and the audit, never the boundary: detectors are evaded by paraphrase and adaptive attacks.

Information flow (`InformationFlow`, a stage of the governor) labels what agents read and makes a consequential
call driven by untrusted data wait for a person; `trust` vouches for an input. See docs/security.md. Egress
(`Egress`, a stage too) lets an agent reach only the URLs a Cedar `egress` policy permits it (docs/tools.md).

The PII and secret scan (`scan`, `Scanner`) finds credentials and personal data in any text crossing a boundary
(tool arguments and results, gateway prompts and replies, memory writes), as spans and kinds, never the text.
Screening (`Screening`, a stage) runs it on tool arguments and results and scores results with the detector, for
Cedar's context and the audit (docs/screening.md).
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
from podium.security._egress import Egress, is_url
from podium.security._flows import FlowLog, Origin, texts_of
from podium.security._pii import Scanner, count_kinds, redact, require_scanners, scan, scan_output
from podium.security._pii_engine import KINDS, OUTPUT_KINDS, PII_KINDS, SECRET_KINDS, Finding, Kind
from podium.security._screening import Screening
from podium.security._stage import InformationFlow, trust
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
    "Egress",
    "Finding",
    "FlowLog",
    "InformationFlow",
    "Kind",
    "Labelled",
    "Origin",
    "Scanner",
    "Screening",
    "count_kinds",
    "is_url",
    "redact",
    "require_scanners",
    "scan",
    "scan_output",
    "texts_of",
    "threshold_for",
    "train_detector",
    "trust",
    "windows",
]
