"""The one place podium reads DBOS's own tables (DBOS owns them; tests/store/test_dbos_tables.py fails if a DBOS
release renames what is read here)."""

from __future__ import annotations

import sqlalchemy as sa

TERMINAL_RUN_STATES = ("SUCCESS", "ERROR", "CANCELLED", "MAX_RECOVERY_ATTEMPTS_EXCEEDED")
RUN_COLUMNS = ("workflow_uuid", "name", "status", "created_at")  # created_at: epoch milliseconds


def workflow_status(engine: sa.Engine) -> sa.TableClause:
    """DBOS's table of runs (in the `dbos` schema on PostgreSQL), with the columns podium reads."""
    table = sa.table("workflow_status", *(sa.column(name) for name in RUN_COLUMNS))
    if engine.dialect.name == "postgresql":
        table.schema = "dbos"
    return table
