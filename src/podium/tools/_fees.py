"""Integration and tool fees: what a call to a tool costs beyond compute (a paid API, a per-use licence)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from podium.cost import NANO

F = TypeVar("F", bound=Callable[..., Any])
_FEE = "__podium_fee_nano_usd__"


def tool(*, fee_usd: float) -> Callable[[F], F]:
    """Declare what one call of the decorated tool costs; the ledger records it and budgets reserve it::

    @podium.tool(fee_usd=0.002)  # the address-verification API charges $0.002 a lookup
    def verify_address(street: str, city: str) -> bool: ...
    """
    if fee_usd < 0:
        raise ValueError(f"tool fee_usd={fee_usd} is negative; a fee is >= 0 USD.")

    def declare(fn: F) -> F:
        setattr(fn, _FEE, round(fee_usd * NANO))
        return fn

    return declare


def fee_nano_usd(fn: Callable[..., Any]) -> int:
    return int(getattr(fn, _FEE, 0))
