"""A classifier reads every part of a text, and text added around a part can raise what the part reads as, never
hide it: the property exception rules that input cannot steer rest on (docs/review.md)."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from podium.errors import UsageError
from podium.models import (
    WINDOW_WORDS,
    ClassifierModel,
    Lexicon,
    Prediction,
    TextClassifier,
    parts,
    sentences_of_words,
)
from podium_examples.support_triage.tickets import TEST_CSV, TRAIN_CSV, load_tickets
from podium_examples.support_triage.workflow import SENSITIVE_INTENTS, SENSITIVE_TERMS
from tests.conftest import IntentModelFile

_TEST = load_tickets(TEST_CSV)
# Sensitive tickets that are one sentence (no . ! ? ; or line break inside), and harmless questions to pad with.
SENTENCES = [t.text for t in _TEST if t.category in SENSITIVE_INTENTS and not re.search(r"[.!?;]\s|\n", t.text)]
LONG = [t.text for t in _TEST if t.category in SENSITIVE_INTENTS and len(t.text.split()) >= WINDOW_WORDS + 2]
HARMLESS = [t.text for t in load_tickets(TRAIN_CSV)[::7] if t.category not in SENSITIVE_INTENTS]
BOUNDARIES = ("\n", "\n\n", "; ", "\r\n")


def test_the_parts_are_the_text_its_sentences_clauses_and_windows() -> None:
    text = "My card was stolen and someone is using it. Where can I find an ATM?"
    found = parts(text)
    assert found[0] == text
    assert {"My card was stolen and someone is using it.", "Where can I find an ATM?"} <= set(found)
    assert {"My card was stolen", "someone is using it."} <= set(found)  # clauses
    assert "stolen and someone is using it where can" in found  # a window of 8 words, read lowercased
    assert len(found) == len(set(found))
    assert parts("") == [""] and parts("refund") == ["refund"]
    with pytest.raises(UsageError, match="more than the 20,000 podium reads part by part"):
        parts("word " * 20_001)


@settings(max_examples=60, deadline=None)
@given(
    core=st.sampled_from(SENTENCES),
    before=st.lists(st.sampled_from(HARMLESS), max_size=3),
    after=st.lists(st.sampled_from(HARMLESS), max_size=6),
    boundary=st.sampled_from(BOUNDARIES),
)
def test_a_sentence_keeps_its_reading_among_other_sentences(
    intent_model_file: IntentModelFile, core: str, before: list[str], after: list[str], boundary: str
) -> None:
    padded = boundary.join([*before, core, *after])
    assert core.strip() in parts(padded)
    _assert_not_hidden(intent_model_file.classifier, padded, [core.strip()])


@settings(max_examples=60, deadline=None)
@given(
    core=st.sampled_from(LONG),
    before=st.lists(st.sampled_from(HARMLESS), max_size=3),
    after=st.lists(st.sampled_from(HARMLESS), max_size=3),
    shout=st.booleans(),
)
def test_a_run_of_words_keeps_its_reading_whatever_words_surround_it(
    intent_model_file: IntentModelFile, core: str, before: list[str], after: list[str], shout: bool
) -> None:
    """Run together with no punctuation at all, in any case: the core's windows are still windows of the ticket."""
    padded = re.sub(r"[^\w\s']", " ", " ".join([*before, core, *after]))
    padded = padded.upper() if shout else padded
    windows = parts(core)[-(len(re.findall(r"\w+(?:'\w+)*", core)) - WINDOW_WORDS + 1) :]
    assert all(len(w.split()) == WINDOW_WORDS for w in windows)
    assert set(windows) <= set(parts(padded))
    _assert_not_hidden(intent_model_file.classifier, padded, windows)


def _assert_not_hidden(classifier: TextClassifier, padded: str, kept: list[str]) -> None:
    """Every label a kept part reads as (at 1% or more) peaks at least as high in the padded text."""
    peaks = dict(classifier.read(padded).peaks)
    alone = classifier.probabilities(kept).max(axis=0)
    for label, p in zip(classifier.classes, alone, strict=True):
        if p >= 0.01:
            assert peaks.get(label, 0.0) >= round(float(p), 4) - 1e-4, (label, p)


def test_the_served_answer_carries_the_reading_of_every_part(intent_model_file: IntentModelFile) -> None:
    model = ClassifierModel("intent", intent_model_file.classifier)
    text = "Oh no!  I lost my card!  Help!\n\nP.S. How many ATMs will take this card?"
    answer = json.loads(model.answer(text))
    assert set(answer) == {"label", "confidence", "peaks", "familiar"}
    prediction = Prediction.from_text(model.answer(text))
    whole = intent_model_file.classifier.predict(text)
    assert (prediction.label, prediction.confidence) == (whole.label, pytest.approx(whole.confidence, abs=1e-4))
    assert prediction.label not in SENSITIVE_INTENTS  # the whole reads as a harmless question ...
    assert "lost_or_stolen_card" in prediction.read_as(SENSITIVE_INTENTS, 0.1)  # ... a part of it does not
    assert all(b >= a for (_, a), (_, b) in zip(prediction.peaks[1:], prediction.peaks, strict=False))  # highest first
    # A reply from before parts were read (a run recorded by an older podium) still reads, with nothing in parts.
    old = Prediction.from_text(json.dumps({"label": "card_arrival", "confidence": 0.9}))
    assert (old.peaks, old.familiar, old.read_as(SENSITIVE_INTENTS, 0.0)) == ((), 1.0, frozenset())


