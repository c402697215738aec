"""The bounds of what podium accepts from people, files and the network, checked at the edge with the fix named.

The CLI, the HTTP API and the Python API call the same checks, so they refuse the same values the same way: a
number that is not finite or out of its range, text that is not text (a lone surrogate, a NUL, which no database
column stores) or longer than anyone types, JSON larger than a request should carry.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from podium.errors import UsageError

MAX_MINUTES = 24 * 60.0  # a decision took at most a day of someone's time
MAX_USD = 1e9  # a budget's limit; its nano-USD stay well inside a 64-bit integer
MAX_USD_PER_HOUR = 10_000.0  # a person's loaded rate
MAX_TEXT_CHARS = 10_000  # a note, a rationale, a reason: a page, not a file
MAX_NAME_CHARS = 200  # an id, a name, a label, a filter
MAX_JSON_BYTES = 64 * 1024  # a run's arguments, a reviewer's edit
MAX_LIMIT = 1_000_000  # rows a list returns at once (a program may read them all; a person pages)


def check_number(value: object, what: str, *, low: float, high: float) -> float:
    """`value` as a float, if it is a finite number in [low, high]; otherwise a UsageError naming the range."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise UsageError(f"{what} must be a number from {low:g} to {high:g}, not {type(value).__name__} {value!r}.")
    if not math.isfinite(value) or not low <= value <= high:
        raise UsageError(f"{what}={value!r} is out of range: give a number from {low:g} to {high:g}.")
    return float(value)


def check_count(value: object, what: str, *, low: int = 1, high: int = MAX_LIMIT) -> int:
    """`value` if it is a whole number in [low, high]."""
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise UsageError(f"{what}={value!r} is out of range: give a whole number from {low:,} to {high:,}.")
    return value


def check_text(value: object, what: str, *, max_chars: int = MAX_TEXT_CHARS) -> str:
    """`value` if it is text a database stores as given: valid Unicode without NUL, at most `max_chars` long."""
    if not isinstance(value, str):
        raise UsageError(f"{what} must be text, not {type(value).__name__}.")
    if len(value) > max_chars:
        raise UsageError(f"{what} is {len(value):,} characters long; give at most {max_chars:,}.")
    if "\x00" in value:
        raise UsageError(f"{what} holds a NUL character, which is not text; remove it.")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise UsageError(f"{what} holds a lone surrogate (half a UTF-16 pair), not text; send UTF-8.") from None
    return value


def check_name(value: object, what: str) -> str:
    """`value` if it is a short single-line text (an id, a name, a label)."""
    name = check_text(value, what, max_chars=MAX_NAME_CHARS)
    if any(ord(char) < 32 or ord(char) == 127 for char in name):
        raise UsageError(f"{what} {name!r} holds a control character; give it on one line, as printed.")
    return name


def check_json(value: Any, what: str, *, max_bytes: int = MAX_JSON_BYTES) -> None:
    """Refuse `value` unless it is JSON podium can store and sign: finite numbers, text as `check_text`, at most
    `max_bytes` encoded."""
    _check_json_items(value, what)
    size = len(json.dumps(value, ensure_ascii=False).encode())
    if size > max_bytes:
        raise UsageError(f"{what} is {size:,} bytes of JSON; give at most {max_bytes:,}.")


def _check_json_items(value: Any, what: str) -> None:
    if isinstance(value, float) and not math.isfinite(value):
        raise UsageError(f"{what} holds {value!r}, which JSON has no number for; give a finite number.")
    if isinstance(value, str):
        check_text(value, what, max_chars=MAX_JSON_BYTES)
    elif isinstance(value, Mapping):
        for key, item in value.items():
            check_text(key, f"{what}: a key", max_chars=MAX_NAME_CHARS)
            _check_json_items(item, f"{what}.{key}")
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            _check_json_items(item, f"{what}[{index}]")
