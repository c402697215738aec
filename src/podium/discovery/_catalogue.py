"""The open AI-service catalogue: which hosts belong to which AI service, and how risky each service is.

The data ships with podium (`catalogue.toml` beside this module); an organisation marks services sanctioned or
blocked, and adds its own, in podium.toml's [discovery] section. Matching is by domain suffix on label
boundaries, so `chat.openai.com` is OpenAI while `openai.com.evil.net` and `notopenai.com` are not. A domain that
anyone can publish under (a public suffix such as `vercel.app` or `hf.space`) can only be listed as an exact host:
otherwise every site hosted there would count as the service.

The risk score (0-100) is computed from each service's factors by `risk_score`, the formula docs/shadow-ai.md
publishes; it is never written in the data. What nobody knows about a service counts as risk, never as safe.
"""

from __future__ import annotations

import datetime as dt
import difflib
import functools
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import TYPE_CHECKING, Any, Literal, get_args

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    ValidationError,
    field_validator,
    model_validator,
)

from podium.errors import ConfigurationError, NotFoundError

if TYPE_CHECKING:
    import tldextract

    from podium.models import DiscoverySetting
    from podium.settings import Settings

Category = Literal[
    "chat-assistant",
    "coding-assistant",
    "image",
    "voice-audio",
    "video",
    "model-api",
    "agent-platform",
    "mcp-platform",
    "saas-ai-feature",
    "search",
    "research",
    "writing",
    "translation",
    "meeting-notes",
    "design",
    "companion",
    "browser",
    "llmops",
    "model-hub",
    "gateway",
    "other",
]
CATEGORIES: tuple[str, ...] = get_args(Category)
"""What a service is for; `gateway` is podium's own."""

Equivalent = Literal["chat", "code", "embeddings"]
"""The kind of governed model that can replace a service (`podium discover sanction` offers one)."""

YesNo = Literal["yes", "no", "unknown"]

GATEWAY_ID = "podium-gateway"
"""The built-in service for the organisation's own gateway (`[discovery] gateway_hosts`): always sanctioned."""

MAX_HOST_LENGTH = 253
_MAX_RAW_HOST = 1024  # what normalisation looks at, at most: a longer string is refused before any work
_LABEL_CHARACTERS = "abcdefghijklmnopqrstuvwxyz0123456789-_"
_DROP_LABEL_CHARACTERS = str.maketrans("", "", _LABEL_CHARACTERS)
_ID_CHARACTERS = str.maketrans("", "", "abcdefghijklmnopqrstuvwxyz0123456789-")


class Training(BaseModel):
    """Whether the vendor trains its models on what customers send, by default, per tier."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    consumer: YesNo = Field(default="unknown", description="what one person gets signing up alone (free, paid, API)")
    business: YesNo = Field(default="unknown", description="a business or enterprise contract's default")


class RiskFactors(BaseModel):
    """What the catalogue knows about a service's handling of data, and where it read it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    trains_on_customer_data: Training = Field(default_factory=Training)
    enterprise_tier: StrictBool | Literal["unknown"] = "unknown"
    data_residency: tuple[str, ...] | Literal["unknown"] = Field(
        default="unknown", description="regions where the vendor can keep customer data, on any tier"
    )
    retention: StrictInt | Literal["until-deleted", "unknown"] = Field(
        default="unknown", description="days the vendor keeps what a person sends, on the tier one signs up to alone"
    )
    certifications: tuple[str, ...] | Literal["unknown"] = "unknown"
    source: str | None = Field(default=None, pattern=r"^https://\S+$", description="the vendor page the factors say")
    checked: dt.date | None = Field(default=None, description="when the row was last reviewed")

    @field_validator("retention")
    @classmethod
    def _days_are_not_negative(cls, days: int | str) -> int | str:
        if isinstance(days, int) and days < 0:
            raise ValueError("retention is a number of days (0 or more), 'until-deleted' or 'unknown'")
        return days


class SourcedFactors(RiskFactors):
    """The shipped catalogue's factors: every row says where it read them, and when."""

    source: str = Field(pattern=r"^https://\S+$")
    checked: dt.date


WEIGHTS: Mapping[str, int] = {
    "training_consumer": 35,
    "training_business": 10,
    "enterprise_tier": 10,
    "retention": 15,
    "data_residency": 15,
    "certifications": 15,
}
"""Each factor's share of the 0-100 score: the most a factor adds (docs/shadow-ai.md shows the same table)."""

_ASSURANCE = ("soc 2", "soc2", "iso 27001", "iso/iec 27001")


