"""`podium costs` and `podium budgets …`: what the work cost, fully loaded, and the budgets that stop it."""

from __future__ import annotations

from typing import Annotated, Literal

import typer
from rich.table import Table

from podium.cli._common import connected, console
from podium.cli._display import AsJson, literal, print_json, row, styled, table
from podium.cli._fields import budget_fields

budgets_app = typer.Typer(
    help="Budgets per agent, workflow, team or key, that stop work when spent.", no_args_is_help=True
)


CATEGORY_TITLES = {
    "model_tokens": "model tokens",
    "local_compute": "local compute",
    "tools": "tools & fees",
    "human_review": "human review",
    "compliance": "compliance",
    "retry_waste": "retry waste",
}


def costs(
    per: Annotated[Literal["workflow", "run", "agent", "team"], typer.Option(help="One row per what.")] = "workflow",
    sql: Annotated[bool, typer.Option(help="Print the query behind the figures instead, to reproduce them.")] = False,
) -> None:
    """The fully loaded cost per workflow (or run, agent, team): tokens, local compute, tool fees, human review
    minutes, compliance checks and retry waste, from the ledger."""
    from podium.cost import CATEGORIES, cost_breakdown, cost_breakdown_query

    if sql:
        with connected(read=True) as pod:
            query = cost_breakdown_query(per)
            console.print(literal(str(query.compile(pod.engine, compile_kwargs={"literal_binds": True}))))
        return
    with connected(read=True) as pod:
        lines = cost_breakdown(pod.engine, per)
    if not lines:
        console.print("The ledger is empty: nothing has run yet.")
        return
    shown = Table(title=f"Fully loaded cost per {per}, USD", title_justify="left")
    shown.add_column(per, no_wrap=True, overflow="fold")
    for column in ("runs", *(CATEGORY_TITLES[c] for c in CATEGORIES), "total", "per run"):
        shown.add_column(column, justify="right")
    for line in lines:
        shown.add_row(
            *row(
                line.key,
                line.runs,
                *(_usd(line.by_category[c]) for c in CATEGORIES),
                styled("[bold]{}[/]", _usd(line.total_nano_usd)),
                _usd(line.total_nano_usd // max(line.runs, 1)),
            )
        )
    console.print(shown)
    widest = max(line.total_nano_usd for line in lines) or 1
    label_width = max(len(line.key) for line in lines)
    for line in lines:
        bar = "█" * max(1, round(40 * line.total_nano_usd / widest))
        console.print(styled("{}  [cyan]{}[/] ${}", line.key.ljust(label_width), bar, _usd(line.total_nano_usd)))
    console.print(f"[dim]all: ${_usd(sum(line.total_nano_usd for line in lines))}; the query: podium costs --sql[/]")


def _usd(nano: int) -> str:
    from podium.cost import usd

    return f"{usd(nano):.6f}"


@budgets_app.command("list")
def budgets_list(as_json: AsJson = False) -> None:
    """Every budget with its limit, spend, reservations in flight and what happens when it runs out."""
    with connected(read=True) as pod:
        budgets = pod.budgets.list()
    if as_json:
        print_json([budget_fields(b) for b in budgets])
        return
    shown = table("scope", "limit USD", "spent USD", "reserved USD", "left USD", "when exhausted", ids=["scope"])
    for b in budgets:
        shown.add_row(
            *row(
                b.scope,
                _usd(b.limit_nano_usd),
                _usd(b.spent_nano_usd),
                _usd(b.reserved_nano_usd),
                _usd(b.left_nano_usd),
                b.on_exhausted,
            )
        )
    console.print(shown if budgets else "No budgets yet: `podium budgets set agent:NAME USD`.")


@budgets_app.command("set")
def budgets_set(
    scope: Annotated[
        str, typer.Argument(help="agent:NAME, workflow:NAME, team:NAME, person:NAME, model:NAME or key:ID.")
    ],
    limit_usd: Annotated[float, typer.Argument(help="The limit in USD.")],
    on_exhausted: Annotated[
        Literal["stop", "review"], typer.Option(help="stop: refuse the call; review: ask a person.")
    ] = "stop",
) -> None:
    """Create or change a budget; spend so far is kept."""
    with connected() as pod:
        budget = pod.budgets.set(scope, limit_usd, on_exhausted=on_exhausted, by=pod.operator())
    console.print(
        styled("{}: limit ${}, {} when exhausted", budget.scope, _usd(budget.limit_nano_usd), budget.on_exhausted)
    )
