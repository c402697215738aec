"""Rebuild the injection detector podium ships: `python -m benchmarks.train_detector [--write]`.

Deterministic: the same data and seed give the same file, byte for byte (its sha256 is printed). With --write it
replaces src/podium/security/injection_detector.npz and rewrites the sha256 and threshold recorded in
src/podium/security/_detector.py. The split is benchmarks/_injection_data.py's; the test split is never used here.
"""

from __future__ import annotations

import argparse
import hashlib
import re
import time
from collections.abc import Sequence
from pathlib import Path

from benchmarks._injection_data import DATA, Example, split
from podium.security import SHIPPED_FILE, Detector, Labelled, train_detector

DETECTOR_SOURCE = Path(__file__).parents[1] / "src" / "podium" / "security" / "_detector.py"
SEED = 0
# BIPIA's clean e-mails each carry ~5 poisoned copies in the data; weighting them as much keeps the model on the
# injected instruction rather than on the e-mail around it.
WEIGHTS = {("bipia", 0): 5.0}


def labelled(examples: Sequence[Example]) -> list[Labelled]:
    return [Labelled(e.text, bool(e.label), WEIGHTS.get((e.dataset, e.label), 1.0)) for e in examples]


def build(data: Path = DATA, seed: int = SEED, *, leave_out: str | None = None) -> Detector:
    """Train on the train split (without the set `leave_out`, if given), tuned on the validation split."""
    parts = split(data, seed)
    kept = [e for e in parts.train if e.dataset != leave_out]
    validation = [e for e in parts.validation if e.dataset != leave_out]
    return train_detector(labelled(kept), labelled(validation), seed=seed)


def record(data: bytes, threshold: float) -> None:
    """Write the file and the constants that pin it."""
    SHIPPED_FILE.write_bytes(data)
    source = DETECTOR_SOURCE.read_text()
    source = re.sub(r'SHIPPED_SHA256: Final = "[0-9a-f]{64}"', f'SHIPPED_SHA256: Final = "{_sha256(data)}"', source)
    source = re.sub(r"SHIPPED_THRESHOLD: Final = [0-9.e-]+", f"SHIPPED_THRESHOLD: Final = {threshold!r}", source)
    DETECTOR_SOURCE.write_text(source)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="replace the shipped file and its recorded sha256")
    parser.add_argument("--seed", type=int, default=SEED)
    args = parser.parse_args()
    started = time.perf_counter()
    detector = build(seed=args.seed)
    data = detector.classifier.to_bytes()
    took = time.perf_counter() - started
    print(
        f"trained in {took:.1f} s: {len(data) / 1e6:.2f} MB, threshold {detector.threshold!r}, sha256 {_sha256(data)}"
    )
    if args.write:
        record(data, detector.threshold)
        print(f"wrote {SHIPPED_FILE} and the sha256 and threshold in {DETECTOR_SOURCE}")


if __name__ == "__main__":
    main()
