"""A workflow that spends: one paid tool call per run, against whatever budgets are set."""

from __future__ import annotations

import podium

FEE_USD = 0.001
FEE_NANO = 1_000_000


@podium.tool(fee_usd=FEE_USD)
def paid_lookup(query: str) -> str:
    """An integration that charges per call (think: an address-verification API)."""
    return f"found {query}"


spender = podium.Agent("spender", owner="finance-lead@example.com", models=[], tools=[paid_lookup], team="ops")


@podium.step(name="tests.budget_lookup")
def lookup(query: str) -> str:
    return str(spender.call_tool("paid_lookup", query=query))


@podium.workflow(name="tests.budget_flow")
def budget_flow(query: str) -> str:
    try:
        return lookup(query)
    except podium.BudgetExhausted as exc:
        return f"stopped by {exc.scope}"  # type: ignore[attr-defined]


app = podium.App(agents=[spender], tools=[paid_lookup])
