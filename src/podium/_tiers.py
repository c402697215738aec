"""Model tiers: the one list of tier names, weakest and cheapest first, that every package reads them from.

A root module, outside the layers, so that `policy` (ranks for the Cedar tier ceiling), `cost`, `agents` and
`models` all use the same `Tier`.
"""

from __future__ import annotations

from typing import Literal, get_args

from podium.errors import UsageError

Tier = Literal["local", "intermediate", "frontier"]
TIERS: tuple[Tier, ...] = get_args(Tier)  # weakest and cheapest first
TIER_RANKS: dict[str, int] = {tier: rank for rank, tier in enumerate(TIERS, start=1)}  # what Cedar compares
LOCAL: Tier = TIERS[0]  # models that run in this process, priced by compute time
TIER_PREFIX = "tier:"  # `tier:<tier>` in an agent's models stands for every model declared in that tier
TIER_CHOICES = f"{', '.join(TIERS[:-1])} or {TIERS[-1]}"  # "local, intermediate or frontier", for messages


def check_tier_ceiling(tier: str) -> None:
    """A tier ceiling given by a person: a tier, or "" for none; anything else is one clear error."""
    if tier and tier not in TIERS:
        raise UsageError(f"tier ceiling {tier!r} is not a tier: use {TIER_CHOICES} (or none).")
