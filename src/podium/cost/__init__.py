"""Cost: prices and the ledger of what each call cost."""

from podium.cost._ledger import Ledger, LedgerTotals
from podium.cost._prices import NANO, Price, usd

__all__ = ["NANO", "Ledger", "LedgerTotals", "Price", "usd"]
