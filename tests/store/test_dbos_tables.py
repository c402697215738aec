"""podium reads DBOS's own run table in one place (`store/_dbos.py`); this fails if a DBOS release renames what
podium reads there, instead of budgets and review metrics going quietly wrong."""

from __future__ import annotations

import ast
from pathlib import Path

import sqlalchemy as sa

import podium
from podium import Settings
from podium.store import RUN_COLUMNS, TERMINAL_RUN_STATES, workflow_status

SRC = Path(__file__).resolve().parents[2] / "src" / "podium"


def test_the_run_table_podium_reads_has_the_columns_it_reads(settings: Settings) -> None:
    with podium.connect(settings) as pod:  # migrates podium's tables and DBOS's
        table = workflow_status(pod.engine)
        columns = {c["name"] for c in sa.inspect(pod.engine).get_columns(table.name, schema=table.schema)}
        assert set(RUN_COLUMNS) <= columns
        with pod.engine.connect() as conn:  # the query budgets and metrics run, on an empty table
            ended = sa.select(table.c.workflow_uuid).where(table.c.status.in_(TERMINAL_RUN_STATES))
            assert conn.execute(ended).all() == []


def test_no_module_but_store_names_a_dbos_table() -> None:
    readers = [
        path.relative_to(SRC)
        for path in SRC.rglob("*.py")
        if '"workflow_status"' in path.read_text() and path.parent.name != "store"
    ]
    assert readers == [], "read DBOS's tables through podium.store.workflow_status"


def test_migrations_import_no_live_code() -> None:
    """A migration is frozen: what it does may not change when the code it would import changes."""
    tree = ast.parse((SRC / "store" / "_migrations.py").read_text())
    imported = {
        node.module if isinstance(node, ast.ImportFrom) else alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    }
    assert {name for name in imported if name and name.startswith("podium")} <= {"podium.errors"}
