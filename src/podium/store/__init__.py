"""Storage: the engine, podium's tables and their migrations."""

from podium.store import _schema as tables
from podium.store._dbos import RUN_COLUMNS, TERMINAL_RUN_STATES, newest_runs, workflow_status
from podium.store._engine import create_engine, is_sqlite, reader, safe_url
from podium.store._group_commit import GroupCommitter
from podium.store._migrations import MIGRATIONS, current_version, migrate
from podium.store._writes import insert_if_absent, insert_many_if_absent

__all__ = [
    "MIGRATIONS",
    "RUN_COLUMNS",
    "TERMINAL_RUN_STATES",
    "GroupCommitter",
    "create_engine",
    "current_version",
    "insert_if_absent",
    "insert_many_if_absent",
    "is_sqlite",
    "migrate",
    "newest_runs",
    "reader",
    "safe_url",
    "tables",
    "workflow_status",
]
