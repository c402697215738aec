"""The shadow sample of routed requests: which served answers are also put to the strongest model, and whether two
answers agree. Shared by the workflow route stage and the gateway's `podium/auto`, so both sample and compare alike.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable

Said = tuple[object, tuple[tuple[str, str], ...]]  # an answer's text (as JSON if it is JSON) and its tool calls
SHADOW_OF = "route_shadow_of"  # a shadow call's audit detail: the model whose answer it shadows


def in_shadow_sample(key: str, rate: float) -> bool:
    """Whether the served call or request `key` is shadowed at `rate`: drawn from the key, so a step that runs again
    after a crash (or a client's retry) draws the same, and every process samples alike."""
    drawn = int.from_bytes(hashlib.sha256(f"shadow:{key}".encode()).digest()[:8], "big") / 2**64
    return drawn < rate


def said(text: str, calls: Iterable[tuple[str, object]]) -> Said | None:
    """What an answer says, to compare: its text and the tools it calls with their arguments (a mapping, or the
    JSON text a provider sent); None if neither."""
    text = text.strip()
    named = tuple((name, _arguments(arguments)) for name, arguments in calls)
    if not text and not named:
        return None
    try:
        meaning: object = json.loads(text, parse_constant=str)  # NaN stays a word, so it equals itself
    except ValueError:
        meaning = " ".join(text.casefold().split()).strip(" .,;:!?\"'`")
    return meaning, named


def answers_agree(served: Said | None, shadow: Said | None) -> bool | None:
    """Whether two answers say the same: the same tool calls, and the same JSON or the same text ignoring case,
    runs of whitespace and the punctuation around them; None when one says nothing to compare. Meant for answers
    that are labels, numbers, records or tool calls: two free-text drafts rarely agree word for word."""
    if served is None or shadow is None:
        return None
    return served == shadow


def _arguments(arguments: object) -> str:
    if isinstance(arguments, str):
        try:
            return json.dumps(json.loads(arguments, parse_constant=str), sort_keys=True)
        except ValueError:
            return arguments  # not JSON: compared as sent
    return json.dumps(arguments, sort_keys=True)
