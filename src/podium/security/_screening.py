"""The screening stage: the PII and secret scan and the injection detector at the tool boundary, for Cedar and the
audit. Defence in depth, never the boundary: it refuses nothing itself, and a detector is evaded by paraphrase.

- Before authorisation, a tool call's (or memory write's) arguments are scanned for secrets and personal data: the
  kinds found join the call's `context.data` (as the gateway's scan does for a prompt) and its audit entry
  (`screen_arguments`: kinds and counts, never the text).
- As a tool call's result comes back, before it is recorded, the injection detector scores it: its audit entry says
  `injection_score` (0 to 1) and `injection_flagged`, and the kinds the scan found in it (`screen_result`).
- A prompt entering by the gateway is scored the same way (`screen_prompt`): its score joins the audit entries of
  the request's model calls, and Cedar sees it as below.
- Every later call of the same front door (the run, or the request) carries what was seen so far to Cedar:
  `context.injection_score` (the highest score, in thousandths) and `context.injection_seen` (whether the detector
  flagged any), so a project's policy can make, say, a consequential call after a flagged result wait for a person.
  A run's is read back from its audit entries once per process, so it survives a restart.

The cost per call is bounded: at most `max_scan_chars` of a call's arguments (and of its result) are scanned, and
`max_score_chars` of its result scored; of a longer text, its head and its tail. A call whose text was cut says so
(`screen_truncated`).
"""

from __future__ import annotations

import dataclasses
import json
import threading
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Final

import sqlalchemy as sa

from podium.audit import canonical_json
from podium.errors import ConfigurationError
from podium.governance import CallContext, CallSite, DoorMemory, Screened, Stage, current_door_key
from podium.security._detector import Detector
from podium.security._flows import texts_of
from podium.security._pii import Scanner, require_scanners
from podium.store import reader, tables

MAX_SCAN_CHARS: Final = 16_384  # of a call's arguments, and of its result: ~2 ms of scanning
MAX_SCORE_CHARS: Final = 4_096  # of a tool's result: at most two of the detector's windows, ~2-8 ms
MIN_SCAN_CHARS: Final = 6  # no kind fits in fewer ("a@b.io", "1.2.3.4"): shorter values are not scanned
MAX_DOORS: Final = 4_096  # front doors whose screening one process keeps in memory (a run's is read back)
SCANNED_KINDS: Final = ("tool", "memory.write")  # the calls whose arguments carry data out
PII_FIX: Final = "pip install 'podium[api]'"
_DEFAULT: Any = object()
_audit = tables.audit_log


@dataclass
class _Seen:
    """What the injection detector made of the tool results read in one front door so far."""

    score: int = 0  # thousandths
    flagged: bool = False

    def screened(self) -> Screened:
        return Screened(self.score, self.flagged)


