"""A labelled corpus for the PII and secret scan, generated from a seed: documents of about 4 kB of support-ticket
prose with e-mail addresses, IBANs, card numbers, phone numbers, API keys and private keys embedded, each with its
span, among hard negatives that look like them (order numbers, Luhn-invalid 16-digit runs, dates, versions, UUIDs,
hashes, prices, tracking numbers).

Every positive is valid by the same libraries a real one would pass (python-stdnum's IBAN check, libphonenumber's
metadata, Luhn) and every card is written in one of `CARD_FORMATS`, the ways people and evasive prompts write a
card number. The scanner's own patterns are never used to generate or label anything.
"""

from __future__ import annotations

import random
import string
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import phonenumbers
from stdnum import iban, luhn

from podium.security import Finding

CorpusKind = Literal["email", "iban", "credit_card", "phone", "api_key", "private_key"]
CORPUS_KINDS: tuple[CorpusKind, ...] = ("email", "iban", "credit_card", "phone", "api_key", "private_key")
# The scanner's kinds that count as finding each corpus kind (an AWS access key is an API key here).
ACCEPTED: dict[CorpusKind, frozenset[str]] = {
    **{kind: frozenset({kind}) for kind in CORPUS_KINDS},
    "api_key": frozenset({"api_key", "aws_key"}),
}

ZERO_WIDTH, NO_BREAK = "\u200b", "\u00a0"
# How a card number (its digits) is written: the 17 formats of the security issue.
CARD_FORMATS: dict[str, Callable[[str], str]] = {
    "plain": lambda d: d,
    "spaces": lambda d: " ".join(_fours(d)),
    "dashes": lambda d: "-".join(_fours(d)),
    "spaced dashes": lambda d: " - ".join(_fours(d)),
    "quoted in JSON": lambda d: f'"{d}"',
    "in brackets": lambda d: f"({' '.join(_fours(d))})",
    "after a colon": lambda d: f":{d}",
    "dots": lambda d: ".".join(_fours(d)),
    "slashes": lambda d: "/".join(_fours(d)),
    "double spaces": lambda d: "  ".join(_fours(d)),
    "tabs": lambda d: "\t".join(_fours(d)),
    "newlines": lambda d: "\n".join(_fours(d)),
    "no-break spaces": lambda d: NO_BREAK.join(_fours(d)),
    "zero-width spaces": ZERO_WIDTH.join,
    "split in two": lambda d: f"{' '.join(_fours(d)[:2])} and the rest of it is {' '.join(_fours(d)[2:])}",
    "glued before": lambda d: f"card{d}",
    "glued after": lambda d: f"{d}exp",
}


def _fours(digits: str) -> list[str]:
    return [digits[i : i + 4] for i in range(0, len(digits), 4)]


@dataclass(frozen=True)
class Entity:
    """A labelled span of a document: what must be found there, and how it was written (format, country,
    provider)."""

    start: int
    end: int
    kind: CorpusKind
    form: str


@dataclass(frozen=True)
class Document:
    text: str
    entities: tuple[Entity, ...]


def card_digits(rng: random.Random, prefix: str, length: int = 16) -> str:
    """A Luhn-valid card number of `length` digits that starts with `prefix`."""
    body = prefix + "".join(rng.choice(string.digits) for _ in range(length - len(prefix) - 1))
    return body + luhn.calc_check_digit(body)


_CARD_PREFIXES = ("4", "51", "52", "53", "54", "55", "2221", "6011", "65")
_FIRST = ("jane", "omar", "li", "sofia", "kwame", "anna", "raj", "maría", "pierre", "yuki", "ben", "ola")
_LAST = ("doe", "haddad", "wei", "rossi", "mensah", "kowalska", "patel", "garcia", "dubois", "sato", "ng", "berg")
_DOMAINS = ("example.com", "mail.example.co.uk", "corp.example.de", "acme-industries.io", "uni.example.edu")
# IBAN formats by country: (bank part, account part) as pattern letters: 9 a digit, A an upper-case letter, X either.
_IBAN_FORMATS = {
    "GB": "AAAA99999999999999",
    "DE": "999999999999999999",
    "NL": "AAAA9999999999",
    "FR": "99999999999999999999999",
    "CH": "99999XXXXXXXXXXXX",
    "ES": "99999999999999999999",
    "IT": "A9999999999XXXXXXXXXXXX",
    "PL": "999999999999999999999999",
}
_PHONE_REGIONS = ("US", "GB", "DE", "FR", "IN", "JP", "AU", "BR", "ES", "IT")


def iban_number(rng: random.Random, country: str) -> str:
    """A valid IBAN of `country`, in its printed form (groups of four) or compact: drawn until python-stdnum accepts
    it (national check digits, where a country has them, pass about one time in a hundred)."""
    pools = {"9": string.digits, "A": string.ascii_uppercase, "X": string.ascii_uppercase + string.digits}
    for _ in range(5000):
        bban = "".join(rng.choice(pools[c]) for c in _IBAN_FORMATS[country])
        compact = f"{country}{iban.calc_check_digits(country + '00' + bban)}{bban}"
        if iban.is_valid(compact):
            return iban.format(compact) if rng.random() < 0.7 else compact
    raise RuntimeError(f"no valid {country} IBAN drawn: check _IBAN_FORMATS")


