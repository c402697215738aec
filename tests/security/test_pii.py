"""The PII and secret scan on a generated labelled corpus (precision and recall per kind), card numbers in each of
the 17 formats of the security issue, and the Unicode normalisation that keeps spans on the original text."""

from __future__ import annotations

import importlib.util
import random
import re

import pytest
from benchmarks._pii_corpus import CARD_FORMATS, CORPUS_KINDS, KindScore, card_digits, corpus, score

from podium.security import Finding, redact, scan

VISA = "4111111111111111"


def cards_in(text: str) -> list[str]:
    return [text[f.start : f.end] for f in scan(text) if f.kind == "credit_card"]


def digits_span(text: str) -> str:
    """From the first digit of `text` to its last (what a card finding must cover, whatever surrounds it)."""
    first = re.search(r"[0-9０-９]", text)
    last = list(re.finditer(r"[0-9０-９]", text))[-1]
    assert first is not None
    return text[first.start() : last.end()]


@pytest.fixture(scope="module")
def corpus_scores() -> dict[str, KindScore]:
    return dict(score(corpus(seed=16, documents=200), scan))


@pytest.mark.parametrize("kind", CORPUS_KINDS)
def test_each_kind_meets_the_precision_and_recall_targets(kind: str, corpus_scores: dict[str, KindScore]) -> None:
    figures = corpus_scores[kind]
    assert figures.labelled >= 300
    assert figures.recall >= 0.98, figures
    assert figures.precision >= 0.95, figures


def test_hard_negatives_raise_no_finding_of_an_unlabelled_kind(
    corpus_scores: dict[str, KindScore],
) -> None:
    assert corpus_scores["other"].findings == 0


def test_the_corpus_is_the_same_for_the_same_seed_and_differs_for_another() -> None:
    assert corpus(seed=3, documents=3) == corpus(seed=3, documents=3)
    assert corpus(seed=3, documents=3) != corpus(seed=4, documents=3)
    assert all(3_500 <= len(doc.text) <= 4_096 for doc in corpus(seed=3, documents=20))


@pytest.mark.parametrize("form", sorted(CARD_FORMATS))
def test_a_card_number_is_found_whole_in_each_format(form: str) -> None:
    written = CARD_FORMATS[form](VISA)
    text = f"Hello, my card is {written} thanks, Jo"
    assert cards_in(text) == [digits_span(written)]
    redacted = redact(text, scan(text))
    assert not re.search(r"[0-9]", redacted), redacted


@pytest.mark.parametrize("form", sorted(CARD_FORMATS))
def test_a_luhn_invalid_number_is_not_a_card_in_any_format(form: str) -> None:
    assert cards_in(f"Hello, my card is {CARD_FORMATS[form]('4111111111111112')} thanks") == []


@pytest.mark.parametrize("form", sorted(CARD_FORMATS))
def test_cards_of_every_network_in_every_format(form: str) -> None:
    rng = random.Random(form)
    for prefix, length in (("4", 16), ("5", 16), ("2221", 16), ("6011", 16), ("4", 19)):
        digits = card_digits(rng, prefix, length)
        written = CARD_FORMATS[form](digits)
        if form == "split in two" and length != 16:
            continue  # only 16-digit numbers in groups of four are read across a cut
        assert cards_in(f"pay with {written} today") == [digits_span(written)], written


def test_an_amex_number_in_its_own_grouping() -> None:
    assert cards_in("amex 3782 822463 10005 ok") == ["3782 822463 10005"]


def test_a_cut_is_read_only_within_its_bounds() -> None:
    near = "4111 1111 " + "x" * 30 + " 1111 1111"
    far = "4111 1111 " + "x" * 33 + " 1111 1111"
    assert cards_in(near) == [near]
    assert cards_in(far) == []
    assert cards_in("4111 1111 then 7 then 1111 1111") == []  # a digit between the pieces
    assert cards_in("logged 5496 0504 0451 5072 then 5472 7742 7086 6876") == []  # tails of longer numbers


def test_digits_inside_a_hash_or_a_key_are_not_a_card() -> None:
    # A Luhn-valid 16-digit run inside a hex hash and a base64 token: part of something else.
    assert cards_in(f"sha256 9f86d0818ab{VISA}c7d659a2feaea0c55ad015a3bf4f1b2b0b822c") == []
    assert cards_in(f"token Zm9vYmFy9{VISA}YmF6") == []
    assert cards_in(f"call +{VISA[:13]}") == []  # after a plus it is a phone number


def test_the_digits_of_an_iban_are_not_a_card() -> None:
    text = "pay to PL50 5713 7111 4543 4592 0009 5109 please"
    assert [(text[f.start : f.end], f.kind) for f in scan(text)] == [("PL50 5713 7111 4543 4592 0009 5109", "iban")]


def test_spans_point_into_the_original_text_after_normalisation() -> None:
    text = (
        "\u200b\u200bmail ｊａｎｅ@example.com, card ４１１１ １１１１ １１１１ １１１１, "
        "tel +44\u00a020\u00a07946\u00a00958"
    )
    found = {f.kind: text[f.start : f.end] for f in scan(text)}
    assert found == {
        "email": "ｊａｎｅ@example.com",
        "credit_card": "４１１１ １１１１ １１１１ １１１１",
        "phone": "+44\u00a020\u00a07946\u00a00958",
    }


def test_a_key_split_by_zero_width_spaces_is_found() -> None:
    key = "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"
    hidden = "\u200b".join(key)
    text = f"token {hidden} here"
    assert [(f.kind, text[f.start : f.end]) for f in scan(text)] == [("api_key", hidden)]


def test_a_finding_maps_back_to_a_span_of_the_original() -> None:
    text = "ﬁle: 4111\u200b1111\u200b1111\u200b1111."
    [finding] = scan(text)
    assert finding == Finding(5, 24, "credit_card")  # "ﬁ" is one character, "fi" after NFKC
    assert text[finding.start : finding.end] == "4111\u200b1111\u200b1111\u200b1111"


def test_the_gateway_keeps_no_copy_of_the_scanner() -> None:
    assert importlib.util.find_spec("podium.gateway._scan") is None
