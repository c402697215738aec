"""`podium costs`: the fully loaded cost per workflow from the ledger, and the query that reproduces it."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

import podium
from podium import Settings
from podium.cli import app as cli
from podium.cost import cost_breakdown
from podium.testing import sign_in
from tests._people import operator_key
from tests.cost._budget_app import FEE_NANO, app, budget_flow

runner = CliRunner()


def test_costs_by_workflow_match_the_ledger_and_the_printed_query(sqlite_settings: Settings) -> None:
    with podium.launch(sqlite_settings, app) as pod:
        for i in range(3):
            budget_flow.start(f"q{i}").result()
        (line,) = cost_breakdown(pod.engine, "workflow")
    assert (line.key, line.runs, line.calls) == ("tests.budget_flow", 3, 3)
    assert line.by_category["tools"] == line.total_nano_usd == 3 * FEE_NANO
    home = ["--home", str(sqlite_settings.home)]
    shown = runner.invoke(cli, [*home, "costs"], env={"COLUMNS": "250"})
    assert shown.exit_code == 0, shown.output
    assert "tests.budget_flow" in shown.output and "0.003000" in shown.output
    query = runner.invoke(cli, [*home, "costs", "--sql"], terminal_width=250)
    assert query.exit_code == 0 and "FROM podium_ledger GROUP BY" in " ".join(query.output.split())


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["costs", "--per", "planet"], "'planet' is not one of 'workflow', 'run', 'agent', 'team'"),
        (["budgets", "set", "agent:spender", "1", "--on-exhausted", "shrug"], "'stop'"),
    ],
)
def test_cli_bad_input(sqlite_settings: Settings, args: list[str], message: str) -> None:
    with podium.connect(sqlite_settings) as pod:
        key = operator_key(pod, "cfo")
    result = runner.invoke(cli, ["--home", str(sqlite_settings.home), "--key", key, *args], terminal_width=200)
    assert result.exit_code != 0
    assert message in result.output + str(result.exception)


def test_budgets_cli_sets_and_lists(sqlite_settings: Settings) -> None:
    with podium.connect(sqlite_settings) as pod:
        home = ["--home", str(sqlite_settings.home), "--key", operator_key(pod, "cfo")]
        sign_in(pod, "ops-lead", teams=["ops"])  # a budget covers a team someone is in
    assert runner.invoke(cli, [*home, "budgets", "set", "team:ops", "2.5"]).exit_code == 0
    listed = runner.invoke(cli, [*home, "budgets", "list"], terminal_width=200).output
    assert "team:ops" in listed and "2.500000" in listed and "stop" in listed
