"""Finding secrets and personal data in text: what the gateway checks in a prompt before it leaves and in a reply
before it reaches the client.

The patterns come from maintained libraries wherever one exists: detect-secrets' plugins (Yelp) for credentials,
phonenumbers (Google's libphonenumber metadata) to tell a phone number from any other run of digits,
python-stdnum's Luhn and IBAN checks for card and account numbers, the standard library's `ipaddress` for
addresses. Only the patterns that find candidates for those validators are podium's own (email, card, IBAN, IP,
phone). Presidio was measured and left out: its regex recognizers import spaCy (366 MB installed, 1.8 s to
import) and its phone recognizer took 8.8 ms on a 150-character prompt.

Time is linear in the length of the text, whatever it holds: every pattern runs over windows of `_WINDOW`
characters (overlapping by `_OVERLAP`, longer than any span a pattern recognises), so even a pattern that
backtracks badly on some input does bounded work per window. Nothing is truncated: all of a long text is scanned.
Patterns that are slow per character (case-insensitive keyword alternations) run only near an anchor that a fast
pattern finds first (`_Anchor`).

A `Finding` holds a kind and a span, never the matched text: what is logged about it is its kind and a count
(`count_kinds`).
"""

from __future__ import annotations

import bisect
import functools
import importlib
import ipaddress
import itertools
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Literal, get_args

from podium.errors import ConfigurationError

Kind = Literal["private_key", "aws_key", "api_key", "jwt", "password", "credit_card", "iban", "email", "ip", "phone"]
KINDS: tuple[Kind, ...] = get_args(Kind)  # by priority: where spans overlap, the first kind names the redaction
SECRET_KINDS: frozenset[Kind] = frozenset({"private_key", "aws_key", "api_key", "jwt", "password"})
PII_KINDS: frozenset[Kind] = frozenset({"credit_card", "iban", "email", "ip", "phone"})
# What a model's reply must not carry by default: credentials, and card numbers (a reply that quotes the user's
# own e-mail address or a documentation IP address is normal).
OUTPUT_KINDS: frozenset[Kind] = SECRET_KINDS | {"credit_card"}

_PRIORITY = {kind: rank for rank, kind in enumerate(KINDS)}
_WINDOW = 4096
_OVERLAP = 1280  # > the longest bounded span: GitLab agent tokens (1,032), e-mail addresses (~600)
_MAX_PEM_CHARS = 16_384  # a private key block is redacted up to its END line, or this far
_MIN_PASSWORD_CHARS = 6
_EXTRA_FIX = "The gateway's scanners come with `podium serve`, in the `api` extra: pip install 'podium[api]'."


@dataclass(frozen=True, slots=True, order=True)
class Finding:
    """A forbidden span `text[start:end]` of some kind. It never holds the text itself."""

    start: int
    end: int
    kind: Kind


def count_kinds(findings: Iterable[Finding]) -> dict[str, int]:
    """The audit form of findings: how many of each kind, nothing of what they matched."""
    return dict(sorted(Counter(finding.kind for finding in findings).items()))


def redact(text: str, findings: Iterable[Finding]) -> str:
    """`text` with each finding's span replaced by `[REDACTED:<kind>]`; overlapping spans become one, named by the
    kind that ranks first in `KINDS`."""
    spans = sorted((f for f in findings if 0 <= f.start < f.end <= len(text)), key=lambda f: (f.start, -f.end))
    pieces: list[str] = []
    cursor = index = 0
    while index < len(spans):
        start, end, kind = spans[index].start, spans[index].end, spans[index].kind
        index += 1
        while index < len(spans) and spans[index].start < end:
            end = max(end, spans[index].end)
            kind = min(kind, spans[index].kind, key=_PRIORITY.__getitem__)
            index += 1
        pieces.append(text[cursor:start])
        pieces.append(f"[REDACTED:{kind}]")
        cursor = end
    pieces.append(text[cursor:])
    return "".join(pieces)


@dataclass(frozen=True)
class Scanner:
    """Finds `kinds` in text. National phone numbers (without a leading +) are read as numbers of `phone_regions`
    (ISO 3166 codes); each region costs a validation per candidate, so keep the list to the ones you serve."""

    kinds: frozenset[Kind] = frozenset(KINDS)
    phone_regions: tuple[str, ...] = ("US", "GB")

    def scan(self, text: str) -> list[Finding]:
        """Every finding of `kinds` in `text`, sorted, overlapping findings of one kind merged, and a finding that
        lies inside one of a higher-ranked kind dropped (a phone number inside an IBAN is the IBAN's)."""
        context = _Context(text)
        found: list[Finding] = []
        for pattern in _patterns(self.phone_regions):
            if pattern.kind in self.kinds:
                # Validating a phone number is the costliest check: skip candidates already found as another kind.
                claimed = _Claimed(found) if pattern.kind == "phone" else None
                found.extend(_run(pattern, context, claimed))
        return _settle(found)


