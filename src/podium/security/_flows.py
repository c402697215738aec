"""Labels on what agents read, and tracing a value back to them.

Every text an agent reads through the governor is recorded under its front door (the run, or the request) with a
label: trusted (the workflow's input, the operator, what `trust` vouches for) or untrusted (tool results, and a
model's output once untrusted data was in reach of its context), and the data scopes it came from. A value about
to reach a sink is traced to what it was copied from:

- whole: the value occurs in a recorded text ("DE89 3704 …" in an e-mail; a short value only as a whole token);
- a passage: it shares a run of `PASSAGE_WORDS` words with a recorded text (a copied paragraph in a reply);
- a marker: it contains an identifier-like token of a recorded text (an IBAN, an address, a URL, a code).

A value that occurs whole in trusted text is trusted, whatever else holds it. What an agent composes from nothing it
read is its own. Tracing by copy is exact for code that copies values; for a model, whose output can paraphrase,
the stage labels the whole output untrusted once untrusted data was in reach (the sound rule), so what it proposes
traces to that.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

PASSAGE_WORDS = 6  # a run of this many words shared with untrusted text marks a passage as copied from it
MIN_SUBSTRING = 4  # a shorter value is traced only as a whole token ("42", "EUR"), not as any substring
MAX_RECORDS = 10_000  # past this many untrusted texts in one door, every value counts as untrusted (sound, bounded)
_WORD = re.compile(r"\w+")
_MARKER = re.compile(r"[\w.+-]*\d[\w.+/-]*|[\w.+-]+@[\w.-]+|https?://\S+|[\w-]+\.[a-z]{2,}(?:/\S*)?")
_SPACE = re.compile(r"\s+")


def normal(text: str) -> str:
    """How values are compared: case and runs of whitespace do not matter (nor do non-breaking spaces)."""
    return _SPACE.sub(" ", text.casefold()).strip()


@dataclass(frozen=True)
class Origin:
    """Where a recorded text came from: its label."""

    trusted: bool
    scopes: frozenset[str] = frozenset()  # data scopes it came from: its confidentiality
    source: str = ""  # "tool:<name>", "model:<name>", "input"


@dataclass
class FlowLog:
    """What the agents of one front door have read, labelled."""

    trusted: list[str] = field(default_factory=list)
    untrusted: list[tuple[str, Origin]] = field(default_factory=list)
    _passages: dict[int, set[int]] = field(default_factory=dict)  # hash of a word run -> untrusted texts holding it
    _markers: dict[str, set[int]] = field(default_factory=dict)  # identifier-like token -> untrusted texts
    _words: dict[str, set[int]] = field(default_factory=dict)  # whole short tokens -> untrusted texts
    saturated: bool = False  # more untrusted texts than MAX_RECORDS: everything traces to untrusted data
    in_memory_only: bool = False  # a request's: nothing stores it, so dropping it must leave a note

    def add(self, text: str, origin: Origin) -> None:
        text = normal(text)
        if not text:
            return
        if origin.trusted:
            self.trusted.append(text)
            return
        if len(self.untrusted) >= MAX_RECORDS:
            self.saturated = True
        index = len(self.untrusted)
        self.untrusted.append((text, origin))
        words = _WORD.findall(text)
        for at in range(len(words) - PASSAGE_WORDS + 1):
            self._passages.setdefault(hash(tuple(words[at : at + PASSAGE_WORDS])), set()).add(index)
        for marker in _markers_in(text):
            self._markers.setdefault(marker, set()).add(index)
        for word in words:
            if len(word) < MIN_SUBSTRING:
                self._words.setdefault(word, set()).add(index)

    @property
    def tainted(self) -> bool:
        """Whether any untrusted data was read here: a model's context may then hold some."""
        return bool(self.untrusted)

    def scopes(self) -> frozenset[str]:
        """Every data scope read here."""
        return frozenset().union(*(origin.scopes for _, origin in self.untrusted))

    def trace(self, value: str) -> tuple[Origin, ...]:
        """The texts read here that `value` was copied from, in part or whole; () if it is the agent's own. A value that
        trusted input holds is trusted (its origins come back marked so), but keeps the confidentiality of what it
        was read from: vouching for a text's integrity does not make a ledger public."""
        value = normal(value)
        if not value:
            return ()
        vouched = any(value == text or (len(value) >= MIN_SUBSTRING and _holds(text, value)) for text in self.trusted)
        if self.saturated:
            return (Origin(vouched, self.scopes(), "saturated"),) if not vouched or self.scopes() else ()
        hits: set[int] = set()
        if len(value) < MIN_SUBSTRING:
            hits |= self._words.get(value, set())
        hits |= {i for i, (text, _) in enumerate(self.untrusted) if len(value) >= MIN_SUBSTRING and value in text}
        words = _WORD.findall(value)
        for at in range(len(words) - PASSAGE_WORDS + 1):
            hits |= self._passages.get(hash(tuple(words[at : at + PASSAGE_WORDS])), set())
        known: set[int] = set()  # copied by a marker trusted input also holds: trusted, but as confidential
        for marker in _markers_in(value):
            if not any(_holds(text, marker) for text in self.trusted):
                hits |= self._markers.get(marker, set())
            elif _distinctive(marker):
                known |= self._markers.get(marker, set())
        known -= hits
        origins = tuple(self.untrusted[i][1] for i in sorted(hits | known))
        if vouched:
            return tuple(dataclasses.replace(origin, trusted=True) for origin in origins if origin.scopes)
        return tuple(
            dataclasses.replace(origin, trusted=True) if i in known else origin
            for i, origin in zip(sorted(hits | known), origins, strict=True)
            if i not in known or origin.scopes
        )