def risk_parts(factors: RiskFactors) -> dict[str, int]:
    """What each factor adds to the score, in the order of WEIGHTS (the report shows why a service scores high)."""
    training = factors.trains_on_customer_data
    has_business_tier = factors.enterprise_tier is True
    # Without a business tier a business gets the consumer terms.
    business = training.business if has_business_tier else training.consumer
    return {
        "training_consumer": 0 if training.consumer == "no" else WEIGHTS["training_consumer"],
        "training_business": 0 if business == "no" else WEIGHTS["training_business"],
        "enterprise_tier": 0 if has_business_tier else WEIGHTS["enterprise_tier"],
        "retention": _retention_points(factors.retention),
        "data_residency": _residency_points(factors.data_residency),
        "certifications": _certification_points(factors.certifications),
    }


def risk_score(factors: RiskFactors) -> int:
    """The published 0-100 score: the sum of `risk_parts` (0 = every factor known and safe)."""
    return sum(risk_parts(factors).values())


def _retention_points(retention: int | str) -> int:
    if not isinstance(retention, int):  # kept until deleted, or nobody knows: the worst
        return WEIGHTS["retention"]
    if retention == 0:
        return 0
    if retention <= 30:
        return 5
    return 10 if retention <= 365 else WEIGHTS["retention"]


def _residency_points(regions: tuple[str, ...] | str) -> int:
    if isinstance(regions, str) or not regions:
        return WEIGHTS["data_residency"]
    return 5 if len(regions) == 1 else 0  # one region, no choice; several, the customer picks


def _certification_points(certifications: tuple[str, ...] | str) -> int:
    if isinstance(certifications, str) or not certifications:
        return WEIGHTS["certifications"]
    named = " ".join(certifications).lower()
    return 0 if any(mark in named for mark in _ASSURANCE) else 10


def normalise_host(raw: str) -> str | None:
    """`raw` as a DNS name (lower case, no trailing dot, IDNA as ASCII), or None when it cannot be one.

    Hostile input is expected: anything too long, with an empty or oversized label, or characters no host name
    carries is refused (None), never an exception.
    """
    if len(raw) > _MAX_RAW_HOST:
        return None
    host = raw.strip()
    if not host.isascii():
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            return None
    host = host.lower().removesuffix(".")
    if not host or len(host) > MAX_HOST_LENGTH:
        return None
    for label in host.split("."):
        if not _valid_label(label):
            return None
    return host


def _valid_label(label: str) -> bool:
    if not 0 < len(label) <= 63 or label.translate(_DROP_LABEL_CHARACTERS) or label[0] == "-" or label[-1] == "-":
        return False
    if label.startswith("xn--"):
        try:
            label.encode("ascii").decode("idna")
        except UnicodeError:
            return False
    return True


@functools.cache
def _public_suffixes() -> tldextract.TLDExtract:
    """The Public Suffix List snapshot that tldextract ships: no fetch, no cache directory, nothing on the network."""
    import tldextract

    return tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None, include_psl_private_domains=True)


def registered_domain(host: str) -> str:
    """The part of `host` its owner registered (`chat.openai.com` -> `openai.com`; `app.vercel.app` stays whole,
    as each site there has its own owner); an address or bare suffix comes back as it is, invalid input bounded."""
    name = normalise_host(host)
    if name is None:
        return host[:MAX_HOST_LENGTH]
    return _public_suffixes()(name).top_domain_under_public_suffix or name


@dataclass(frozen=True)
class Service:
    """One AI service. `domains` match themselves and every subdomain; `hosts` match only exactly."""

    id: str
    name: str
    vendor: str
    category: str
    domains: tuple[str, ...]
    hosts: tuple[str, ...] = ()
    risk: int = 0  # 0-100, from the published formula (docs/shadow-ai.md)
    sanctioned: bool = False
    blocked: bool = False
    factors: RiskFactors = field(default_factory=RiskFactors, compare=False, hash=False)
    equivalent: str | None = None  # "chat", "code" or "embeddings": what a governed model can replace it with


@dataclass(frozen=True)
class Rule:
    """One matching rule, as the log readers join on it: `value` is a domain (suffix match) or an exact host."""

    value: str
    service: str
    exact: bool