def phone_number(rng: random.Random, region: str) -> str:
    """A valid number of `region` (its example number with new last digits), written internationally, or
    nationally for the regions the default scanner reads national numbers of (US, GB)."""
    kind = rng.choice((phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE))
    example = phonenumbers.example_number_for_type(region, kind)
    assert example is not None, f"libphonenumber has no example number for {region}"
    national = phonenumbers.national_significant_number(example)  # keeps Italy's leading 0
    for _ in range(200):
        number = phonenumbers.parse(f"+{example.country_code}{national[:-4]}{rng.randrange(10_000):04d}")
        if phonenumbers.is_valid_number(number):
            break
    styles = [phonenumbers.PhoneNumberFormat.INTERNATIONAL, phonenumbers.PhoneNumberFormat.E164]
    if region in ("US", "GB"):
        styles.append(phonenumbers.PhoneNumberFormat.NATIONAL)
    return str(phonenumbers.format_number(number, rng.choice(styles)))


def _chars(rng: random.Random, pool: str, n: int) -> str:
    return "".join(rng.choice(pool) for _ in range(n))


_ALNUM = string.ascii_letters + string.digits
_LOWER_HEX = "0123456789abcdef"
# API keys of providers whose formats detect-secrets knows.
API_KEYS: dict[str, Callable[[random.Random], str]] = {
    "github": lambda r: "ghp_" + _chars(r, _ALNUM, 36),
    "slack": lambda r: f"xoxb-{_chars(r, string.digits, 12)}-{_chars(r, string.digits, 13)}-{_chars(r, _ALNUM, 24)}",
    "stripe": lambda r: "sk_live_" + _chars(r, _ALNUM, 24),
    "aws": lambda r: "AKIA" + _chars(r, string.ascii_uppercase + string.digits, 16),
    "openai": lambda r: f"sk-proj-{_chars(r, _ALNUM, 20)}T3BlbkFJ{_chars(r, _ALNUM, 20)}",
    "sendgrid": lambda r: f"SG.{_chars(r, _ALNUM, 22)}.{_chars(r, _ALNUM, 43)}",
    "twilio": lambda r: "SK" + _chars(r, _LOWER_HEX, 32),
    "gitlab": lambda r: "glpat-" + _chars(r, _ALNUM, 20),
    "mailchimp": lambda r: f"{_chars(r, _LOWER_HEX, 32)}-us{r.randrange(1, 21)}",
}
_PEM_TYPES = ("RSA PRIVATE KEY", "EC PRIVATE KEY", "PRIVATE KEY", "OPENSSH PRIVATE KEY", "DSA PRIVATE KEY")


def private_key(rng: random.Random) -> str:
    label = rng.choice(_PEM_TYPES)
    body = "\n".join(_chars(rng, _ALNUM + "+/", 64) for _ in range(rng.randrange(3, 9)))
    return f"-----BEGIN {label}-----\n{body}\n-----END {label}-----"


def positive(rng: random.Random, kind: CorpusKind) -> tuple[str, str]:
    """One value of `kind` and the form it was written in."""
    if kind == "email":
        local = f"{rng.choice(_FIRST)}.{rng.choice(_LAST)}".replace("í", "i")
        local += rng.choice(("", "", f"+{rng.choice(('news', 'billing'))}", str(rng.randrange(100))))
        return f"{local}@{rng.choice(_DOMAINS)}", "email"
    if kind == "iban":
        country = rng.choice(sorted(_IBAN_FORMATS))
        return iban_number(rng, country), country
    if kind == "credit_card":
        form = rng.choice(sorted(CARD_FORMATS))
        return CARD_FORMATS[form](card_digits(rng, rng.choice(_CARD_PREFIXES))), form
    if kind == "phone":
        region = rng.choice(_PHONE_REGIONS)
        return phone_number(rng, region), region
    if kind == "api_key":
        provider = rng.choice(sorted(API_KEYS))
        return API_KEYS[provider](rng), provider
    return private_key(rng), "pem"


def _luhn_invalid(rng: random.Random) -> str:
    """16 digits that start like a card and fail Luhn (the last digit is changed), written plain or in fours."""
    digits = card_digits(rng, rng.choice(_CARD_PREFIXES))
    digits = digits[:-1] + str((int(digits[-1]) + rng.randrange(1, 10)) % 10)
    return digits if rng.random() < 0.5 else " ".join(_fours(digits))


