"""Migrations build exactly the tables the code queries, on both databases, once."""

from __future__ import annotations

import sqlalchemy as sa

from podium import Settings
from podium.store import MIGRATIONS, create_engine, current_version, migrate, tables


def test_migrations_build_the_declared_schema_once(settings: Settings) -> None:
    engine = create_engine(settings.resolved_database_url)
    try:
        assert migrate(engine) == [m.version for m in MIGRATIONS]
        assert migrate(engine) == []  # already applied: nothing runs twice
        assert current_version(engine) == MIGRATIONS[-1].version
        inspector = sa.inspect(engine)
        for table in tables.metadata.sorted_tables:
            columns = {c["name"] for c in inspector.get_columns(table.name)}
            assert columns == {c.name for c in table.columns}, table.name
            primary = set(inspector.get_pk_constraint(table.name)["constrained_columns"])
            assert primary == {c.name for c in table.primary_key}, table.name
    finally:
        engine.dispose()


def test_migration_numbers_are_consecutive_and_append_only() -> None:
    assert [m.version for m in MIGRATIONS] == list(range(1, len(MIGRATIONS) + 1))


def test_sqlite_runs_in_wal_mode_with_normal_sync(sqlite_settings: Settings) -> None:
    engine = create_engine(sqlite_settings.resolved_database_url)
    try:
        with engine.connect() as conn:
            assert conn.execute(sa.text("PRAGMA journal_mode")).scalar() == "wal"
            assert conn.execute(sa.text("PRAGMA synchronous")).scalar() == 1  # NORMAL
    finally:
        engine.dispose()