class Catalogue:
    """Services by id, and the rules that map a host to one of them (a later service wins a rule it shares)."""

    def __init__(self, services: Iterable[Service]) -> None:
        self.services: dict[str, Service] = {s.id: s for s in services}
        self._suffixes = {d: s.id for s in self.services.values() for d in s.domains}
        self._exact = {h: s.id for s in self.services.values() for h in s.hosts}
        self._rules = [Rule(d, s, False) for d, s in self._suffixes.items()] + [
            Rule(h, s, True) for h, s in self._exact.items()
        ]

    def rules(self) -> Sequence[Rule]:
        """Every domain and host rule, for a reader that matches in its own engine (a join on suffixes)."""
        return self._rules

    def match(self, host: str) -> Service | None:
        """The service `host` belongs to (an exact host first, then the longest matching domain), or None."""
        name = normalise_host(host)
        if name is None:
            return None
        if (sid := self._exact.get(name)) is not None:
            return self.services[sid]
        start = 0
        while True:  # the whole name first, then each shorter suffix: the first found is the longest
            if (sid := self._suffixes.get(name[start:])) is not None:
                return self.services[sid]
            dot = name.find(".", start)
            if dot < 0:
                return None
            start = dot + 1

    def get(self, service_id: str) -> Service:
        """The service with this id; NotFoundError says which ids come close."""
        try:
            return self.services[service_id]
        except KeyError:
            raise NotFoundError(
                f"No AI service {service_id!r} in the catalogue{_did_you_mean(service_id, self.services)}. "
                "`podium discover` lists the ids it finds; add your own under [discovery.services.<id>]."
            ) from None

    @staticmethod
    def registered_domain(host: str) -> str:
        """See `registered_domain`: for reports that group hosts by who registered them."""
        return registered_domain(host)

    @classmethod
    def load(cls, setting: DiscoverySetting | None = None) -> Catalogue:
        """The shipped catalogue with the organisation's [discovery] section applied (sanctioned, blocked, its
        own services, its gateway). Any broken row or setting is a ConfigurationError naming it."""
        text = resources.files("podium.discovery").joinpath("catalogue.toml").read_text(encoding="utf-8")
        return cls.from_toml(text, setting, name="podium's catalogue.toml")

    @classmethod
    def from_toml(
        cls, text: str, setting: DiscoverySetting | None = None, *, name: str = "catalogue.toml"
    ) -> Catalogue:
        """A catalogue from the text of a catalogue.toml (a fork's, or a test's), checked like the shipped one."""
        return _build(_rows(text, name), setting, name)

    @classmethod
    def from_settings(cls, settings: Settings) -> Catalogue:
        """The catalogue as podium.toml (`settings.config_file`) configures it; the shipped one if there is none."""
        from podium.models import ModelConfig

        config_file = settings.config_file
        config = ModelConfig.load(config_file) if config_file else ModelConfig()
        return cls.load(config.discovery)


class _Entry(BaseModel):
    """An organisation's own service in podium.toml: only a domain or host is required."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str | None = Field(default=None, min_length=1, max_length=200)
    vendor: str = Field(default="unknown", min_length=1, max_length=200)
    category: Category = "other"
    domains: tuple[str, ...] = ()
    hosts: tuple[str, ...] = ()
    equivalent: Equivalent | None = None
    factors: RiskFactors = Field(default_factory=RiskFactors)

    @field_validator("domains", "hosts")
    @classmethod
    def _host_names(cls, values: tuple[str, ...]) -> tuple[str, ...]:
        names = []
        for value in values:
            name = normalise_host(value)
            if name is None or name != value.lower().removesuffix("."):
                raise ValueError(f"{value!r} is not a host name (write it in ASCII: punycode for IDN)")
            names.append(name)
        return tuple(names)

    @model_validator(mode="after")
    def _matches_something(self) -> _Entry:
        if not self.domains and not self.hosts:
            raise ValueError("a service needs at least one of domains or hosts")
        return self


class _ShippedEntry(_Entry):
    """A row of catalogue.toml: everything is said, with its source."""

    name: str = Field(min_length=1, max_length=200)
    vendor: str = Field(min_length=1, max_length=200)
    category: Category
    factors: SourcedFactors


def _rows(text: str, name: str) -> dict[str, Any]:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(f"{name} is not valid TOML: {exc}. Fix the file (or reinstall podium).") from None
    rows = data.get("services")
    if not isinstance(rows, dict):
        raise ConfigurationError(f"{name} has no [services.<id>] tables. Fix the file (or reinstall podium).")
    return rows


def _build(shipped: Mapping[str, Any], setting: DiscoverySetting | None, name: str) -> Catalogue:
    """Validate every row, merge the organisation's entries over the shipped ones, and mark what it decided."""
    own: Mapping[str, Mapping[str, object]] = setting.services if setting else {}
    entries: dict[str, _Entry] = {}
    for sid, row in shipped.items():
        entries[sid] = _validated(_ShippedEntry, sid, row, f"{name} [services")
    _refuse_shared_rules(entries, name)
    for sid, row in own.items():
        merged = _merge(shipped.get(sid), row)
        entries[sid] = _validated(_Entry, sid, merged, "podium.toml [discovery.services")
    if GATEWAY_ID in entries:
        raise ConfigurationError(
            f"[discovery.services.{GATEWAY_ID}] is podium's own gateway: set [discovery] gateway_hosts instead."
        )
    known = [*entries, GATEWAY_ID]
    sanctioned = _known_ids(setting.sanctioned if setting else (), known, "sanctioned") | {GATEWAY_ID}
    blocked = _known_ids(setting.blocked if setting else (), known, "blocked")
    if both := sorted(sanctioned & blocked):
        raise ConfigurationError(
            f"[discovery] blocks {', '.join(both)}, which is sanctioned (the gateway always is): remove it from "
            "one of the two lists."
        )
    services = [
        Service(
            id=sid,
            name=entry.name or sid,
            vendor=entry.vendor,
            category=entry.category,
            domains=entry.domains,
            hosts=entry.hosts,
            risk=risk_score(entry.factors),
            sanctioned=sid in sanctioned,
            blocked=sid in blocked,
            factors=entry.factors,
            equivalent=entry.equivalent,
        )
        for sid, entry in entries.items()
    ]
    services.append(_gateway(setting.gateway_hosts if setting else ()))
    return Catalogue(services)