def test_familiarity_is_the_share_of_word_pairs_the_model_learned_from(intent_model_file: IntentModelFile) -> None:
    classifier = intent_model_file.classifier
    assert classifier.familiarity("I am still waiting on my card") == 1.0
    assert classifier.familiarity("card") == 1.0  # no pair to judge
    salad = "rates Please free stop withdrawals calculated withdrawing rate current my determine grocery purchase"
    assert classifier.familiarity(salad) < 0.4
    two_classes = TextClassifier.train(["refund me", "where is it", "refund now", "where is my card"], list("abab"))
    assert 0.0 <= two_classes.familiarity("refund my card please") <= 1.0


def test_the_governor_refuses_a_text_longer_than_the_classifier_reads(intent_model_file: IntentModelFile) -> None:
    model = ClassifierModel("intent", intent_model_file.classifier)
    from podium.models import to_chat

    assert model.context_tokens == 20_001
    from pydantic_ai.messages import ModelRequest, UserPromptPart

    turns = to_chat([ModelRequest(parts=[UserPromptPart("don't stop " * 10)])])
    assert model.prompt_tokens(turns) == 20  # words as parts counts them, an apostrophe inside a word included
    assert np.isfinite(intent_model_file.classifier.read("don't stop " * 10).confidence)


LEXICON = Lexicon(["stolen", "unauthori*", "cant|cannot|unable find card|phone", "money back"])
# Ways of writing a sentence that leave its words as a reader sees them.
DISGUISES = {
    "upper": str.upper,
    "zero-width inside words": lambda t: "\u200b".join(t[i : i + 2] for i in range(0, len(t), 2)),
    "soft hyphens and word joiners": lambda t: t.replace("o", "o\u00ad").replace("e", "\u2060e"),
    "odd spaces": lambda t: t.replace(" ", "\u00a0\u2009\t "),
    "full width": lambda t: "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in t),
    "cyrillic look-alikes": lambda t: t.replace("o", "\u043e").replace("a", "\u0430").replace("e", "\u0435"),
    "accents": lambda t: t.replace("o", "o\u0301").replace("e", "\u00e9"),
    "digits for letters": lambda t: t.replace("o", "0").replace("e", "3"),
    "spelled out": " ".join,
    "dotted": lambda t: " ".join(".".join(word) for word in t.split()),
}


@pytest.mark.parametrize("disguise", DISGUISES)
def test_how_a_term_is_written_does_not_hide_it(disguise: str) -> None:
    for text, term in [
        ("My card was stolen", "stolen"),
        ("I can't find my card", "cant|cannot|unable find card|phone"),
        ("unauthorised payment", "unauthori*"),
        ("I want my money back", "money back"),
    ]:
        written = DISGUISES[disguise](text)
        assert term in LEXICON.found(written), (written, sentences_of_words(written))


@settings(max_examples=150, deadline=None)
@given(
    core=st.sampled_from(["My card was stolen.", "I cannot find my card", "a payment I did not make was unauthorised"]),
    before=st.lists(st.sampled_from(HARMLESS), max_size=3),
    after=st.lists(st.sampled_from(HARMLESS), max_size=3),
    inserted=st.lists(st.sampled_from(["atm", "top", "up", "exchange", "rate", "virtual", "pin"]), max_size=8),
    joiner=st.sampled_from([" ", "\n", ". Also, ", "; ", " and "]),
    seed=st.integers(0, 2**16),
)
def test_words_and_sentences_added_around_a_term_never_unmatch_it(
    core: str, before: list[str], after: list[str], inserted: list[str], joiner: str, seed: int
) -> None:
    """Matches only grow: a term in a sentence still matches with words inserted anywhere in that sentence and
    any sentences before or after it, so padding, stuffing and run-ons cannot hide it."""
    import random

    rng = random.Random(seed)
    words = core.split()
    for word in inserted:
        words.insert(rng.randint(0, len(words)), word)
    padded = joiner.join([*before, " ".join(words), *after])
    assert LEXICON.found(core) <= LEXICON.found(padded)
    assert LEXICON.found(core)  # each core holds a term: the property is not vacuous


def test_a_term_needs_all_its_slots_in_one_sentence() -> None:
    assert LEXICON.found("I cannot log in. Where do I find my card?") == frozenset()
    assert LEXICON.found("I cannot log in, where do I find my card?") == {"cant|cannot|unable find card|phone"}
    assert LEXICON.found("stole, steal, stoles") == frozenset()  # whole words unless the term says `*`
    assert LEXICON.found("UNAUTHORIZED") == {"unauthori*"}


def test_terms_are_checked_when_the_lexicon_is_made() -> None:
    with pytest.raises(UsageError, match="'cant' for can't"):
        Lexicon(["can't find"])
    with pytest.raises(UsageError, match="not lowercase words"):
        Lexicon(["Stolen", "ok"])
    assert Lexicon(["  money   back ", "money back"]).terms == ("money back",)


def test_the_example_lexicon_catches_what_the_classifier_misreads_alone(intent_model_file: IntentModelFile) -> None:
    """The reason the example ORs a lexicon with the classifier: a sensitive ticket it misreads even alone, no
    padding at all, in every part."""
    text = "I cannot find my credit card."
    prediction = intent_model_file.classifier.read(text)
    assert prediction.label not in SENSITIVE_INTENTS
    assert not prediction.read_as(SENSITIVE_INTENTS, 0.1)
    assert SENSITIVE_TERMS.found(text)
