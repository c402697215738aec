"""Cost: prices and the ledger of what each call cost."""

from podium.cost._budgets import Budget, Budgets
from podium.cost._ledger import Ledger, LedgerTotals
from podium.cost._prices import NANO, Price, usd

__all__ = ["NANO", "Budget", "Budgets", "Ledger", "LedgerTotals", "Price", "usd"]
