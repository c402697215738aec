"""What a call costs: token prices for remote models, a compute rate for local ones."""

from __future__ import annotations

from dataclasses import dataclass

from podium.errors import ConfigurationError

NANO = 1_000_000_000


@dataclass(frozen=True)
class Price:
    """USD per million input and output tokens, and per hour of local compute."""

    input_per_mtok: float = 0.0
    output_per_mtok: float = 0.0
    compute_per_hour: float = 0.0

    def __post_init__(self) -> None:
        for name in ("input_per_mtok", "output_per_mtok", "compute_per_hour"):
            if getattr(self, name) < 0:
                raise ValueError(f"Price.{name} is negative ({getattr(self, name)}); prices are >= 0 USD.")

    @classmethod
    def listed(cls, model: str, provider: str) -> Price:
        """The provider's list price, from the price data genai-prices ships (no network)."""
        from genai_prices import Usage, calc_price  # its price data takes a while to load: only when asked

        try:
            listed = calc_price(Usage(input_tokens=1_000_000, output_tokens=1_000_000), model, provider_id=provider)
        except LookupError as exc:
            raise ConfigurationError(
                f"genai-prices has no price for model {model!r} at provider {provider!r} ({exc}). Check the model "
                "and provider names, or state the price: price = { input_per_mtok = ..., output_per_mtok = ... }."
            ) from None
        return cls(float(listed.input_price), float(listed.output_price))

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

    def cost_nano_usd(self, input_tokens: int, output_tokens: int, compute_seconds: float) -> int:
        usd = (
            input_tokens * self.input_per_mtok / 1e6
            + output_tokens * self.output_per_mtok / 1e6
            + compute_seconds * self.compute_per_hour / 3600
        )
        return round(usd * NANO)


def usd(nano_usd: int) -> float:
    return nano_usd / NANO
