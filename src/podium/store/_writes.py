"""Writes that must be idempotent on both databases."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite


def insert_if_absent(conn: sa.Connection, table: sa.Table, **values: Any) -> bool:
    """Insert a row unless one with the same key exists; return whether this call inserted it.

    This is how podium makes an at-least-once step's side effect happen exactly once: the row's key is derived
    from the run and step, so a re-run inserts nothing.
    """
    dialect_insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    return bool(conn.execute(dialect_insert(table).values(**values).on_conflict_do_nothing()).rowcount)
