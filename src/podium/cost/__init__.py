"""Cost: prices and the ledger of what each call cost."""

from podium.cost._budgets import Budget, Budgets, Charge, settle, write_budget
from podium.cost._ledger import CATEGORIES, CostLine, Ledger, LedgerTotals, cost_breakdown, cost_breakdown_query
from podium.cost._prices import NANO, Price, Tokens, usd

__all__ = [
    "CATEGORIES",
    "NANO",
    "Budget",
    "Budgets",
    "Charge",
    "CostLine",
    "Ledger",
    "LedgerTotals",
    "Price",
    "Tokens",
    "cost_breakdown",
    "cost_breakdown_query",
    "settle",
    "usd",
    "write_budget",
]