_default_scanner = functools.cache(Scanner)
_output_scanner = functools.cache(functools.partial(Scanner, kinds=OUTPUT_KINDS))


def scan(text: str) -> list[Finding]:
    """Every secret and piece of personal data in `text` (see `Scanner`), with the default settings."""
    return _default_scanner().scan(text)


def scan_output(text: str) -> list[Finding]:
    """What a model's reply must not carry by default (`OUTPUT_KINDS`): the default detector of `OutputGuard`."""
    return _output_scanner().scan(text)


def require_scanners() -> None:
    """Import the scanners now (at start-up), so a missing install is a clear error before any request."""
    _patterns(_default_scanner().phone_regions)


# --- The engine ---------------------------------------------------------------------------------------------------

# A refiner looks at a candidate a pattern found and returns the spans inside it that really are of its kind
# (relative to the candidate): none when it is not. A widener moves a finding's edges in the whole text (or,
# returning None, rejects it).
_Refine = Callable[[str], list[tuple[int, int]]]
_Widen = Callable[[str, int, int], tuple[int, int] | None]


@dataclass(frozen=True)
class _Anchor:
    """Where a slow pattern can match: near what `regex` finds (in the text with ASCII lower-cased if `lower`).
    With `exact`, the pattern must start where the anchor starts; otherwise it may start up to `before` characters
    earlier, and it may end up to `after` characters after the anchor's end."""

    regex: re.Pattern[str]
    before: int = 0
    after: int = _OVERLAP
    lower: bool = False
    exact: bool = False


@dataclass(frozen=True)
class _Pattern:
    kind: Kind
    regex: re.Pattern[str]
    group: int = 0  # the group that holds the secret; the whole match when it did not take part
    refine: _Refine | None = None
    widen: _Widen | None = None
    anchor: _Anchor | None = None


class _Context:
    """One scan's text and what its patterns share: the text lower-cased (for the anchors that ignore case) and
    each anchor's hits, found once for all the patterns that use it. Anchor patterns are simple and linear, so
    they run over the whole text rather than window by window."""

    def __init__(self, text: str) -> None:
        self.text = text
        self._lowered: str | None = None
        self._hits: dict[_Anchor, tuple[list[int], list[int]]] = {}

    def hits(self, anchor: _Anchor, start: int, end: int) -> Iterator[tuple[int, int]]:
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


class _Claimed:
    """Spans already found, to test a candidate against in O(log n)."""

    def __init__(self, findings: Iterable[Finding]) -> None:
        spans = sorted((f.start, f.end) for f in findings)
        self._starts = [start for start, _ in spans]
        self._furthest = list(itertools.accumulate((end for _, end in spans), max))

    def overlaps(self, start: int, end: int) -> bool:
        before = bisect.bisect_left(self._starts, end)  # spans that start before `end`
        return before > 0 and self._furthest[before - 1] > start


def _windows(length: int) -> Iterator[tuple[int, int]]:
    start = 0
    while True:
        yield start, min(length, start + _WINDOW)
        if start + _WINDOW >= length:
            return
        start += _WINDOW - _OVERLAP


def _run(pattern: _Pattern, context: _Context, claimed: _Claimed | None) -> Iterator[Finding]:
    text = context.text
    covered = 0  # the end of the last finding: one that starts inside it merges with it, so needs no more work
    for window_start, window_end in _windows(len(text)):
        for match in _matches(pattern, context, window_start, window_end):
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


def _matches(pattern: _Pattern, context: _Context, start: int, end: int) -> Iterator[re.Match[str]]:
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


def _settle(found: Iterable[Finding]) -> list[Finding]:
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
    merged.sort(key=lambda f: (f.start, -f.end, _PRIORITY[f.kind]))
    furthest_end = [-1] * len(KINDS)
    kept: list[Finding] = []
    for finding in merged:
        rank = _PRIORITY[finding.kind]
        if max(furthest_end[:rank], default=-1) < finding.end:
            kept.append(finding)
        furthest_end[rank] = max(furthest_end[rank], finding.end)
    return sorted(kept)