class Screening(Stage):
    """Scans arguments, scores results, and tells Cedar what was seen (see the module's docstring)."""

    name: ClassVar[str] = "screening"

    def __init__(
        self,
        engine: sa.Engine,
        *,
        detector: Detector | None = None,
        scanner: Scanner | None = _DEFAULT,
        max_scan_chars: int = MAX_SCAN_CHARS,
        max_score_chars: int = MAX_SCORE_CHARS,
    ) -> None:
        """`detector`: the shipped one unless given (loaded at the first tool call, ~0.6 s once per process).
        `scanner`: the default PII and secret scan if its packages are installed (the `api` extra); None scans
        nothing, and says so in each audit entry that had arguments to scan."""
        self._reader = reader(engine)
        self._detector = detector
        self.scanner = _default_scanner() if scanner is _DEFAULT else scanner
        self.max_scan_chars = max_scan_chars
        self.max_score_chars = max_score_chars
        self._doors: DoorMemory[_Seen] = DoorMemory(MAX_DOORS)
        self._lock = threading.Lock()

    @property
    def detector(self) -> Detector:
        if self._detector is None:
            self._detector = Detector.shipped()
        return self._detector

    def check(self, ctx: CallContext) -> None:
        call = ctx.call
        ctx.screened = self.screened(ctx.site)
        if call.kind == "tool":
            _ = self.detector  # loaded (or its file refused) before the tool runs, not after
        if call.kind not in SCANNED_KINDS or not call.arguments:
            return
        if self.scanner is None:
            ctx.detail["screen_skipped"] = f"no PII or secret scan: {PII_FIX}"
            return
        found, cut = self._scan(texts_of(tuple(call.arguments.values())))
        if found:
            ctx.call = dataclasses.replace(call, data=call.data | found.keys())
            ctx.detail["screen_arguments"] = canonical_json(found)
        if cut:
            ctx.detail["screen_truncated"] = f"arguments: scanned {cut}"

    async def run(self, ctx: CallContext, proceed: Callable[[], Awaitable[Any]]) -> Any:
        result = await proceed()
        if ctx.call.kind == "tool":
            self._screen_result(ctx, result)
        return result

    def screen_prompt(self, messages: Sequence[Any]) -> dict[str, str]:
        """Score a prompt entering by the gateway (its messages' text) and note it for the front door in force (the
        request), so Cedar sees it as `context.injection_*` for the request's model calls; returns what joins their
        audit entries (the score, never the text)."""
        texts = [text for m in messages if isinstance(m, Mapping) for text in _message_texts(m.get("content"))]
        detail: dict[str, str] = {}
        score, flagged = self._score(texts, detail, "prompt")
        self._note(self._seen_at(current_door_key(), None), score, flagged)
        return detail

    def _score(self, texts: list[str], detail: dict[str, str], what: str) -> tuple[float, bool]:
        """The detector's score of `texts` (head and tail within `max_score_chars`), written into `detail`."""
        pieces, cut = _bounded("\n".join(texts), self.max_score_chars)
        score = max(self.detector.scores([p for p in pieces if p.strip()]), default=0.0)
        flagged = score >= self.detector.threshold
        detail["injection_score"] = f"{score:.3f}"
        if flagged:
            detail["injection_flagged"] = "true"
        if cut:
            detail["screen_truncated"] = f"{what}: scored {cut}"
        return score, flagged

    def _note(self, seen: _Seen, score: float, flagged: bool) -> None:
        with self._lock:
            seen.score = max(seen.score, round(score * 1000))
            seen.flagged = seen.flagged or flagged

    def _screen_result(self, ctx: CallContext, result: Any) -> None:
        """Score what a tool returned and scan it; what was seen joins the audit entry and the front door's record."""
        texts = list(texts_of(result))
        scored: dict[str, str] = {}
        score, flagged = self._score(texts, scored, "result")
        truncated = [scored.pop("screen_truncated")] if "screen_truncated" in scored else []
        ctx.detail.update(scored)
        if self.scanner is not None:
            found, scan_cut = self._scan(texts)
            if found:
                ctx.detail["screen_result"] = canonical_json(found)
            truncated += [f"result: scanned {scan_cut}"] if scan_cut else []
        if truncated:
            earlier = ctx.detail.get("screen_truncated")
            ctx.detail["screen_truncated"] = "; ".join([*([earlier] if earlier else []), *truncated])
        self._note(self._seen(ctx.site), score, flagged)

    def _scan(self, texts: Iterable[str]) -> tuple[dict[str, int], str]:
        """The kinds found in `texts` and how many of each, each text scanned on its own (two values side by side
        make no card number) within `max_scan_chars` in all; and, if some text was cut, how much was scanned."""
        assert self.scanner is not None
        found: Counter[str] = Counter()
        budget = total = 0
        for text in texts:
            total += len(text)
            if len(text) < MIN_SCAN_CHARS or budget >= self.max_scan_chars:
                continue
            pieces, _ = _bounded(text, self.max_scan_chars - budget)
            for piece in pieces:
                budget += len(piece)
                found.update(finding.kind for finding in self.scanner.scan(piece))
        cut = f"{budget:,} of {total:,} chars" if total > self.max_scan_chars else ""
        return dict(sorted(found.items())), cut

    def screened(self, site: CallSite) -> Screened:
        """What the front door of `site` has seen so far, as Cedar is told it."""
        return self._seen(site).screened()

    def _seen(self, site: CallSite) -> _Seen:
        """What the front door of `site` has seen (a run's is read back from its audit entries once per process)."""
        return self._seen_at(site.door_key, site.run_id if site.door == "workflow" else None)

    def _seen_at(self, key: str, run_id: str | None) -> _Seen:
        return self._doors.get(key, lambda: self._load(run_id) if run_id else _Seen())

    def _load(self, run_id: str) -> _Seen:
        query = sa.select(_audit.c.detail).where(
            _audit.c.run_id == run_id, _audit.c.action == "tool.call", _audit.c.detail.contains('"injection_score"')
        )
        seen = _Seen()
        with self._reader.connect() as conn:
            for (detail,) in conn.execute(query):
                recorded = json.loads(detail)
                seen.score = max(seen.score, round(float(recorded["injection_score"]) * 1000))
                seen.flagged = seen.flagged or recorded.get("injection_flagged") == "true"
        return seen


def _bounded(text: str, limit: int) -> tuple[list[str], str]:
    """`text` whole, or its head and its tail within `limit` characters (screened apart: the two together make
    no finding); and, if it was cut, how much of it was kept."""
    if len(text) <= limit:
        return [text], ""
    head = limit // 2
    pieces = [text[:head], text[len(text) - (limit - head) :]] if limit > 1 else []
    return pieces, f"{limit:,} of {len(text):,} chars"


def _message_texts(content: Any) -> list[str]:
    """The text of a chat message's content: a string, or the text parts of a list (images are not scored)."""
    if isinstance(content, str):
        return [content]
    if isinstance(content, list):
        return [part["text"] for part in content if isinstance(part, Mapping) and isinstance(part.get("text"), str)]
    return []


def _default_scanner() -> Scanner | None:
    """podium's PII and secret scan, if its packages (the `api` extra) are installed."""
    try:
        require_scanners()
    except ConfigurationError:
        return None
    return Scanner()