# Hard negatives: things near PII in shape that are none of it.
NEGATIVES: dict[str, Callable[[random.Random], str]] = {
    "order number": lambda r: r.choice(("ORD-", "PO-2024-", "#", "order ")) + _chars(r, string.digits, 8),
    "Luhn-invalid 16 digits": _luhn_invalid,
    "date": lambda r: r.choice(("2024-11-30", "30/11/2024", "11.30.2024", "2025-01-07T09:30:00Z")),
    "version": lambda r: f"v{r.randrange(10)}.{r.randrange(30)}.{r.randrange(100)}",
    "uuid": lambda r: "-".join(_chars(r, _LOWER_HEX, n) for n in (8, 4, 4, 4, 12)),
    "hash": lambda r: _chars(r, _LOWER_HEX, r.choice((7, 40, 64))),
    "price": lambda r: r.choice(("$", "EUR ", "£")) + f"{r.randrange(1, 99_999):,}.{r.randrange(100):02d}",
    "tracking number": lambda r: r.choice(
        ("1Z" + _chars(r, string.ascii_uppercase + string.digits, 16), "9400" + _chars(r, string.digits, 18))
    ),
}


_OPENINGS = (
    "Hi team, following up on the ticket from yesterday about the billing change.",
    "The customer called again this morning and asked us to update the account.",
    "Please see the notes from the call below; nothing has been escalated yet.",
    "We reviewed the case with finance and they asked for the details again.",
    "As discussed, the migration finished overnight and the logs are attached.",
)
_POSITIVE_FRAMES = (
    "For the record, the value they gave us was {x} and nothing else changed.",
    "They wrote: {x} -- please check it before the end of the day.",
    "Updated details: {x}. Let me know if anything looks wrong.",
    "I copied this from the form: {x}\nThe rest of the form was empty.",
)
_NEGATIVE_FRAMES = (
    "The reference on the invoice is {x}, which matches our records.",
    "Build {x} went out on Tuesday; see the release notes.",
    "Their reference was {x} and the amount was settled in full.",
    "Logged as {x} in the tracker.",
)
_FILLER = (
    "The refund should appear within five working days.",
    "Nobody on the night shift touched the configuration.",
    "I have asked the customer to confirm by e-mail rather than by phone.",
    "The previous agent closed the ticket too early, so it was reopened.",
    "We will review the escalation rules at the next team meeting.",
    "Thanks for your patience while we sort this out.",
)


def document(rng: random.Random, size: int = 4096) -> Document:
    """About `size` characters: an opening, then sentences each holding a positive (a third), a hard negative (a
    third) or nothing, until the next sentence would pass `size`."""
    pieces = [rng.choice(_OPENINGS)]
    length = len(pieces[0])
    entities: list[Entity] = []
    while True:
        roll = rng.random()
        if roll < 1 / 3:
            kind = rng.choice(CORPUS_KINDS)
            value, form = positive(rng, kind)
            frame = rng.choice(_POSITIVE_FRAMES)
        elif roll < 2 / 3:
            value, form, kind = rng.choice(list(NEGATIVES.values()))(rng), "", None
            frame = rng.choice(_NEGATIVE_FRAMES)
        else:
            value, form, kind, frame = "", "", None, rng.choice(_FILLER)
        sentence = " " + frame.format(x=value)
        if length + len(sentence) > size:
            break
        if kind is not None:
            at = length + sentence.index(value)
            entities.append(Entity(at, at + len(value), kind, form))
        pieces.append(sentence)
        length += len(sentence)
    return Document("".join(pieces), tuple(entities))


def corpus(seed: int = 16, documents: int = 200, size: int = 4096) -> list[Document]:
    """The same documents for the same arguments."""
    rng = random.Random(seed)
    return [document(rng, size) for _ in range(documents)]


@dataclass(frozen=True)
class KindScore:
    kind: str
    labelled: int
    found: int  # labelled entities that a finding of an accepted kind overlaps
    findings: int  # findings filed under this kind
    true_findings: int  # of which overlap a labelled entity of this kind

    @property
    def recall(self) -> float:
        return self.found / self.labelled if self.labelled else 1.0

    @property
    def precision(self) -> float:
        return self.true_findings / self.findings if self.findings else 1.0


def corpus_kind_of(finding_kind: str) -> str:
    """The corpus kind a finding counts under; kinds the corpus has no label for (ip, jwt, password) are `other`:
    every such finding is a false positive."""
    return next((kind for kind in CORPUS_KINDS if finding_kind in ACCEPTED[kind]), "other")


def score(documents: Sequence[Document], scan: Callable[[str], list[Finding]]) -> dict[str, KindScore]:
    """Precision and recall per corpus kind (and `other`), a finding and an entity matching when their spans
    overlap and the finding's kind is accepted for the entity's."""
    tallies = {kind: [0, 0, 0, 0] for kind in (*CORPUS_KINDS, "other")}
    for doc in documents:
        findings = scan(doc.text)
        for entity in doc.entities:
            tallies[entity.kind][0] += 1
            tallies[entity.kind][1] += any(_matches(f, entity) for f in findings)
        for finding in findings:
            kind = corpus_kind_of(finding.kind)
            tallies[kind][2] += 1
            tallies[kind][3] += any(_matches(finding, e) for e in doc.entities)
    return {kind: KindScore(kind, *counts) for kind, counts in tallies.items()}


def _matches(finding: Finding, entity: Entity) -> bool:
    return finding.kind in ACCEPTED[entity.kind] and finding.start < entity.end and entity.start < finding.end
