"""Personal data in text: the candidates are found here by podium's own patterns, and validated by libraries
(python-stdnum's Luhn and IBAN checks, libphonenumber's metadata, the standard library's `ipaddress`).

Card numbers are written in many ways to slip past a pattern; the scan finds them (after `normalise`, which turns
no-break spaces into spaces and drops zero-width characters) when their groups are separated by up to three
spaces, tabs or newlines, or by one dot, slash, backslash or dash (with a space either side or not); when glued to
letters ("card4111111111111111", but not inside a token that holds other digits, such as a hash); and when a
16-digit number is cut in two (`_split_card`). Every candidate must pass Luhn, have 13-19 digits and start with
2-6 (the networks' prefixes), so that ordinary runs of digits are not cards.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from typing import Any

from podium.errors import ConfigurationError
from podium.security._pii_engine import Anchor, Pattern, Refine, import_scanner

# Each pattern starts with a character class and puts its left-boundary check after it, so Python's re skips
# ahead to that class quickly; every repetition is bounded.
# A card's groups: 4 digits, then 2-4 groups of 3-6, each after a separator or none (Amex writes 4-6-5).
_CARD_SEPARATOR = r"(?:[ \t\r\n]{1,3}|[ \t]?[./\\-][ \t]?)"
_CARD = re.compile(rf"[2-6](?<![0-9][2-6])[0-9]{{3}}(?:{_CARD_SEPARATOR}?[0-9]{{3,6}}){{2,4}}(?![0-9])")
_CARD_SEPARATORS = re.compile(r"[\s./\\-]+")
# One piece of a card cut in two: 1-3 groups of four digits, a whole number on its own (no letter, digit or
# digit group next to it), followed within `_SPLIT_GAP` characters that hold no digit by the other piece.
_SPLIT_GAP = 32
_SPLIT_FIRST = re.compile(r"[2-6](?<![\w][2-6])(?<![0-9][ .-][2-6])[0-9]{3}(?:[ .-][0-9]{4}){0,2}(?![\w]|[ .-][0-9])")
_SPLIT_SECOND = re.compile(rf"[^0-9]{{1,{_SPLIT_GAP}}}(?<![\w])[0-9]{{4}}(?:[ .-][0-9]{{4}}){{0,2}}(?![\w]|[ .-][0-9])")
_GLUE_LIMIT = 64  # how far a token glued to a card number is read, each side
_IBAN = re.compile(r"[A-Z](?<![A-Za-z0-9][A-Z])[A-Z][0-9]{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?(?![A-Za-z0-9])")
_EMAIL_DOMAIN = re.compile(r"@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.){1,8}[A-Za-z]{2,24}(?![\w-])")
_EMAIL_LOCAL_CHARS = frozenset("!#$%&'*+/=?^_`{|}~.-")
_IPV4 = re.compile(r"[0-9](?<![0-9.][0-9])[0-9]{0,2}\.(?:[0-9]{1,3}\.){2}[0-9]{1,3}(?!\.?[0-9])")
_IPV6 = re.compile(r"(?<![\w:])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?![\w:])")
_IPV6_ANCHOR = Anchor(re.compile(r":[0-9A-Fa-f]{0,4}:"), before=40, after=40)
_PHONE = re.compile(r"(?<![\w+.-])\+?(?:\([0-9]{1,4}\)|[0-9]{1,4})(?:[ .-]?(?:\([0-9]{1,5}\)|[0-9]{1,5})){1,6}(?!\w)")
_PHONE_ANCHOR = Anchor(re.compile(r"[0-9][0-9 .()-]{5,}[0-9]"), before=2, after=1)
_SEPARATOR = re.compile(r"[ .-]")


def personal_patterns(phone_regions: tuple[str, ...]) -> list[Pattern]:
    luhn = import_scanner("stdnum.luhn")
    iban = import_scanner("stdnum.iban")
    phonenumbers = import_scanner("phonenumbers")

    def is_card(candidate: str) -> bool:
        digits = "".join(ch for ch in candidate if ch.isdigit())
        return 13 <= len(digits) <= 19 and digits[0] in "23456" and bool(luhn.is_valid(digits))

    def split_card(text: str, start: int, end: int) -> tuple[int, int] | None:
        second = _SPLIT_SECOND.match(text, end, end + _SPLIT_GAP + 15)
        if second is None:
            return None
        digits = "".join(ch for ch in text[start:end] + second.group() if ch.isdigit())
        return (start, second.end()) if len(digits) == 16 and is_card(digits) else None

    def is_iban(candidate: str) -> bool:
        compact = candidate.replace(" ", "")
        return _iban_checksum_holds(compact) and bool(iban.is_valid(compact))

    # Parsing costs ~50 µs: first rule out what no region could read, by the national lengths its metadata allows.
    national_lengths = {region: _national_lengths(phonenumbers, region) for region in phone_regions}

    def is_phone(candidate: str) -> bool:
        digits = "".join(ch for ch in candidate if ch.isdigit())
        if not 7 <= len(digits) <= 15:
            return False
        if candidate.startswith("+"):
            regions: tuple[str | None, ...] = (None,)
        else:
            regions = tuple(r for r in phone_regions if national_lengths[r](digits))
        for region in regions:
            try:
                if phonenumbers.is_valid_number(phonenumbers.parse(candidate, region)):
                    return True
            except phonenumbers.NumberParseException:
                continue
        return False

    return [
        Pattern("credit_card", _CARD, refine=_longest_valid_prefix(is_card, _CARD_SEPARATORS), widen=_alone),
        Pattern("credit_card", _SPLIT_FIRST, widen=split_card),
        Pattern("iban", _IBAN, refine=_longest_valid_prefix(is_iban)),
        Pattern("email", _EMAIL_DOMAIN, widen=_email_local_part),
        Pattern("ip", _IPV4, refine=_ipv4),
        Pattern("ip", _IPV6, refine=_ipv6, anchor=_IPV6_ANCHOR),
        Pattern("phone", _PHONE, refine=_longest_valid_prefix(is_phone), anchor=_PHONE_ANCHOR),
    ]


def _iban_checksum_holds(compact: str) -> bool:
    """ISO 7064 mod 97-10, the cheap test first (stdnum then checks each country's format): a random candidate
    passes one time in 97."""
    if not 15 <= len(compact) <= 34:
        return False
    return int((compact[4:] + compact[:4]).translate(_IBAN_DIGITS)) % 97 == 1


_IBAN_DIGITS = str.maketrans({letter: str(10 + n) for n, letter in enumerate("ABCDEFGHIJKLMNOPQRSTUVWXYZ")})


def _national_lengths(phonenumbers: Any, region: str) -> Callable[[str], bool]:
    """Whether digits written nationally (perhaps after the trunk prefix, as GB's 0) have a length the region
    allows."""
    metadata = phonenumbers.PhoneMetadata.metadata_for_region(region)
    if metadata is None:
        raise ConfigurationError(f"{region!r} is not a phone region: give ISO 3166 codes such as 'US' or 'GB'.")
    lengths = frozenset(metadata.general_desc.possible_length or ())
    prefix = metadata.national_prefix or ""

    def possible(digits: str) -> bool:
        if len(digits) in lengths:
            return True
        return bool(prefix) and digits.startswith(prefix) and len(digits) - len(prefix) in lengths

    return possible


def _email_local_part(text: str, at: int, end: int) -> tuple[int, int] | None:
    """The pattern finds `@domain.tld`; the local part is the run of allowed characters before it (at most 64,
    RFC 5321), without leading dots. Without one (`@pytest.mark`, a decorator) it is no address."""
    start = at
    while start > max(0, at - 64) and (text[start - 1].isalnum() or text[start - 1] in _EMAIL_LOCAL_CHARS):
        start -= 1
    while start < at and text[start] == ".":
        start += 1
    return (start, end) if start < at else None


def _alone(text: str, start: int, end: int) -> tuple[int, int] | None:
    """A card number glued to letters ("card4111111111111111", "4111111111111111exp") is one, unless the token it
    is glued into holds other digits too (a hash, a base64 key): then its digits are part of something else. After
    a `+` it is a phone number."""
    left = start
    while left > max(0, start - _GLUE_LIMIT) and text[left - 1].isascii() and text[left - 1].isalnum():
        left -= 1
    right = end
    while right < min(len(text), end + _GLUE_LIMIT) and text[right].isascii() and text[right].isalnum():
        right += 1
    glued = text[left:start] + text[end:right]
    if any(ch.isdigit() for ch in glued) or (start > 0 and text[start - 1] == "+"):
        return None  # a card number never follows a `+`: that is an international phone number
    return start, end


def _longest_valid_prefix(valid: Callable[[str], bool], separators: re.Pattern[str] | None = None) -> Refine:
    """A candidate may run into the next number ("4111 1111 1111 1111 2024", "212-555-0123 212-555-0199"): try it
    whole, then without its trailing groups one by one (cut at runs of `separators`); after a valid number, the rest
    of the candidate the same way. At most `_MAX_TRIES` validations a candidate, so the work per candidate stays
    bounded."""

    def refine(candidate: str) -> list[tuple[int, int]]:
        found: list[tuple[int, int]] = []
        runs = [m.span() for m in (separators or _SEPARATOR).finditer(candidate)]
        start, tries = 0, 0
        while start < len(candidate) and tries < _MAX_TRIES:
            ends = [len(candidate)] + [at for at, _ in reversed(runs) if at > start]
            for end in ends:
                tries += 1
                if valid(candidate[start:end]):
                    found.append((start, end))
                    break
                if tries >= _MAX_TRIES:
                    break
            else:
                end = len(candidate)
            start = next((after for at, after in runs if at >= end), len(candidate))
        return found

    return refine


_MAX_TRIES = 10


def _ipv4(candidate: str) -> list[tuple[int, int]]:
    try:
        ipaddress.IPv4Address(candidate)
    except ValueError:
        return []
    return [(0, len(candidate))]


def _ipv6(candidate: str) -> list[tuple[int, int]]:
    """An IPv6 address with at least three groups written out: not `::`, `::1` or a slice like `[::2]`."""
    if sum(1 for group in candidate.split(":") if group) < 3:
        return []
    try:
        ipaddress.IPv6Address(candidate)
    except ValueError:
        return []
    return [(0, len(candidate))]
