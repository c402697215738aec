"""The engine of the PII and secret scan (`podium.security._pii`): patterns run window by window over a text, refined
and widened by validators, and settled into non-overlapping findings; and the Unicode normalisation that runs first.

Time is linear in the length of the text, whatever it holds: every pattern runs over windows of `_WINDOW`
characters (overlapping by `OVERLAP`, longer than any span a pattern recognises), so even a pattern that
backtracks badly on some input does bounded work per window. Nothing is truncated: all of a long text is scanned.
Patterns that are slow per character (case-insensitive keyword alternations) run only near an anchor that a fast
pattern finds first (`Anchor`).
"""

from __future__ import annotations

import bisect
import importlib
import itertools
import re
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Literal, get_args

from podium.errors import ConfigurationError

Kind = Literal["private_key", "aws_key", "api_key", "jwt", "password", "iban", "credit_card", "email", "ip", "phone"]
# By priority: where spans overlap, the first kind names the redaction, and a finding inside one of a kind before
# it is dropped (the digits of an IBAN are no card number).
KINDS: tuple[Kind, ...] = get_args(Kind)
SECRET_KINDS: frozenset[Kind] = frozenset({"private_key", "aws_key", "api_key", "jwt", "password"})
PII_KINDS: frozenset[Kind] = frozenset({"credit_card", "iban", "email", "ip", "phone"})
# What a model's reply must not carry by default: credentials, and card numbers (a reply that quotes the user's
# own e-mail address or a documentation IP address is normal).
OUTPUT_KINDS: frozenset[Kind] = SECRET_KINDS | {"credit_card"}

PRIORITY = {kind: rank for rank, kind in enumerate(KINDS)}
_WINDOW = 4096
OVERLAP = 1280  # > the longest bounded span: GitLab agent tokens (1,032), e-mail addresses (~600)
_EXTRA_FIX = "The PII and secret scan comes with the `api` extra: pip install 'podium[api]'."


@dataclass(frozen=True, slots=True, order=True)
class Finding:
    """A forbidden span `text[start:end]` of some kind. It never holds the text itself."""

    start: int
    end: int
    kind: Kind


# --- The engine ---------------------------------------------------------------------------------------------------

# A refiner looks at a candidate a pattern found and returns the spans inside it that really are of its kind
# (relative to the candidate): none when it is not. A widener moves a finding's edges in the whole text (or,
# returning None, rejects it).
Refine = Callable[[str], list[tuple[int, int]]]
Widen = Callable[[str, int, int], tuple[int, int] | None]


@dataclass(frozen=True)
class Anchor:
    """Where a slow pattern can match: near what `regex` finds (in the text with ASCII lower-cased if `lower`).
    With `exact`, the pattern must start where the anchor starts; otherwise it may start up to `before` characters
    earlier, and it may end up to `after` characters after the anchor's end."""

    regex: re.Pattern[str]
    before: int = 0
    after: int = OVERLAP
    lower: bool = False
    exact: bool = False


@dataclass(frozen=True)
class Pattern:
    kind: Kind
    regex: re.Pattern[str]
    group: int = 0  # the group that holds the secret; the whole match when it did not take part
    refine: Refine | None = None
    widen: Widen | None = None
    anchor: Anchor | None = None


class Context:
    """One scan's text and what its patterns share: the text lower-cased (for the anchors that ignore case) and
    each anchor's hits, found once for all the patterns that use it. Anchor patterns are simple and linear, so
    they run over the whole text rather than window by window."""

    def __init__(self, text: str) -> None:
        self.text = text
        self._lowered: str | None = None
        self._hits: dict[Anchor, tuple[list[int], list[int]]] = {}

    def hits(self, anchor: Anchor, start: int, end: int) -> Iterator[tuple[int, int]]:
        """The anchor's hits that start in [start, end)."""
        if anchor not in self._hits:
            haystack = self._lower() if anchor.lower else self.text
            spans = [hit.span() for hit in anchor.regex.finditer(haystack)]
            self._hits[anchor] = ([s for s, _ in spans], [e for _, e in spans])
        starts, ends = self._hits[anchor]
        for index in range(bisect.bisect_left(starts, start), bisect.bisect_left(starts, end)):
            yield starts[index], ends[index]

    def _lower(self) -> str:
        # str.lower() is fast and keeps every offset unless a character grows ('İ' does): then ASCII only.
        if self._lowered is None:
            lowered = self.text.lower()
            self._lowered = lowered if len(lowered) == len(self.text) else self.text.translate(_ASCII_LOWER)
        return self._lowered


_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


class Claimed:
    """Spans already found, to test a candidate against in O(log n)."""

    def __init__(self, findings: Iterable[Finding]) -> None:
        spans = sorted((f.start, f.end) for f in findings)
        self._starts = [start for start, _ in spans]
        self._furthest = list(itertools.accumulate((end for _, end in spans), max))

    def overlaps(self, start: int, end: int) -> bool:
        before = bisect.bisect_left(self._starts, end)  # spans that start before `end`
        return before > 0 and self._furthest[before - 1] > start


def _windows(length: int) -> Iterator[tuple[int, int, int]]:
    """Each window's start and end, and where the next one starts (the end of the text for the last): a window owns
    the matches that start before that, which end inside it, whole; a later match may be cut short at its end (an
    address's ".co" of ".co.uk") and is the next window's to find."""
    start = 0
    while True:
        if start + _WINDOW >= length:
            yield start, length, length
            return
        yield start, start + _WINDOW, start + _WINDOW - OVERLAP
        start += _WINDOW - OVERLAP


