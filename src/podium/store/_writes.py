"""Writes that must be idempotent on both databases."""

from __future__ import annotations

import functools
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite


def insert_if_absent(conn: sa.Connection, table: sa.Table, **values: Any) -> bool:
    """Insert a row unless one with the same key exists; return whether this call inserted it.

    This is how podium makes an at-least-once step's side effect happen exactly once: the row's key is derived
    from the run and step, so a re-run inserts nothing.
    """
    # RETURNING, not rowcount: psycopg reports -1 for INSERT … ON CONFLICT DO NOTHING, which read as "inserted".
    dialect_insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    inserted = dialect_insert(table).values(**values).on_conflict_do_nothing().returning(sa.literal(1))
    return conn.execute(inserted).first() is not None


def insert_many_if_absent(conn: sa.Connection, table: sa.Table, rows: list[dict[str, Any]]) -> set[Any]:
    """Insert the rows whose primary key is not taken yet; return the keys of the rows inserted now."""
    return set(conn.execute(_insert_returning_new_keys(conn.dialect.name, table), rows).scalars())


@functools.cache
def _insert_returning_new_keys(dialect: str, table: sa.Table) -> sa.Insert:
    (key,) = table.primary_key.columns
    dialect_insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return dialect_insert(table).on_conflict_do_nothing().returning(key)
