"""Integration and tool fees: what a call to a tool costs beyond compute (a paid API, a per-use licence)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from podium.cost import NANO

F = TypeVar("F", bound=Callable[..., Any])
_FEE = "__podium_fee_nano_usd__"
_TEAM = "__podium_team__"


def tool(*, fee_usd: float = 0.0, team: str = "") -> Callable[[F], F]:
    """Declare what one call of the decorated tool costs (the ledger records it and budgets reserve it) and the
    team it belongs to (only that team's agents may call it, whatever they are granted)::

    @podium.tool(fee_usd=0.002, team="finance")  # the address-verification API charges $0.002 a lookup
    def verify_address(street: str, city: str) -> bool: ...
    """
    if fee_usd < 0:
        raise ValueError(f"tool fee_usd={fee_usd} is negative; a fee is >= 0 USD.")

    def declare(fn: F) -> F:
        setattr(fn, _FEE, round(fee_usd * NANO))
        setattr(fn, _TEAM, team.strip())
        return fn

    return declare


def fee_nano_usd(fn: Callable[..., Any]) -> int:
    return int(getattr(fn, _FEE, 0))


def tool_team(fn: Callable[..., Any]) -> str:
    return str(getattr(fn, _TEAM, ""))
