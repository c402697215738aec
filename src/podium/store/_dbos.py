"""The one place podium reads DBOS's own tables (DBOS owns them; tests/store/test_dbos_tables.py fails if a DBOS
release renames what is read here)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

TERMINAL_RUN_STATES = ("SUCCESS", "ERROR", "CANCELLED", "MAX_RECOVERY_ATTEMPTS_EXCEEDED")
# Times are epoch milliseconds; started_at_epoch_ms is when a process took the run from the queue.
RUN_COLUMNS = (
    "workflow_uuid",
    "name",
    "status",
    "created_at",
    "updated_at",
    "started_at_epoch_ms",
    "executor_id",
    "application_version",
)


def workflow_status(engine: sa.Engine) -> sa.TableClause:
    """DBOS's table of runs (in the `dbos` schema on PostgreSQL), with the columns podium reads."""
    table = sa.table("workflow_status", *(sa.column(name) for name in RUN_COLUMNS))
    if engine.dialect.name == "postgresql":
        table.schema = "dbos"
    return table


def newest_runs(
    engine: sa.Engine,
    *,
    workflow: str | None = None,
    status: str | None = None,
    prefix: str | None = None,
    limit: int,
) -> list[sa.Row[Any]]:
    """The newest runs first, with RUN_COLUMNS: what DBOS's own listing gives, read without loading DBOS (a
    command that lists runs starts in a fraction of the time)."""
    table = workflow_status(engine)
    query = sa.select(*table.c).order_by(table.c.created_at.desc(), table.c.workflow_uuid.desc()).limit(limit)
    if workflow is not None:
        query = query.where(table.c.name == workflow)
    if status is not None:
        query = query.where(table.c.status == status)
    if prefix is not None:
        query = query.where(table.c.workflow_uuid.startswith(prefix, autoescape=True))
    with engine.connect() as conn:
        return list(conn.execute(query))
