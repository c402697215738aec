"""What a call costs: token prices for remote models, a compute rate for local ones."""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from decimal import Decimal

from podium.errors import ConfigurationError

NANO = 1_000_000_000


@dataclass(frozen=True)
class Tokens:
    """Tokens a call used, in disjoint classes, each priced at its own rate (see `Price.cost_of`).

    Disjoint: `input` excludes the cached and cache-write tokens, `output` excludes reasoning. Each provider's
    convention is turned into these classes where its usage is read (the gateway's upstreams)."""

    input: int = 0
    cached_input: int = 0  # input tokens read from the provider's prompt cache
    cache_write: int = 0  # input tokens written to the provider's prompt cache
    output: int = 0  # visible output tokens
    reasoning: int = 0  # output tokens the model spent thinking, billed as output

    @property
    def total_input(self) -> int:
        return self.input + self.cached_input + self.cache_write

    @property
    def total_output(self) -> int:
        return self.output + self.reasoning


@dataclass(frozen=True)
class Price:
    """USD per million tokens of each class, and per hour of local compute.

    A class rate left None costs what its parent class does: cached input and cache writes the input rate,
    reasoning the output rate (providers bill reasoning as output)."""

    input_per_mtok: float = 0.0
    output_per_mtok: float = 0.0
    compute_per_hour: float = 0.0
    cached_input_per_mtok: float | None = None
    cache_write_per_mtok: float | None = None
    reasoning_per_mtok: float | None = None

    def __post_init__(self) -> None:
        for name in _RATES:
            rate = getattr(self, name)
            if rate is not None and not (math.isfinite(rate) and rate >= 0):
                raise ValueError(f"Price.{name} is {rate}; prices are finite and >= 0 USD.")

    @classmethod
    def listed(cls, model: str, provider: str) -> Price:
        """The provider's list price for each token class, from the price data genai-prices ships (no network).

        Where genai-prices has prices that rise past a prompt length (e.g. Anthropic's and Google's beyond 200k
        tokens), this is the price below the first threshold."""
        from genai_prices import Usage, calc_price  # its price data takes a while to load: only when asked

        try:
            listed = calc_price(Usage(input_tokens=1, output_tokens=1), model, provider_id=provider).model_price
        except LookupError as exc:
            raise ConfigurationError(
                f"genai-prices has no price for model {model!r} at provider {provider!r} ({exc}). Check the model "
                "and provider names, or state the price: price = { input_per_mtok = ..., output_per_mtok = ... }."
            ) from None
        return cls(
            input_per_mtok=_listed_rate(listed, "input_mtok") or 0.0,
            output_per_mtok=_listed_rate(listed, "output_mtok") or 0.0,
            cached_input_per_mtok=_listed_rate(listed, "cache_read_mtok"),
            cache_write_per_mtok=_listed_rate(listed, "cache_write_mtok"),
        )

    @classmethod
    def parse(cls, spec: str) -> Price:
        """`provider:model` for a list price (e.g. `openai:gpt-4o`), or `IN/OUT` USD per million tokens."""
        if ":" in spec:
            provider, model = spec.split(":", 1)
            return cls.listed(model, provider)
        try:
            tokens_in, tokens_out = (float(part) for part in spec.split("/"))
            return cls(tokens_in, tokens_out)
        except ValueError:
            raise ConfigurationError(
                f"price {spec!r} is neither provider:model (e.g. openai:gpt-4o) nor IN/OUT USD per million tokens "
                "(e.g. 0.9/0.9)."
            ) from None

    def cost_of(self, tokens: Tokens, compute_seconds: float = 0.0) -> int:
        """Nano-USD for `tokens`, each class at its own rate, plus `compute_seconds` of local compute.

        Computed in decimal from the rates as written (1.25 USD per million is exactly 1,250 nano-USD a token) and
        rounded once, so a golden figure worked out by hand is the figure billed."""
        input_rate, output_rate = self.input_per_mtok, self.output_per_mtok
        micro_usd = sum(  # USD per million tokens x tokens = micro-USD
            (
                _exact(rate) * count
                for rate, count in (
                    (input_rate, tokens.input),
                    (_or(self.cached_input_per_mtok, input_rate), tokens.cached_input),
                    (_or(self.cache_write_per_mtok, input_rate), tokens.cache_write),
                    (output_rate, tokens.output),
                    (_or(self.reasoning_per_mtok, output_rate), tokens.reasoning),
                )
                if count
            ),
            Decimal(0),
        )
        if compute_seconds and self.compute_per_hour:
            micro_usd += _exact(compute_seconds) * _exact(self.compute_per_hour) / 3600 * 1_000_000
        return round(micro_usd * 1000)

    def cost_nano_usd(self, input_tokens: int, output_tokens: int, compute_seconds: float) -> int:
        """The cost of uncached input and plain output tokens (callers that know no finer classes)."""
        return self.cost_of(Tokens(input=input_tokens, output=output_tokens), compute_seconds)


_RATES = (
    "input_per_mtok",
    "output_per_mtok",
    "compute_per_hour",
    "cached_input_per_mtok",
    "cache_write_per_mtok",
    "reasoning_per_mtok",
)


def _or(rate: float | None, fallback: float) -> float:
    return fallback if rate is None else rate


@functools.lru_cache(maxsize=4096)
def _exact(number: float) -> Decimal:
    """The decimal a float was written as (repr round-trips), not its binary expansion: 0.1 is 0.1."""
    return Decimal(repr(number))


def _listed_rate(model_price: object, field: str) -> float | None:
    """One rate of a genai-prices ModelPrice, in USD per million tokens: its base rate if it is tiered."""
    rate = getattr(model_price, field, None)
    rate = getattr(rate, "base", rate)  # TieredPrices: the rate below the first threshold
    return None if rate is None else float(rate)


def usd(nano_usd: int) -> float:
    return nano_usd / NANO