def run_pattern(pattern: Pattern, context: Context, claimed: Claimed | None) -> Iterator[Finding]:
    text = context.text
    covered = 0  # the end of the last finding: one that starts inside it merges with it, so needs no more work
    for window_start, window_end, next_start in _windows(len(text)):
        for match in _matches(pattern, context, window_start, window_end):
            if match.start() >= next_start:
                continue
            start, end = match.span(pattern.group) if match.start(pattern.group) >= 0 else match.span()
            if start == end or (claimed is not None and claimed.overlaps(start, end)):
                continue
            if pattern.widen is not None and start < covered:
                continue
            spans = [(start, end)]
            if pattern.refine is not None:
                spans = [
                    (start + inner_start, start + inner_end)
                    for inner_start, inner_end in pattern.refine(text[start:end])
                ]
            for span in spans:
                widened = pattern.widen(text, *span) if pattern.widen is not None else span
                if widened is not None:
                    covered = max(covered, widened[1])
                    yield Finding(widened[0], widened[1], pattern.kind)


def _matches(pattern: Pattern, context: Context, start: int, end: int) -> Iterator[re.Match[str]]:
    text, anchor = context.text, pattern.anchor
    if anchor is None:
        yield from pattern.regex.finditer(text, start, end)
        return
    if anchor.exact:
        resume = start  # where the last match ended: matches do not overlap, as with finditer
        for hit_start, hit_end in context.hits(anchor, start, end):
            if hit_start >= resume:
                match = pattern.regex.match(text, hit_start, min(end, hit_end + anchor.after))
                if match is not None:
                    resume = match.end()
                    yield match
        return
    # The stretches near the hits, merged, so that dense hits ("::::") scan each character once, not once a hit.
    stretch: tuple[int, int] | None = None
    for hit_start, hit_end in context.hits(anchor, start, end):
        near = (max(start, hit_start - anchor.before), min(end, hit_end + anchor.after))
        if stretch is not None and near[0] <= stretch[1]:
            stretch = (stretch[0], max(stretch[1], near[1]))
            continue
        if stretch is not None:
            yield from pattern.regex.finditer(text, *stretch)
        stretch = near
    if stretch is not None:
        yield from pattern.regex.finditer(text, *stretch)


def settle(found: Iterable[Finding]) -> list[Finding]:
    merged: list[Finding] = []
    for kind in KINDS:
        for finding in sorted(f for f in found if f.kind == kind):
            if merged and merged[-1].kind == kind and finding.start < merged[-1].end:
                last = merged.pop()
                merged.append(Finding(last.start, max(last.end, finding.end), kind))
            else:
                merged.append(finding)
    # Drop what lies inside a finding of a higher-ranked kind, in one sweep: by start, longest and highest-ranked
    # first, remembering for each kind the furthest end of its findings that started at or before this one.
    merged.sort(key=lambda f: (f.start, -f.end, PRIORITY[f.kind]))
    furthest_end = [-1] * len(KINDS)
    kept: list[Finding] = []
    for finding in merged:
        rank = PRIORITY[finding.kind]
        if max(furthest_end[:rank], default=-1) < finding.end:
            kept.append(finding)
        furthest_end[rank] = max(furthest_end[rank], finding.end)
    return sorted(kept)


def import_scanner(module: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ConfigurationError(f"{module} is not installed. {_EXTRA_FIX}") from exc


# --- Unicode: what a pattern sees -------------------------------------------------------------------------------

# Characters that render as nothing, inserted to split a number or a key so that no pattern sees it whole: zero-width
# space, non-joiner and joiner, word joiner, byte-order mark, soft hyphen, Mongolian vowel separator.
_INVISIBLE = frozenset("\u200b\u200c\u200d\u2060\ufeff\u00ad\u180e")
_NON_ASCII = re.compile(r"[^\x00-\x7f]+")


def normalise(text: str) -> tuple[str, list[int] | None]:
    """The text the patterns read, and where each of its characters came from in `text` (None when they are the
    same). Each non-ASCII character is replaced by its own NFKC form (a no-break space becomes a space, a fullwidth
    digit a digit) and invisible characters are dropped. Character by character rather than the whole string, so
    the work is linear and every character of the result maps to one of the original: combining sequences are left
    as they are (NFKC of one character never looks at its neighbours)."""
    if text.isascii():
        return text, None
    pieces: list[str] = []
    origins: list[int] = []
    cursor = 0
    for run in _NON_ASCII.finditer(text):
        pieces.append(text[cursor : run.start()])
        origins.extend(range(cursor, run.start()))
        for at in range(run.start(), run.end()):
            char = text[at]
            if char in _INVISIBLE:
                continue
            form = unicodedata.normalize("NFKC", char)
            pieces.append(form)
            origins.extend([at] * len(form))
        cursor = run.end()
    pieces.append(text[cursor:])
    origins.extend(range(cursor, len(text)))
    return "".join(pieces), origins


def map_back(findings: Iterable[Finding], origins: list[int] | None) -> list[Finding]:
    """Findings in the normalised text, as spans of the original (`normalise`'s `origins`): order is kept, since the
    mapping only ever moves forward."""
    if origins is None:
        return list(findings)
    return [Finding(origins[f.start], origins[f.end - 1] + 1, f.kind) for f in findings]