def _import(module: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ConfigurationError(f"{module} is not installed. {_EXTRA_FIX}") from exc


# --- Secrets: detect-secrets ----------------------------------------------------------------------------------

# detect-secrets plugins, by module and class, and the kind podium files their findings under. Left out: the
# high-entropy string plugins (every hash and UUID in a prompt would be a "secret"), IPPublicDetector (addresses
# are the `ip` kind here) and KeywordDetector's classes (used below with its own groups).
_SECRET_PLUGINS: tuple[tuple[str, str, Kind], ...] = (
    ("private_key", "PrivateKeyDetector", "private_key"),
    ("aws", "AWSKeyDetector", "aws_key"),
    ("artifactory", "ArtifactoryDetector", "api_key"),
    ("azure_storage_key", "AzureStorageKeyDetector", "api_key"),
    ("cloudant", "CloudantDetector", "api_key"),
    ("discord", "DiscordBotTokenDetector", "api_key"),
    ("github_token", "GitHubTokenDetector", "api_key"),
    ("gitlab_token", "GitLabTokenDetector", "api_key"),
    ("ibm_cloud_iam", "IbmCloudIamDetector", "api_key"),
    ("ibm_cos_hmac", "IbmCosHmacDetector", "api_key"),
    ("mailchimp", "MailchimpDetector", "api_key"),
    ("npm", "NpmDetector", "api_key"),
    ("openai", "OpenAIDetector", "api_key"),
    ("pypi_token", "PypiTokenDetector", "api_key"),
    ("sendgrid", "SendGridDetector", "api_key"),
    ("slack", "SlackDetector", "api_key"),
    ("softlayer", "SoftlayerDetector", "api_key"),
    ("square_oauth", "SquareOAuthDetector", "api_key"),
    ("stripe", "StripeDetector", "api_key"),
    ("telegram_token", "TelegramBotTokenDetector", "api_key"),
    ("twilio", "TwilioKeyDetector", "api_key"),
    ("jwt", "JwtTokenDetector", "jwt"),
    ("basic_auth", "BasicAuthDetector", "password"),
)
# Plugins whose regexes capture the secret itself in group 1 (an assignment's value, a URL's password); the
# others' groups are parts of a token's prefix, so their whole match is the secret.
_SECRET_IN_GROUP = frozenset(
    {"AWSKeyDetector", "BasicAuthDetector", "CloudantDetector", "IbmCloudIamDetector", "IbmCosHmacDetector",
     "NpmDetector", "SoftlayerDetector"}
)  # fmt: skip
# Where the plugins' slower regexes (20-100 ns a character, against 1-10 for the rest) may match, by class and
# position in its denylist. An assignment (`ibm_cloud_api_key = …`) names a credential word, then within a few
# characters (quotes, brackets, `=`, `:`, `=>` or spaces) a value of 24-64 characters.
_ASSIGNMENT = _Anchor(
    re.compile(
        r"""(?:key|pass|pw|token|cloudant|softlayer)[\w-]{0,12}["'\]]{0,2} *(?::=|=>|::|[=: ]) *["']?[a-z0-9_/+-]{24}"""
    ),
    before=32,
    after=80,
    lower=True,
)
_PLUGIN_ANCHORS: dict[tuple[str, int], _Anchor] = {
    ("AWSKeyDetector", 1): _Anchor(re.compile(r"aws"), after=100, lower=True),
    ("ArtifactoryDetector", 0): _Anchor(re.compile(r"AKC"), before=1),
    ("ArtifactoryDetector", 1): _Anchor(re.compile(r"AP[0-9A-F]"), before=1),
    # A URL's password ends at the `@` before its host.
    ("BasicAuthDetector", 0): _Anchor(re.compile(r"@"), before=256, after=1),
    ("CloudantDetector", 0): _ASSIGNMENT,
    ("CloudantDetector", 1): _ASSIGNMENT,
    ("IbmCloudIamDetector", 0): _ASSIGNMENT,
    ("IbmCosHmacDetector", 0): _ASSIGNMENT,
    # A JWT's payload is JSON too, so `.eyJ` follows a header of (in practice) under 512 characters.
    ("JwtTokenDetector", 0): _Anchor(re.compile(r"\.eyJ"), before=512),
    ("MailchimpDetector", 0): _Anchor(re.compile(r"-us[0-9]"), before=32, after=3),
    # An npm token follows `:_authToken=` on an .npmrc line that names its registry (`//host/path/`).
    ("NpmDetector", 0): _Anchor(re.compile(r"/:_authToken="), before=256, after=256),
    # OpenAI keys carry `T3BlbkFJ` ("OpenAI" in base64) after a prefix of at most ~200 characters.
    ("OpenAIDetector", 0): _Anchor(re.compile(r"T3BlbkFJ"), before=256, after=20),
    ("SoftlayerDetector", 0): _ASSIGNMENT,
    ("TelegramBotTokenDetector", 0): _Anchor(re.compile(r"[0-9]{8}:"), before=2, after=36),
}


@functools.cache
def _patterns(phone_regions: tuple[str, ...]) -> tuple[_Pattern, ...]:
    """Every pattern, compiled once per set of phone regions; imports the scanners (the `api` extra) on first use."""
    patterns: list[_Pattern] = []
    for module_name, class_name, kind in _SECRET_PLUGINS:
        plugin = getattr(_import(f"detect_secrets.plugins.{module_name}"), class_name)
        group = 1 if class_name in _SECRET_IN_GROUP else 0
        refine = _jwt_refiner(plugin) if kind == "jwt" else None
        widen = _pem_block if kind == "private_key" else _jwt_signature if kind == "jwt" else None
        for index, regex in enumerate(plugin.denylist):
            anchor = _PLUGIN_ANCHORS.get((class_name, index))
            patterns.append(_Pattern(kind, regex, group if regex.groups else 0, refine, widen, anchor))
    patterns.extend(_password_patterns())
    patterns.extend(_pii_patterns(phone_regions))
    return tuple(patterns)


def _jwt_refiner(plugin: Any) -> _Refine:
    def refine(candidate: str) -> list[tuple[int, int]]:
        return [(0, len(candidate))] if plugin.is_formally_valid(candidate) else []

    return refine


def _jwt_signature(text: str, start: int, end: int) -> tuple[int, int]:
    """detect-secrets' JWT pattern ends lazily, before the signature: take it too."""
    rest = _JWT_REST.match(text, end, min(len(text), end + _OVERLAP))
    return start, rest.end() if rest else end


_JWT_REST = re.compile(r"[A-Za-z0-9_\-+/=.]*")


def _pem_block(text: str, start: int, end: int) -> tuple[int, int]:
    """detect-secrets finds a private key's header (`BEGIN RSA PRIVATE KEY`): widen the span to the whole block,
    from its leading dashes to the end of its END line, or through its base64 body if the END is missing."""
    dashes = text.rfind("-----", max(0, start - 5), start)
    start = dashes if dashes >= 0 else start
    limit = min(len(text), end + _MAX_PEM_CHARS)
    end_line = text.find("-----END", end, limit)
    if end_line >= 0:
        closing = text.find("-----", end_line + 8, min(len(text), end_line + 100))
        return start, (closing + 5 if closing >= 0 else end_line + 8)
    body = _PEM_BODY.match(text, end, limit)
    return start, body.end() if body else end


_PEM_BODY = re.compile(r"[-A-Za-z0-9+/=\s:,]*")


def _password_patterns() -> list[_Pattern]:
    """detect-secrets' KeywordDetector regexes (`password: …`, `api_key = "…"` and the like, in config and code
    forms), each with the group that holds the value, anchored where its keyword starts. The value must look like a
    password, not like prose: one token of at least `_MIN_PASSWORD_CHARS`, not only letters, not a template or a
    variable (detect-secrets' own heuristic filters), not a reference (`settings.key`, `get_secret(…)`). So
    `password: hunter2!` is found and `password: please reset it` is not. The comparison form (`"hunter2" ==
    password`, the value before its keyword) is left out."""
    keyword = _import("detect_secrets.plugins.keyword")
    heuristic = _import("detect_secrets.filters.heuristic")
    by_regex: dict[re.Pattern[str], int] = {
        **keyword.CONFIG_DENYLIST_REGEX_TO_GROUP,
        **keyword.QUOTES_REQUIRED_DENYLIST_REGEX_TO_GROUP,
    }
    comparison = keyword.PRECEDED_BY_EQUAL_COMPARISON_SIGNS_QUOTES_REQUIRED_REGEX
    anchor = _Anchor(re.compile(keyword.DENYLIST_REGEX), after=160, lower=True, exact=True)

    def refine(candidate: str) -> list[tuple[int, int]]:
        token = _FIRST_TOKEN.search(candidate)
        if token is None:
            return []
        value = token.group()
        if (
            len(value) < _MIN_PASSWORD_CHARS
            or value.isalpha()
            or _REFERENCE.fullmatch(value)
            or heuristic.is_templated_secret(value)
            or heuristic.is_prefixed_with_dollar_sign(value)
            or heuristic.is_sequential_string(value)
        ):
            return []
        return [token.span()]

    return [
        _Pattern("password", regex, group, refine, anchor=anchor)
        for regex, group in by_regex.items()
        if regex is not comparison
    ]


_FIRST_TOKEN = re.compile(r"\S{1,256}")
# A value that names something rather than being it: `settings.api_key`, `get_secret(name)`, `env["PASSWORD"]`.
_REFERENCE = re.compile(r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+[,;]?|.*[(\[].*")


# --- Personal data: candidates found here, validated by libraries ---------------------------------------------

# Each pattern starts with a character class and puts its left-boundary check after it, so Python's re skips
# ahead to that class quickly; every repetition is bounded.
_CARD = re.compile(r"[2-6](?<![0-9][2-6])[0-9]{3}(?:[ -]?[0-9]{3,6}){2,4}(?![0-9])")
_IBAN = re.compile(r"[A-Z](?<![A-Za-z0-9][A-Z])[A-Z][0-9]{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?(?![A-Za-z0-9])")
_EMAIL_DOMAIN = re.compile(r"@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.){1,8}[A-Za-z]{2,24}(?![\w-])")
_EMAIL_LOCAL_CHARS = frozenset("!#$%&'*+/=?^_`{|}~.-")
_IPV4 = re.compile(r"[0-9](?<![0-9.][0-9])[0-9]{0,2}\.(?:[0-9]{1,3}\.){2}[0-9]{1,3}(?!\.?[0-9])")
_IPV6 = re.compile(r"(?<![\w:])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?![\w:])")
_IPV6_ANCHOR = _Anchor(re.compile(r":[0-9A-Fa-f]{0,4}:"), before=40, after=40)
_PHONE = re.compile(r"(?<![\w+.-])\+?(?:\([0-9]{1,4}\)|[0-9]{1,4})(?:[ .-]?(?:\([0-9]{1,5}\)|[0-9]{1,5})){1,6}(?!\w)")
_PHONE_ANCHOR = _Anchor(re.compile(r"[0-9][0-9 .()-]{5,}[0-9]"), before=2, after=1)
_SEPARATOR = re.compile(r"[ .-]")


def _pii_patterns(phone_regions: tuple[str, ...]) -> list[_Pattern]:
    luhn = _import("stdnum.luhn")
    iban = _import("stdnum.iban")
    phonenumbers = _import("phonenumbers")

    def is_card(candidate: str) -> bool:
        digits = "".join(ch for ch in candidate if ch.isdigit())
        return 13 <= len(digits) <= 19 and bool(luhn.is_valid(digits))

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
        _Pattern("credit_card", _CARD, refine=_longest_valid_prefix(is_card)),
        _Pattern("iban", _IBAN, refine=_longest_valid_prefix(is_iban)),
        _Pattern("email", _EMAIL_DOMAIN, widen=_email_local_part),
        _Pattern("ip", _IPV4, refine=_ipv4),
        _Pattern("ip", _IPV6, refine=_ipv6, anchor=_IPV6_ANCHOR),
        _Pattern("phone", _PHONE, refine=_longest_valid_prefix(is_phone), anchor=_PHONE_ANCHOR),
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


def _longest_valid_prefix(valid: Callable[[str], bool]) -> _Refine:
    """A candidate may run into the next number ("4111 1111 1111 1111 2024", "212-555-0123 212-555-0199"): try it
    whole, then without its trailing groups one by one; after a valid number, the rest of the candidate the same
    way. At most `_MAX_TRIES` validations a candidate, so the work per candidate stays bounded."""

    def refine(candidate: str) -> list[tuple[int, int]]:
        found: list[tuple[int, int]] = []
        separators = [m.start() for m in _SEPARATOR.finditer(candidate)]
        start, tries = 0, 0
        while start < len(candidate) and tries < _MAX_TRIES:
            ends = [len(candidate)] + [at for at in reversed(separators) if at > start]
            for end in ends:
                tries += 1
                if valid(candidate[start:end]):
                    found.append((start, end))
                    break
                if tries >= _MAX_TRIES:
                    break
            else:
                end = len(candidate)
            start = next((at + 1 for at in separators if at >= end), len(candidate))
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
