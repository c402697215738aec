"""Idempotent writes say truthfully whether they wrote: an at-least-once step audits and acts on that answer."""

from __future__ import annotations

import sqlalchemy as sa

from podium import Settings
from podium.store import create_engine, insert_if_absent, insert_many_if_absent, migrate, tables


def test_a_second_insert_of_the_same_key_reports_nothing_inserted(settings: Settings) -> None:
    engine = create_engine(settings.resolved_database_url)
    migrate(engine)
    row = {"scope": "all", "killed_by": "ana@example.com", "reason": "test", "killed_at": 1.0}
    try:
        with engine.begin() as conn:
            assert insert_if_absent(conn, tables.kills, **row) is True
            assert insert_if_absent(conn, tables.kills, **{**row, "reason": "again"}) is False
            assert insert_many_if_absent(conn, tables.kills, [row, {**row, "scope": "team:ops"}]) == {"team:ops"}
            reasons = conn.execute(sa.select(tables.kills.c.reason).order_by(tables.kills.c.scope)).scalars().all()
        assert reasons == ["test", "test"]
    finally:
        engine.dispose()
