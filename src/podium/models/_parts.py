"""Reading a text part by part, so that what surrounds a part cannot hide it.

A classifier that reads a whole ticket answers for the whole: a fraud report with a harmless question appended
reads as the question often enough ("My card was stolen and someone is using it. Where can I find an ATM?" ->
`atm_support`). A rule that must hold reads every part and takes the strongest reading of each label
(`TextClassifier.read`, `Prediction.peaks`). The parts of a text are the text, its sentences, its clauses, and
every run of `window` consecutive words, chosen so that a part of one text is still a part of any longer text
made from it:

- a sentence stays a sentence when other sentences are added before or after it (sentences end at . ! ? ; and
  line breaks);
- a run of `window` words stays a run of `window` words whatever words are added before or after it, with any
  punctuation or case (windows are made of the lowercased words alone).

So adding text can raise a label's peak, never lower it, for a sensitive sentence among others and for any
sensitive passage of at least `window` words. A shorter fragment run into a sentence of other words with no
punctuation between is read in windows that hold some of those words too: that case is measured
(benchmarks/rules.py), not guaranteed.

A model can still misread a part even alone ("I cannot find my credit card." read as a top-up question). A
`Lexicon` does not read, it matches: a list of terms, each found when all its words are in one sentence of the
text once case, accents, punctuation, odd and zero-width spaces, look-alike letters and digits are normalised
away. Adding words or sentences can only add matches, so a rule that ORs a lexicon with the model's reading of
every part holds wherever either does (docs/review.md, "Rules that input cannot steer").
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from typing import Final

from podium.errors import UsageError

WINDOW_WORDS: Final = 8
"""Words in a window: long enough to read as a request on its own, short enough that padding around it is left
out of at least one window that holds it."""
MAX_WORDS: Final = 20_000
"""The most words `parts` reads (~120 kB of text): a longer text is refused, not read in part."""

_SENTENCE = re.compile(r"(?<=[.!?])\s+|[\r\n]+|;\s*")
_CLAUSE = re.compile(r",\s*|:\s+|\s+(?:and|but|also|plus|btw|so|or|then|because)\s+", re.IGNORECASE)
_WORD = re.compile(r"\w+(?:'\w+)*")


def words(text: str) -> list[str]:
    """The words of `text`, lowercased, as windows are made of them."""
    return _WORD.findall(text.lower())


def parts(text: str, *, window: int = WINDOW_WORDS) -> list[str]:
    """The parts of `text` a rule reads: the text itself (always first), then each sentence, clause and run of
    `window` consecutive words, each once. Raises UsageError for a text of more than MAX_WORDS words."""
    if window < 1:
        raise UsageError(f"window={window}: a window holds at least one word.")
    tokens = words(text)
    if len(tokens) > MAX_WORDS:
        raise UsageError(
            f"the text has {len(tokens):,} words, more than the {MAX_WORDS:,} podium reads part by part: give it "
            "to a person (podium.assess(flags={'too_large'})), or cut it into documents first."
        )
    found: dict[str, None] = {text: None}  # the text itself first, as it is
    for sentence in _SENTENCE.split(text):
        found[sentence.strip()] = None
        for clause in _CLAUSE.split(sentence):
            found[clause.strip()] = None
    for start in range(max(1, len(tokens) - window + 1)):
        found[" ".join(tokens[start : start + window])] = None
    return [text, *(part for part in found if part and part != text)]


# Letters that look like Latin ones (Cyrillic, Greek) and digits written for letters: "stоlen" with a Cyrillic o,
# "st0len". A few of Unicode's confusables (UTS #39): the ones that pass for lowercase Latin letters.
_LOOKALIKE: Final = str.maketrans("аеорсхуіјѕԁӏһԛԝοαειικνρτυχ", "aeopcxyijsdlhqwoaeiikvptux")
_FOR_I: Final = str.maketrans("013457@$", "oieastas")
_FOR_L: Final = str.maketrans("013457@$", "oleastas")
_PIECE = re.compile(r"[^\W_]+")
_SLOT = re.compile(r"[a-z0-9]+\*?(?:\|[a-z0-9]+\*?)*")  # word|word|prefix*


def sentences_of_words(text: str) -> list[frozenset[str]]:
    """The words of each sentence of `text`, normalised so that how it is written cannot hide a word: Unicode
    compatibility forms and accents folded, case folded, zero-width and other invisible characters removed, and
    look-alike letters mapped to Latin ones. A word written with punctuation, digits or symbols inside ("can't",
    "un-authorised", "st0len", "s.t.o.l.e.n") counts as its pieces and as its pieces joined, so both readings
    match; letters spelled out one by one ("s t o l e n", words two spaces apart) count as the word too."""
    decomposed = unicodedata.normalize("NFKD", text)
    kept = "".join(c for c in decomposed if c in "\t\n\r" or unicodedata.category(c) not in ("Mn", "Cf", "Cc"))
    found = []
    for sentence in _SENTENCE.split(kept.casefold().translate(_LOOKALIKE)):
        chunks = sentence.split()
        words: set[str] = set()
        for chunk in chunks:
            pieces = _PIECE.findall(chunk)
            words.update(pieces)
            words.add("".join(pieces))
            if re.search(r"[^\W\d_]", chunk) and re.search(r"[\d@$]", chunk):  # letters and digits: "st0len"
                words.update("".join(_PIECE.findall(chunk.translate(table))) for table in (_FOR_I, _FOR_L))
        for group in re.split(r"\s{2,}", sentence):  # "s t o l e n": letters one by one, words two spaces apart
            pieces = _PIECE.findall(group)
            if len(pieces) >= 3 and all(len(piece) == 1 for piece in pieces):
                words.add("".join(pieces))
        words.discard("")
        if words:
            found.append(frozenset(words))
    return found


class Lexicon:
    """Terms a rule matches in a text however it is written or padded (`sentences_of_words`).

    A term is one or more slots separated by spaces, all of which must match a word of one sentence; a slot is
    one or more words separated by `|`, any of which may match; a word ending in `*` matches every word it
    begins. `"stolen"`, `"unauthori*"`, `"cant|cannot|unable find"`. Terms are written in lowercase, without
    apostrophes ("cant": "can't" is read as "can", "t" and "cant").
    """

    def __init__(self, terms: Iterable[str]) -> None:
        self.terms = tuple(dict.fromkeys(" ".join(t.split()) for t in terms))
        bad = [t for t in self.terms if not t or not all(_SLOT.fullmatch(slot) for slot in t.split(" "))]
        if bad:
            raise UsageError(
                f"lexicon terms {bad!r} are not lowercase words: write each slot as word|word|prefix* "
                "(a-z and 0-9, no apostrophes: 'cant' for can't), slots separated by spaces."
            )
        self._slots = [
            [tuple((w.rstrip("*"), w.endswith("*")) for w in slot.split("|")) for slot in t.split(" ")]
            for t in self.terms
        ]

    def found(self, text: str) -> frozenset[str]:
        """The terms some sentence of `text` holds."""
        sentences = sentences_of_words(text)
        return frozenset(
            term
            for term, slots in zip(self.terms, self._slots, strict=True)
            if any(all(_fills(slot, sentence) for slot in slots) for sentence in sentences)
        )


def _fills(slot: tuple[tuple[str, bool], ...], sentence: frozenset[str]) -> bool:
    return any((word in sentence) if not prefix else any(w.startswith(word) for w in sentence) for word, prefix in slot)
