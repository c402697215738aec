"""Budgets that really stop: concurrent spenders cannot overshoot, and a crash never loses or doubles money."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

import podium
from podium import Settings
from podium.errors import NotFoundError, UsageError
from podium.store import tables
from podium.testing import sign_in
from tests._driver import drive_process
from tests._people import operator
from tests.cost._budget_app import FEE_NANO, app, budget_flow, spender
from tests.review.test_review import waiting


def test_twenty_parallel_runs_never_overspend_one_budget(settings: Settings) -> None:
    with podium.launch(settings, app) as pod:
        pod.budgets.set("workflow:tests.budget_flow", 10 * FEE_NANO / 1e9, by=operator(pod, "cfo@example.com"))
        runs = [budget_flow.options(queued=True).start(f"query {i}") for i in range(20)]
        results = [run.result() for run in runs]
        budget = pod.budgets.get("workflow:tests.budget_flow")
        assert budget.spent_nano_usd <= budget.limit_nano_usd  # exact fees: not even one reservation over
        assert budget.reserved_nano_usd == 0
        assert sum(r.startswith("found") for r in results) == 10
        assert sum(r == "stopped by workflow:tests.budget_flow" for r in results) == 10
        with pod.engine.connect() as conn:
            ledgered = conn.execute(
                sa.select(sa.func.sum(tables.ledger.c.cost_nano_usd)).where(
                    tables.ledger.c.workflow == "tests.budget_flow"
                )
            ).scalar_one()
            refusals = conn.execute(
                sa.select(sa.func.count())
                .select_from(tables.audit_log)
                .where(tables.audit_log.c.decision == "over_budget")
            ).scalar_one()
        assert ledgered == budget.spent_nano_usd == 10 * FEE_NANO
        assert refusals == 10
        assert pod.verify_audit().ok


def test_every_budget_covering_a_call_is_charged_and_the_tightest_stops_it(sqlite_settings: Settings) -> None:
    with podium.launch(sqlite_settings, app) as pod:
        cfo = operator(pod, "cfo@example.com")
        pod.budgets.set("agent:spender", 1.0, by=cfo)
        pod.budgets.set("team:ops", 2 * FEE_NANO / 1e9, by=cfo)
        assert [budget_flow.start(f"q{i}").result() for i in range(3)] == [
            "found q0", "found q1", "stopped by team:ops"
        ]  # fmt: skip
        assert pod.budgets.get("agent:spender").spent_nano_usd == 2 * FEE_NANO
        assert pod.budgets.get("team:ops").spent_nano_usd == 2 * FEE_NANO


def test_a_budget_that_asks_a_person_holds_the_call_for_review(sqlite_settings: Settings) -> None:
    with podium.launch(sqlite_settings, app) as pod:
        pod.budgets.set("team:ops", FEE_NANO / 1e9, by=operator(pod, "cfo@example.com"), on_exhausted="review")
        assert budget_flow.start("q0").result() == "found q0"
        run = budget_flow.start("q1")
        request = waiting(pod, run.id)
        assert (request.run_id, request.reasons) == (run.id, ("budget_exhausted:team:ops",))
        assert request.waiting_on == "finance-lead@example.com", "no rules declared: the agent's owner decides"
        pod.reviews.approve(request.id, by=sign_in(pod, "finance-lead@example.com"), rationale="month-end spike")
        assert run.result() == "found q1"
        assert pod.budgets.get("team:ops").spent_nano_usd == 2 * FEE_NANO, "approved over the limit, and charged"


def drive(settings: Settings, run_id: str, *, freeze: bool) -> str:
    spec = {"home": str(settings.home), "database_url": settings.resolved_database_url, "run_id": run_id}
    line = drive_process("tests.cost.budget_driver", {**spec, "freeze": freeze}, "RESULT")
    return line.removeprefix("RESULT ")


def reservations(pod: podium.Podium) -> list[str]:
    with pod.engine.connect() as conn:
        return list(conn.execute(sa.select(tables.reservations.c.status)).scalars())


@pytest.mark.slow
@pytest.mark.parametrize("after_the_crash", ["the run resumes", "the run is cancelled"])
def test_a_kill_between_reserve_and_commit_loses_no_money(settings: Settings, after_the_crash: str) -> None:
    with podium.connect(settings) as pod:
        pod.agents.register(spender.identity)  # as a launch of its app does: a budget covers an agent that exists
        pod.budgets.set("agent:spender", 1.0, by=operator(pod, "cfo@example.com"))
    assert drive(settings, "budget-crash", freeze=True) == "FROZEN"
    with podium.connect(settings) as pod:
        assert reservations(pod) == ["held"]
        assert pod.budgets.get("agent:spender").reserved_nano_usd == FEE_NANO
        if after_the_crash == "the run is cancelled":
            pod.runs.cancel("budget-crash", by=operator(pod, "ops@example.com"))
    if after_the_crash == "the run resumes":
        assert drive(settings, "budget-crash", freeze=False) == "found 42 Main St"  # recovered, not re-started
        expected_status, expected_spent, expected_rows = "committed", FEE_NANO, 1
    else:
        with podium.launch(settings, app):  # a launch gives back what ended runs still hold
            pass
        expected_status, expected_spent, expected_rows = "released", 0, 0
    with podium.connect(settings) as pod:
        assert reservations(pod) == [expected_status]  # settled once: committed or released, never both/neither
        budget = pod.budgets.get("agent:spender")
        assert (budget.reserved_nano_usd, budget.spent_nano_usd) == (0, expected_spent)
        with pod.engine.connect() as conn:
            rows = conn.execute(sa.select(tables.ledger.c.cost_nano_usd)).scalars().all()
        assert list(rows) == [FEE_NANO] * expected_rows


def test_bad_budget_input_is_refused_with_the_fix(sqlite_settings: Settings) -> None:
    with podium.connect(sqlite_settings) as pod:
        cfo = operator(pod, "cfo@example.com")
        with pytest.raises(UsageError, match="not kind:name"):
            pod.budgets.set("spender", 1.0, by=cfo)
        with pytest.raises(NotFoundError, match="no agent 'spender' to budget"):
            pod.budgets.set("agent:spender", 1.0, by=cfo)
        pod.agents.register(spender.identity)
        with pytest.raises(UsageError, match="give a number from 0 to 1e"):
            pod.budgets.set("agent:spender", -1.0, by=cfo)
        with pytest.raises(UsageError, match="'stop'"):
            pod.budgets.set("agent:spender", 1.0, by=cfo, on_exhausted="ignore")  # type: ignore[arg-type]
        with pytest.raises(NotFoundError, match="podium budgets list"):
            pod.budgets.get("agent:nobody")
        assert pod.budgets.list() == []


def test_a_call_recorded_after_its_reservation_was_released_is_still_charged(sqlite_settings: Settings) -> None:
    """A run cancelled mid-call: a launch elsewhere releases the reservation, then the call finishes."""
    from podium.cost._budgets import Charge, settle

    with podium.connect(sqlite_settings) as pod:
        pod.agents.register(spender.identity)
        pod.budgets.set("agent:spender", 1.0, by=operator(pod, "cfo@example.com"))
        pod.budgets.reserve("run-1:1:1", "run-1", ("agent:spender",), FEE_NANO)
        pod.budgets.release("run-1:1:1")
        with pod.engine.begin() as conn:
            settle(conn, [Charge("run-1:1:1", ("agent:spender",), FEE_NANO)])
        assert reservations(pod) == ["released"]
        budget = pod.budgets.get("agent:spender")
        assert (budget.reserved_nano_usd, budget.spent_nano_usd) == (0, FEE_NANO)


def test_a_call_refused_further_in_or_cancelled_gives_its_reservation_back(sqlite_settings: Settings) -> None:
    import asyncio

    from podium.errors import ActorStopped
    from podium.governance import Call, Usage

    call = Call("spender", "tool", "paid_lookup", "tool", "digest", estimate_nano_usd=FEE_NANO)
    with podium.launch(sqlite_settings, app) as pod:
        pod.budgets.set("agent:spender", 1.0, by=operator(pod, "cfo@example.com"))
        for error in (ActorStopped("a nested call was refused"), asyncio.CancelledError()):

            async def execute(admitted: Call, error: BaseException = error) -> str:
                raise error

            with pytest.raises(type(error)):
                asyncio.run(pod.governor.govern(call, execute, lambda _: Usage(), str))
        assert reservations(pod) == ["released", "released"]
        assert pod.budgets.get("agent:spender").reserved_nano_usd == 0
