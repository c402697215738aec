"""The model configuration: which models each tier has, what they cost, and how the router behaves.

A TOML file (``PODIUM_CONFIG``, or ``podium.toml``) declares remote models; local ones are built in or trained::

    [models.mixtral]
    tier = "intermediate"
    base_url = "http://127.0.0.1:8081/v1"     # any OpenAI-compatible endpoint
    api = "openai"                            # the wire protocol it speaks: "openai" (default) or "anthropic"
    model = "mixtral-8x7b-instruct"           # the name the endpoint knows it by
    api_key_env = "MIXTRAL_API_KEY"           # read from the environment, never from the file
    price = "together:mistralai/Mixtral-8x7B-Instruct-v0.1"   # genai-prices list price, or
    # price = { input_per_mtok = 0.9, output_per_mtok = 0.9 }  # and optionally cached_input_per_mtok,
    #                                                          # cache_write_per_mtok, reasoning_per_mtok
    timeout_s = 30

    [routing]
    floor = 0.8          # share of tasks that must succeed; the router buys quality up to here
    floor_window = 500   # ... in 95% (floor_confidence) of every 500 tasks, not just on average: it aims higher
    prior = "auto"       # start from public outcomes (docs/routing.md): "on" (needs podium[embeddings]), "off"
    shadow_rate = 0.05   # share of routed requests also answered by the strongest model (paid; default 0)
    breaker_failures = 3 # consecutive failures that open a provider's circuit breaker
    breaker_cooldown_s = 30

Every error names the setting to fix.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from podium._tiers import Tier
from podium.cost import Price
from podium.errors import ConfigurationError, ModelFileError
from podium.models._embeddings import embedder
from podium.models._route_prior import PriorScorer, RoutePrior
from podium.models._router import Router, RouteTier


class PriceSetting(BaseModel):
    model_config = ConfigDict(extra="forbid")

    input_per_mtok: float = Field(ge=0, description="USD per million input tokens")
    output_per_mtok: float = Field(ge=0, description="USD per million output tokens")
    cached_input_per_mtok: float | None = Field(
        default=None, ge=0, description="USD per million input tokens read from the prompt cache (default: input)"
    )
    cache_write_per_mtok: float | None = Field(
        default=None, ge=0, description="USD per million input tokens written to the prompt cache (default: input)"
    )
    reasoning_per_mtok: float | None = Field(
        default=None, ge=0, description="USD per million reasoning tokens (default: output)"
    )

    def price(self) -> Price:
        return Price(
            input_per_mtok=self.input_per_mtok,
            output_per_mtok=self.output_per_mtok,
            cached_input_per_mtok=self.cached_input_per_mtok,
            cache_write_per_mtok=self.cache_write_per_mtok,
            reasoning_per_mtok=self.reasoning_per_mtok,
        )


class RemoteModelSetting(BaseModel):
    """One model behind an OpenAI-compatible or Anthropic HTTP endpoint."""

    model_config = ConfigDict(extra="forbid")

    tier: Tier
    base_url: str = Field(pattern=r"^https?://", description="the endpoint, up to and including /v1")
    api: Literal["openai", "anthropic"] = Field(default="openai", description="the wire protocol the endpoint speaks")
    model: str = Field(min_length=1)
    api_key_env: str | None = None
    price: str | PriceSetting
    timeout_s: float = Field(default=30.0, gt=0)

    def resolved_price(self, name: str) -> Price:
        if isinstance(self.price, PriceSetting):
            return self.price.price()
        try:
            return Price.parse(self.price)
        except ConfigurationError as exc:
            raise ConfigurationError(f"models.{name}.price: {exc}") from None

    def api_key(self, name: str) -> str:
        if self.api_key_env is None:
            return "not-needed"
        key = os.environ.get(self.api_key_env)
        if not key:
            raise ConfigurationError(
                f"models.{name}.api_key_env names {self.api_key_env}, which is not set. Export it, or remove "
                "api_key_env if the endpoint needs no key."
            )
        return key


class RoutingSetting(BaseModel):
    model_config = ConfigDict(extra="forbid")

    floor: float = Field(default=0.8, ge=0, le=1)
    floor_window: int = Field(
        default=0, ge=0, description="tasks over which the floor must hold in floor_confidence of them (0: on average)"
    )
    floor_confidence: float = Field(default=0.95, ge=0.5, lt=1)
    shadow_rate: float = Field(
        default=0.0, ge=0, le=1, description="share of routed requests also answered by the strongest candidate, paid"
    )
    breaker_failures: int = Field(default=3, ge=1)
    breaker_cooldown_s: float = Field(default=30.0, gt=0)
    tiers: list[Tier] | None = Field(
        default=None, description="tiers the router may use; each must have a model (default: all that do)"
    )
    prior: Literal["auto", "on", "off"] = Field(
        default="auto",
        description="start from what public outcomes say of the models (needs podium[embeddings]; auto: if installed)",
    )

    def router(self, tiers: list[RouteTier], known_as: Mapping[str, str] | None = None) -> Router:
        """A router for requests served to workflows and gateway clients, held to this floor, starting from the
        prior (`known_as`: the name a tier's model has at its provider, which the prior knows it by). It draws no
        shadows itself: the workflow route stage draws `shadow_rate` of its served calls by key, the gateway's
        `podium/auto` of its whole answers by request."""
        return Router(
            tiers,
            floor=self.floor,
            window=self.floor_window,
            confidence=self.floor_confidence,
            shadow_rate=0.0,
            prior=self._prior(known_as or {}),
        )

    def _prior(self, known_as: Mapping[str, str]) -> PriorScorer | None:
        if self.prior == "off":
            return None
        try:
            return PriorScorer(RoutePrior.shipped(), embedder(), known_as)
        except ModelFileError as missing:
            if self.prior == "auto":
                return None  # the lean install: the router learns from its own outcomes alone
            raise ConfigurationError(
                f'routing.prior = "on" needs sentence embeddings: {missing} Or set routing.prior = "auto".'
            ) from None


class BreakerSetting(BaseModel):
    """[resilience.breaker]: when a tool's (or an agent's tool calls') circuit breaker opens, and for how long."""

    model_config = ConfigDict(extra="forbid")

    window: int = Field(default=20, ge=1, le=10_000, description="the last calls whose failure rate is measured")
    min_calls: int = Field(default=10, ge=1, le=10_000, description="no verdict on fewer calls (at most window)")
    failure_rate: float = Field(default=0.5, gt=0, le=1, description="it opens when this share of the window failed")
    cooldown_s: float = Field(default=30.0, gt=0, le=86_400, description="how long it stays open")
    trials: int = Field(default=3, ge=1, le=1_000, description="calls let through at once when half-open")

    @model_validator(mode="after")
    def _fits_window(self) -> BreakerSetting:
        if self.min_calls > self.window:
            raise ValueError(
                f"min_calls = {self.min_calls} is more than window = {self.window}, so the breaker could never "
                "open: make min_calls at most window"
            )
        return self


class ResilienceSetting(BaseModel):
    """[resilience]: how the governor contains failures (docs/governance.md, "Cascading failures")::

    [resilience]
    max_steps = 10000          # a run's durable steps
    max_calls = 10000          # governed calls in one run or request
    max_repeats = 20           # the same call (agent, tool or model, input) in one run; more is a loop
    max_depth = 3              # calls nested in calls' execution (a sub-agent run by a tool is one down)
    agent_max_concurrent = 256 # tool calls of one agent under way at once, in this process
    tool_max_concurrent = 64   # a tool's calls under way at once, in this process (unless it declares its own)
    tool_timeout_s = 60        # an async tool's attempt (unless it declares its own)
    tool_retries = 0           # retries of a tool that is not consequential (unless it declares its own)
    backoff_s = 0.2            # the first retry waits up to this (full jitter), doubling each time
    backoff_max_s = 5
    [resilience.breaker]
    window = 20
    min_calls = 10
    failure_rate = 0.5
    cooldown_s = 30
    trials = 3
    """

    model_config = ConfigDict(extra="forbid")

    max_steps: int = Field(default=10_000, ge=1, description="a run's durable steps (DBOS numbers them)")
    max_calls: int = Field(default=10_000, ge=1, description="governed calls in one run or request")
    max_repeats: int = Field(default=20, ge=2, description="times one run may make the same call")
    max_depth: int = Field(default=3, ge=0, le=100, description="calls nested in calls: sub-agents run by tools")
    agent_max_concurrent: int = Field(default=256, ge=1, le=100_000, description="one agent's tool calls at once")
    tool_max_concurrent: int = Field(default=64, ge=1, le=100_000, description="one tool's calls at once")
    tool_timeout_s: float = Field(default=60.0, gt=0, le=86_400, description="the most an async tool's try takes")
    tool_retries: int = Field(default=0, ge=0, le=10, description="retries of a tool that is not consequential")
    backoff_s: float = Field(default=0.2, ge=0, le=60, description="the most the first retry waits")
    backoff_max_s: float = Field(default=5.0, ge=0, le=600, description="the most any retry waits")
    breaker: BreakerSetting = Field(default_factory=BreakerSetting)


class GuardrailSetting(BaseModel):
    """[gateway.guardrails]: what a prompt may carry out to a provider, and what a reply may carry back::

    [gateway.guardrails]
    prompt = { email = "allow", phone = "block" }   # per kind: allow | redact | review | block
    output = "window"                               # off | hold | window
    window_tokens = 16
    """

    model_config = ConfigDict(extra="forbid")

    prompt: dict[str, Literal["allow", "redact", "review", "block"]] = Field(
        default_factory=dict,
        description="per kind of finding; the rest keep the defaults: secrets block, personal data is redacted",
    )
    output: Literal["off", "hold", "window"] = Field(
        default="window",
        description="hold: nothing reaches the client before the whole reply is checked; window: at most "
        "window_tokens behind the model; off: no buffering",
    )
    window_tokens: int = Field(default=16, ge=1, le=100_000)


class LimitSetting(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rpm: int | None = Field(default=None, ge=1, description="requests a minute")
    tpm: int | None = Field(default=None, ge=1, description="tokens (in and out) a minute")


class LimitsSetting(BaseModel):
    """[gateway.limits]: requests and tokens a minute, per key and per team, held across every `podium serve`::

    [gateway.limits]
    key = { rpm = 60, tpm = 100000 }           # every key
    team = { rpm = 600 }                       # every team
    [gateway.limits.scopes]
    "team:research" = { tpm = 2000000 }        # one team's (or key's, "key:<id>") own
    """

    model_config = ConfigDict(extra="forbid")

    key: LimitSetting = Field(default_factory=LimitSetting)
    team: LimitSetting = Field(default_factory=LimitSetting)
    scopes: dict[str, LimitSetting] = Field(default_factory=dict)


class GatewaySetting(BaseModel):
    """What `podium serve` offers OpenAI and Anthropic clients::

    [gateway.aliases]
    gpt-4o = ["openai-4o", "claude-sonnet"]   # the name clients use -> models to try, in order (fallbacks)
    local = ["smollm2-135m"]
    """

    model_config = ConfigDict(extra="forbid")

    aliases: dict[str, list[str]] = Field(
        default_factory=dict, description="client-facing model names -> catalog models, first choice first"
    )
    max_tokens: int = Field(default=4096, ge=1, description="the cap on a request that sets none")
    media_tokens: int = Field(
        default=50_000,
        ge=0,
        description="what a budget reserves for each picture, sound or file part of a request, which a provider bills "
        "by its content, not its URL (gpt-4o-mini's largest picture is about 37,000 tokens); settled at what was used",
    )
    guardrails: GuardrailSetting = Field(default_factory=GuardrailSetting)
    limits: LimitsSetting = Field(default_factory=LimitsSetting)
    log_content: bool = Field(
        default=False,
        description="put prompts and replies (each up to 64 KB) in the audit log; by default only their digests",
    )


class DiscoverySetting(BaseModel):
    """[discovery]: what the organisation decided about the AI services `podium discover` finds::

    [discovery]
    sanctioned = ["github-copilot"]            # catalogue ids (podium's own gateway always is)
    blocked = ["deepseek"]
    gateway_hosts = ["podium.example.com"]     # the organisation's gateway: use through it is governed
    [discovery.services.our-rag]               # the organisation's own entries (or corrections to the catalogue's)
    name = "Our RAG assistant"
    domains = ["rag.example.com"]
    """

    model_config = ConfigDict(extra="forbid")

    sanctioned: list[str] = Field(default_factory=list, description="service ids the organisation allows")
    blocked: list[str] = Field(default_factory=list, description="service ids the organisation forbids")
    gateway_hosts: list[str] = Field(default_factory=list, description="host names of the organisation's gateway")
    services: dict[str, dict[str, object]] = Field(
        default_factory=dict,
        description="the organisation's own services, with catalogue.toml's fields; checked when the catalogue loads",
    )


class SecuritySetting(BaseModel):
    """[security]: where each data scope's data may go without a person (docs/security.md, "Labels on values")::

    [security.recipients]
    "crm/customers" = ["*@example.com"]                 # fnmatch patterns of targets: addresses, URLs, accounts
    "finance/ledger" = ["cfo@example.com", "https://erp.example.com/*"]

    A scope not listed keeps its data inside: a consequential call sending it anywhere waits for a person.
    """

    model_config = ConfigDict(extra="forbid")

    recipients: dict[str, list[str]] = Field(
        default_factory=dict, description="per data scope, the targets its data may go to without a person"
    )

    @model_validator(mode="after")
    def _patterns_are_usable(self) -> SecuritySetting:
        for scope, patterns in self.recipients.items():
            if not scope.strip() or len(scope) > 200:
                raise ValueError(f"recipients has a scope named {scope[:40]!r}: name a data scope, as tools' reads=")
            if len(patterns) > 1_000 or any(not p.strip() or len(p) > 500 for p in patterns):
                raise ValueError(
                    f'recipients."{scope}" must list up to 1,000 non-empty patterns of up to 500 characters '
                    '(e.g. ["*@example.com"])'
                )
        return self


class ModelConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    models: dict[str, RemoteModelSetting] = Field(default_factory=dict)
    routing: RoutingSetting = Field(default_factory=RoutingSetting)
    resilience: ResilienceSetting = Field(default_factory=ResilienceSetting)
    gateway: GatewaySetting = Field(default_factory=GatewaySetting)
    discovery: DiscoverySetting = Field(default_factory=DiscoverySetting)
    security: SecuritySetting = Field(default_factory=SecuritySetting)

    @classmethod
    def load(cls, path: Path) -> ModelConfig:
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigurationError(f"{path} does not exist. Point PODIUM_CONFIG at your podium.toml.") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigurationError(f"{path} is not valid TOML: {exc}.") from None
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(part) for part in error['loc'])}: {error['msg']}" for error in exc.errors()
            )
            raise ConfigurationError(f"{path}: {problems}.") from None

    def check_tiers(self, tiers_with_models: set[str]) -> None:
        """Every tier the router is told to use must have a model."""
        for tier in self.routing.tiers or ():
            if tier not in tiers_with_models:
                raise ConfigurationError(
                    f"routing.tiers lists {tier!r}, but no model has tier = {tier!r}. Add a [models.<name>] with "
                    f"tier = {tier!r}, or remove it from routing.tiers."
                )
