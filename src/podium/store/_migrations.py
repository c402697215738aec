"""Numbered, append-only schema migrations that run the same on SQLite and PostgreSQL.

Never edit a migration that has shipped: add the next number. Each migration runs in one transaction that
first claims its version row, so two processes starting at once cannot both apply it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import sqlalchemy as sa


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    statements: tuple[str, ...]


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "the governed spine: agents, ledger, audit chain, outbox, reviews, model files",
        (
            """CREATE TABLE podium_agents (
                name TEXT PRIMARY KEY,
                owner TEXT NOT NULL,
                models TEXT NOT NULL,
                tools TEXT NOT NULL,
                status TEXT NOT NULL,
                updated_at DOUBLE PRECISION NOT NULL)""",
            """CREATE TABLE podium_ledger (
                call_key TEXT PRIMARY KEY,
                run_id TEXT,
                step_id INTEGER,
                agent TEXT NOT NULL,
                kind TEXT NOT NULL,
                resource TEXT NOT NULL,
                tier TEXT NOT NULL,
                input_tokens BIGINT NOT NULL,
                output_tokens BIGINT NOT NULL,
                compute_seconds DOUBLE PRECISION NOT NULL,
                cost_nano_usd BIGINT NOT NULL,
                at DOUBLE PRECISION NOT NULL)""",
            "CREATE INDEX podium_ledger_run ON podium_ledger (run_id)",
            """CREATE TABLE podium_audit (
                seq BIGINT PRIMARY KEY,
                call_key TEXT NOT NULL UNIQUE,
                at DOUBLE PRECISION NOT NULL,
                actor TEXT NOT NULL,
                action TEXT NOT NULL,
                resource TEXT NOT NULL,
                decision TEXT NOT NULL,
                run_id TEXT,
                step_id INTEGER,
                input_digest TEXT NOT NULL,
                output_digest TEXT NOT NULL,
                detail TEXT NOT NULL,
                prev_hash TEXT NOT NULL,
                entry_hash TEXT NOT NULL)""",
            "CREATE INDEX podium_audit_run ON podium_audit (run_id)",
            """CREATE TABLE podium_audit_head (
                id INTEGER PRIMARY KEY,
                seq BIGINT NOT NULL,
                entry_hash TEXT NOT NULL)""",
            "INSERT INTO podium_audit_head (id, seq, entry_hash) VALUES (1, 0, '')",
            """CREATE TABLE podium_outbox (
                idempotency_key TEXT PRIMARY KEY,
                run_id TEXT,
                channel TEXT NOT NULL,
                recipient TEXT NOT NULL,
                body TEXT NOT NULL,
                created_at DOUBLE PRECISION NOT NULL)""",
            """CREATE TABLE podium_reviews (
                id TEXT PRIMARY KEY,
                run_id TEXT NOT NULL,
                agent TEXT NOT NULL,
                reason TEXT NOT NULL,
                summary TEXT NOT NULL,
                action TEXT NOT NULL,
                action_digest TEXT NOT NULL,
                status TEXT NOT NULL,
                created_at DOUBLE PRECISION NOT NULL,
                deadline_at DOUBLE PRECISION NOT NULL,
                decided_by TEXT,
                decided_at DOUBLE PRECISION,
                rationale TEXT)""",
            "CREATE INDEX podium_reviews_status ON podium_reviews (status)",
            """CREATE TABLE podium_model_files (
                name TEXT PRIMARY KEY,
                path TEXT NOT NULL,
                sha256 TEXT NOT NULL,
                recorded_at DOUBLE PRECISION NOT NULL)""",
        ),
    ),
    Migration(
        2,
        "run stops: cancelled runs the governor refuses, read in the same query as the agent's status",
        (
            """CREATE TABLE podium_run_stops (
                run_id TEXT PRIMARY KEY,
                stopped_by TEXT NOT NULL,
                stopped_at DOUBLE PRECISION NOT NULL)""",
        ),
    ),
    Migration(
        3,
        "workflows: the names launched processes can run, so a start by name can be checked",
        (
            """CREATE TABLE podium_workflows (
                name TEXT PRIMARY KEY,
                registered_at DOUBLE PRECISION NOT NULL)""",
        ),
    ),
    Migration(
        4,
        "ledger: wall-clock seconds of every call, and whether its work was thrown away (retry waste)",
        (
            "ALTER TABLE podium_ledger ADD COLUMN wall_seconds DOUBLE PRECISION NOT NULL DEFAULT 0",
            "ALTER TABLE podium_ledger ADD COLUMN wasted INTEGER NOT NULL DEFAULT 0",
        ),
    ),
    Migration(
        5,
        "budgets and their reservations; the ledger and the registry learn workflow, team and key",
        (
            """CREATE TABLE podium_budgets (
                scope TEXT PRIMARY KEY,
                limit_nano_usd BIGINT NOT NULL,
                reserved_nano_usd BIGINT NOT NULL DEFAULT 0,
                spent_nano_usd BIGINT NOT NULL DEFAULT 0,
                on_exhausted TEXT NOT NULL,
                updated_at DOUBLE PRECISION NOT NULL)""",
            """CREATE TABLE podium_reservations (
                id TEXT PRIMARY KEY,
                call_key TEXT NOT NULL,
                run_id TEXT,
                scopes TEXT NOT NULL,
                amount_nano_usd BIGINT NOT NULL,
                status TEXT NOT NULL,
                created_at DOUBLE PRECISION NOT NULL,
                settled_at DOUBLE PRECISION)""",
            # At most one held reservation per call site; a site may have settled ones from earlier attempts.
            "CREATE UNIQUE INDEX podium_reservations_held ON podium_reservations (call_key) WHERE status = 'held'",
            "ALTER TABLE podium_ledger ADD COLUMN workflow TEXT",
            "ALTER TABLE podium_ledger ADD COLUMN team TEXT",
            "ALTER TABLE podium_ledger ADD COLUMN api_key TEXT",
            "ALTER TABLE podium_agents ADD COLUMN team TEXT NOT NULL DEFAULT ''",
            "ALTER TABLE podium_reviews ADD COLUMN workflow TEXT",
        ),
    ),
    Migration(
        6,
        "routed requests and their outcomes, so routers learn across restarts and processes (features, not text)",
        (
            """CREATE TABLE podium_routed (
                id TEXT PRIMARY KEY,
                router TEXT NOT NULL,
                run_id TEXT,
                model TEXT NOT NULL,
                features TEXT NOT NULL,
                success INTEGER,
                at DOUBLE PRECISION NOT NULL)""",
            "CREATE INDEX podium_routed_run ON podium_routed (run_id, success)",
            "CREATE INDEX podium_routed_router ON podium_routed (router, success)",
        ),
    ),
)

_VERSION_TABLE = """CREATE TABLE IF NOT EXISTS podium_schema_version (
    version INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    applied_at DOUBLE PRECISION NOT NULL)"""


def migrate(engine: sa.Engine) -> list[int]:
    """Apply every migration the database has not seen; return the versions applied now."""
    with engine.begin() as conn:
        conn.execute(sa.text(_VERSION_TABLE))
    applied: list[int] = []
    for migration in MIGRATIONS:
        if _apply(engine, migration):
            applied.append(migration.version)
    return applied


def current_version(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        value = conn.execute(sa.text("SELECT MAX(version) FROM podium_schema_version")).scalar()
    return int(value or 0)


def _apply(engine: sa.Engine, migration: Migration) -> bool:
    with engine.begin() as conn:
        # Claiming the version row first takes the write lock (SQLite) or the row lock (PostgreSQL), so a
        # concurrent migrator waits here and then sees the row instead of running the DDL twice.
        claimed = conn.execute(
            sa.text(
                "INSERT INTO podium_schema_version (version, name, applied_at) "
                "VALUES (:version, :name, :at) ON CONFLICT (version) DO NOTHING"
            ),
            {"version": migration.version, "name": migration.name, "at": time.time()},
        ).rowcount
        if not claimed:
            return False
        for statement in migration.statements:
            conn.execute(sa.text(statement))
    return True