def _markers_in(text: str) -> set[str]:
    """The identifier-like tokens of `text`, without the full stop or dash that ends a sentence or a clause: an
    account number is the same marker at the end of a sentence ("… 5521-7781-0043.") as inside one."""
    return {marker.rstrip(".-/+") for marker in _MARKER.findall(text)} - {""}


def _distinctive(marker: str) -> bool:
    """A marker long enough to name one thing (an account number, an address), not a day or a room number that the
    user's own words and a ledger share by chance."""
    return (len(marker) >= 8 and any(c.isdigit() for c in marker)) or "@" in marker or "://" in marker


def _holds(text: str, part: str) -> bool:
    """Whether `text` holds `part` as a whole token: not a look-alike cut from a longer one ("bob@example.co" of
    "bob@example.com", "alice@corp.com" of "alice@corp.com.au", "smith@acme.com" of "bob_smith@acme.com")."""
    return re.search(_BEFORE + re.escape(part) + _AFTER, text) is not None


_BEFORE = r"(?<![A-Za-z0-9._@+-])"  # a token goes on through ASCII letters, digits and . _ @ + - joining them
_AFTER = r"(?![A-Za-z0-9]|[._@+-][A-Za-z0-9])"


def traceable(value: str) -> bool:
    """Whether `FlowLog.trace` can link `value` to what it was copied from: a short value only as a whole word, so
    "*" or "/" (the "everything" an injection would ask for) can be traced to nothing."""
    value = normal(value)
    return len(value) >= MIN_SUBSTRING or _WORD.search(value) is not None


def texts_of(value: Any) -> Iterator[str]:
    """The strings and numbers in a value an agent reads or passes (nested lists, mappings, dataclasses, pydantic
    models, objects), as text: what gets labelled and traced. However deeply they nest: a value below some depth
    left out would reach a sink untraced (walked without recursion, each container once, so a cycle ends)."""
    stack: list[Any] = [value]
    seen: dict[int, Any] = {}  # holds what it has walked, so that no id is reused (a model's dump is made, then freed)
    while stack:
        item = stack.pop()
        if item is None or isinstance(item, bool):
            continue
        if isinstance(item, str):
            yield item
        elif isinstance(item, int | float):
            yield _number(item)
        elif isinstance(item, bytes):
            yield item.decode("utf-8", "replace")
        elif id(item) in seen:
            continue
        else:
            seen[id(item)] = item
            stack.extend(reversed(_parts(item)))


def _parts(value: Any) -> list[Any]:
    """What a container holds, in order (a mapping's keys beside their values); an object of no known shape is its
    text."""
    if isinstance(value, Mapping):
        return [part for key, item in value.items() for part in (key, item)]
    if isinstance(value, list | tuple | set | frozenset):
        return list(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return [getattr(value, item.name) for item in dataclasses.fields(value)]
    if hasattr(value, "model_dump"):
        return [value.model_dump(mode="json")]
    return [str(value)]


def _number(value: float) -> str:
    """A number as a person writes it: 100.0 is "100" (one of more than 4,300 digits, which Python will not write
    in decimal, in hexadecimal: the same on both sides of a trace)."""
    try:
        return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)
    except ValueError:
        return hex(int(value))