def _validated(model: type[_Entry], sid: str, row: object, where: str) -> _Entry:
    if not sid or len(sid) > 63 or sid.translate(_ID_CHARACTERS) or sid[0] == "-":
        raise ConfigurationError(
            f"{where}.{sid[:63]!r}]: a service id is a slug (a-z, 0-9 and -, at most 63 characters): rename it."
        )
    try:
        entry = model.model_validate(row)
    except ValidationError as exc:
        error = exc.errors()[0]
        at = ".".join(str(part) for part in error["loc"]) or "the row"
        raise ConfigurationError(f"{where}.{sid}] {at}: {error['msg']}. Fix that field.") from None
    for value in entry.domains:
        _refuse_public_suffix(where, sid, value)
    return entry


def _refuse_public_suffix(where: str, sid: str, domain: str) -> None:
    parts = _public_suffixes()(domain)
    if not parts.domain:
        raise ConfigurationError(
            f"{where}.{sid}] domains: {domain!r} is a public suffix, so every site under it would count as {sid}. "
            "List the service's own host names under hosts instead."
        )
    if parts.is_private:
        raise ConfigurationError(
            f"{where}.{sid}] domains: {domain!r} is under {parts.suffix!r}, where anyone can publish a site, so it "
            "can only match exactly: move it to hosts."
        )


def _refuse_shared_rules(entries: Mapping[str, _Entry], name: str) -> None:
    """In the shipped catalogue, a domain or host belongs to one service (podium.toml's entries may take one)."""
    owner: dict[tuple[str, bool], str] = {}
    for sid, entry in entries.items():
        for value, exact in [*((d, False) for d in entry.domains), *((h, True) for h in entry.hosts)]:
            if (other := owner.setdefault((value, exact), sid)) != sid:
                raise ConfigurationError(f"{name} lists {value!r} for both {other} and {sid}: keep one.")


def _merge(shipped: object, own: Mapping[str, object]) -> dict[str, object]:
    """The organisation's fields over the shipped row's (its factors over the shipped factors, one by one)."""
    if not isinstance(shipped, dict):
        return dict(own)
    merged: dict[str, object] = {**shipped, **own}
    shipped_factors, own_factors = shipped.get("factors"), own.get("factors")
    if isinstance(shipped_factors, dict) and isinstance(own_factors, dict):
        merged["factors"] = {**shipped_factors, **own_factors}
    return merged


def _known_ids(ids: Iterable[str], known: Sequence[str], setting: str) -> set[str]:
    for sid in ids:
        if sid not in known:
            raise ConfigurationError(
                f"[discovery] {setting} names {sid[:63]!r}, which is neither in the catalogue nor in "
                f"[discovery.services]{_did_you_mean(sid, known)}. Fix the id, or add the service under "
                f"[discovery.services.{sid[:63]}]."
            )
    return set(ids)


def _did_you_mean(wrong: str, known: Iterable[str]) -> str:
    close = difflib.get_close_matches(wrong[:63], list(known), n=3)
    return f" (did you mean {' or '.join(repr(c) for c in close)}?)" if close else ""


def _gateway(hosts: Iterable[str]) -> Service:
    """The organisation's own gateway: its data stays under the organisation's governance, so its risk is 0."""
    names = []
    for host in hosts:
        name = normalise_host(host)
        if name is None:
            raise ConfigurationError(f"[discovery] gateway_hosts: {host[:MAX_HOST_LENGTH]!r} is not a host name.")
        names.append(name)
    return Service(
        id=GATEWAY_ID,
        name="podium gateway",
        vendor="your organisation",
        category="gateway",
        domains=(),
        hosts=tuple(names),
        risk=0,
        sanctioned=True,
    )
