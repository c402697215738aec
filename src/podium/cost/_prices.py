"""What a call costs: token prices for remote models, a compute rate for local ones."""

from __future__ import annotations

from dataclasses import dataclass

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

    def cost_nano_usd(self, input_tokens: int, output_tokens: int, compute_seconds: float) -> int:
        usd = (
            input_tokens * self.input_per_mtok / 1e6
            + output_tokens * self.output_per_mtok / 1e6
            + compute_seconds * self.compute_per_hour / 3600
        )
        return round(usd * NANO)


def usd(nano_usd: int) -> float:
    return nano_usd / NANO
