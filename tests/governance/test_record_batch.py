"""Two runs of one client request recorded in the same group commit (sent twice at once): each gets its own ledger
row and its own charge, so the ledger and the budgets agree (a shared key once made one row for two charges)."""

from __future__ import annotations

import time

import sqlalchemy as sa

from podium import Podium, Settings
from podium.cost import write_budget
from podium.governance import Call, CallSite, Usage
from podium.governance._record import CallRecord, write_records
from podium.store import tables


def _run(execution: str) -> CallRecord:
    call = Call("pat@example.com", "model", "remote", "intermediate", "digest", principal="person")
    site = CallSite("request:key.k1:req-1:1", None, None, door="request", api_key="k1", execution=execution)
    return CallRecord(
        call, site, "allowed", Usage(10, 5, 0.0, 1_000), "out", {}, time.time(), budget_scopes=("key:k1",)
    )


def test_two_runs_of_one_request_in_one_batch_are_two_rows_and_two_charges(sqlite_settings: Settings) -> None:
    with Podium.connect(sqlite_settings) as pod, pod.engine.begin() as conn:
        write_budget(conn, "key:k1", 1_000_000, "stop")
        write_records(conn, [_run("x.one"), _run("x.two")])
        rows = conn.execute(sa.select(tables.ledger.c.call_key, tables.ledger.c.cost_nano_usd)).all()
        spent = conn.execute(sa.select(tables.budgets.c.spent_nano_usd)).scalar_one()
        entries = conn.execute(sa.select(sa.func.count()).select_from(tables.audit_log)).scalar_one()
    assert len(rows) == 2 and len({key for key, _ in rows}) == 2
    assert spent == sum(cost for _, cost in rows) == 2_000
    assert entries >= 2
