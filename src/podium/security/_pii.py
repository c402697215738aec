"""Finding secrets and personal data in text, at every boundary where text crosses into or out of podium: tool
arguments and results, gateway prompts and replies, memory writes.

The patterns come from maintained libraries wherever one exists: detect-secrets' plugins (Yelp) for credentials,
phonenumbers (Google's libphonenumber metadata) to tell a phone number from any other run of digits,
python-stdnum's Luhn and IBAN checks for card and account numbers, the standard library's `ipaddress` for
addresses. Only the patterns that find candidates for those validators are podium's own (email, card, IBAN, IP,
phone: `_pii_personal`). Presidio was measured and left out: its regex recognizers import spaCy (366 MB installed,
1.8 s to import) and its phone recognizer took 8.8 ms on a 150-character prompt.

The text is first normalised (`_pii_engine.normalise`: NFKC character by character, zero-width characters dropped)
so that a no-break or zero-width space cannot hide a number or a key; findings are spans of the original text.
Time is linear in the length of the text, whatever it holds (see `_pii_engine`).

A `Finding` holds a kind and a span, never the matched text: what is logged about it is its kind and a count
(`count_kinds`).
"""

from __future__ import annotations

import functools
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from podium.security._pii_engine import (
    KINDS,
    OUTPUT_KINDS,
    OVERLAP,
    PRIORITY,
    Anchor,
    Claimed,
    Context,
    Finding,
    Kind,
    Pattern,
    Refine,
    import_scanner,
    map_back,
    normalise,
    run_pattern,
    settle,
)
from podium.security._pii_personal import personal_patterns

_MAX_PEM_CHARS = 16_384  # a private key block is redacted up to its END line, or this far
_MIN_PASSWORD_CHARS = 6


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
            kind = min(kind, spans[index].kind, key=PRIORITY.__getitem__)
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
        normalised, origins = normalise(text)
        context = Context(normalised)
        found: list[Finding] = []
        for pattern in _patterns(self.phone_regions):
            if pattern.kind in self.kinds:
                # Validating a phone number is the costliest check: skip candidates already found as another kind.
                claimed = Claimed(found) if pattern.kind == "phone" else None
                found.extend(run_pattern(pattern, context, claimed))
        return map_back(settle(found), origins)


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
_ASSIGNMENT = Anchor(
    re.compile(
        r"""(?:key|pass|pw|token|cloudant|softlayer)[\w-]{0,12}["'\]]{0,2} *(?::=|=>|::|[=: ]) *["']?[a-z0-9_/+-]{24}"""
    ),
    before=32,
    after=80,
    lower=True,
)
_PLUGIN_ANCHORS: dict[tuple[str, int], Anchor] = {
    ("AWSKeyDetector", 1): Anchor(re.compile(r"aws"), after=100, lower=True),
    ("ArtifactoryDetector", 0): Anchor(re.compile(r"AKC"), before=1),
    ("ArtifactoryDetector", 1): Anchor(re.compile(r"AP[0-9A-F]"), before=1),
    # A URL's password ends at the `@` before its host.
    ("BasicAuthDetector", 0): Anchor(re.compile(r"@"), before=256, after=1),
    ("CloudantDetector", 0): _ASSIGNMENT,
    ("CloudantDetector", 1): _ASSIGNMENT,
    ("IbmCloudIamDetector", 0): _ASSIGNMENT,
    ("IbmCosHmacDetector", 0): _ASSIGNMENT,
    # A JWT's payload is JSON too, so `.eyJ` follows a header of (in practice) under 512 characters.
    ("JwtTokenDetector", 0): Anchor(re.compile(r"\.eyJ"), before=512),
    ("MailchimpDetector", 0): Anchor(re.compile(r"-us[0-9]"), before=32, after=3),
    # An npm token follows `:_authToken=` on an .npmrc line that names its registry (`//host/path/`).
    ("NpmDetector", 0): Anchor(re.compile(r"/:_authToken="), before=256, after=256),
    # OpenAI keys carry `T3BlbkFJ` ("OpenAI" in base64) after a prefix of at most ~200 characters.
    ("OpenAIDetector", 0): Anchor(re.compile(r"T3BlbkFJ"), before=256, after=20),
    ("SoftlayerDetector", 0): _ASSIGNMENT,
    ("TelegramBotTokenDetector", 0): Anchor(re.compile(r"[0-9]{8}:"), before=2, after=36),
}


@functools.cache
def _patterns(phone_regions: tuple[str, ...]) -> tuple[Pattern, ...]:
    """Every pattern, compiled once per set of phone regions; imports the scanners (the `api` extra) on first use."""
    patterns: list[Pattern] = []
    for module_name, class_name, kind in _SECRET_PLUGINS:
        plugin = getattr(import_scanner(f"detect_secrets.plugins.{module_name}"), class_name)
        group = 1 if class_name in _SECRET_IN_GROUP else 0
        refine = _jwt_refiner(plugin) if kind == "jwt" else None
        widen = _pem_block if kind == "private_key" else _jwt_signature if kind == "jwt" else None
        for index, regex in enumerate(plugin.denylist):
            anchor = _PLUGIN_ANCHORS.get((class_name, index))
            patterns.append(Pattern(kind, regex, group if regex.groups else 0, refine, widen, anchor))
    patterns.extend(_password_patterns())
    patterns.extend(personal_patterns(phone_regions))
    return tuple(patterns)


def _jwt_refiner(plugin: Any) -> Refine:
    def refine(candidate: str) -> list[tuple[int, int]]:
        return [(0, len(candidate))] if plugin.is_formally_valid(candidate) else []

    return refine


def _jwt_signature(text: str, start: int, end: int) -> tuple[int, int]:
    """detect-secrets' JWT pattern ends lazily, before the signature: take it too."""
    rest = _JWT_REST.match(text, end, min(len(text), end + OVERLAP))
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


def _password_patterns() -> list[Pattern]:
    """detect-secrets' KeywordDetector regexes (`password: …`, `api_key = "…"` and the like, in config and code
    forms), each with the group that holds the value, anchored where its keyword starts. The value must look like a
    password, not like prose: one token of at least `_MIN_PASSWORD_CHARS`, not only letters, not a template or a
    variable (detect-secrets' own heuristic filters), not a reference (`settings.key`, `get_secret(…)`). So
    `password: hunter2!` is found and `password: please reset it` is not. The comparison form (`"hunter2" ==
    password`, the value before its keyword) is left out."""
    keyword = import_scanner("detect_secrets.plugins.keyword")
    heuristic = import_scanner("detect_secrets.filters.heuristic")
    by_regex: dict[re.Pattern[str], int] = {
        **keyword.CONFIG_DENYLIST_REGEX_TO_GROUP,
        **keyword.QUOTES_REQUIRED_DENYLIST_REGEX_TO_GROUP,
    }
    comparison = keyword.PRECEDED_BY_EQUAL_COMPARISON_SIGNS_QUOTES_REQUIRED_REGEX
    anchor = Anchor(re.compile(keyword.DENYLIST_REGEX), after=160, lower=True, exact=True)

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
        Pattern("password", regex, group, refine, anchor=anchor)
        for regex, group in by_regex.items()
        if regex is not comparison
    ]


_FIRST_TOKEN = re.compile(r"\S{1,256}")
# A value that names something rather than being it: `settings.api_key`, `get_secret(name)`, `env["PASSWORD"]`.
_REFERENCE = re.compile(r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+[,;]?|.*[(\[].*")
