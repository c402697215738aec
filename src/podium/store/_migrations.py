"""Numbered, append-only schema migrations that run the same on SQLite and PostgreSQL.

Never edit a migration that has shipped: add the next number. Each migration runs in one transaction that
first claims its version row, so two processes starting at once cannot both apply it.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass

import sqlalchemy as sa

from podium.errors import ConfigurationError


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    statements: tuple[str, ...]
    after: Callable[[sa.Connection], None] | None = None  # data work in Python, in the same transaction


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
    Migration(
        7,
        "governance: the agent registry's fields, hashed agent keys, the kill switch, the Merkle audit log",
        (
            "ALTER TABLE podium_agents ADD COLUMN display_name TEXT NOT NULL DEFAULT ''",
            "ALTER TABLE podium_agents ADD COLUMN purpose TEXT NOT NULL DEFAULT ''",
            "ALTER TABLE podium_agents ADD COLUMN tier_ceiling TEXT NOT NULL DEFAULT ''",
            "ALTER TABLE podium_agents ADD COLUMN data_scopes TEXT NOT NULL DEFAULT '[]'",
            "ALTER TABLE podium_agents ADD COLUMN delegated_by TEXT",
            "ALTER TABLE podium_agents ADD COLUMN created_at DOUBLE PRECISION NOT NULL DEFAULT 0",
            """CREATE TABLE podium_agent_keys (
                id TEXT PRIMARY KEY,
                agent TEXT NOT NULL,
                secret_sha256 TEXT NOT NULL,
                created_at DOUBLE PRECISION NOT NULL,
                revoked_at DOUBLE PRECISION,
                revoked_by TEXT)""",
            "CREATE INDEX podium_agent_keys_agent ON podium_agent_keys (agent)",
            """CREATE TABLE podium_kills (
                scope TEXT PRIMARY KEY,
                killed_by TEXT NOT NULL,
                reason TEXT NOT NULL,
                killed_at DOUBLE PRECISION NOT NULL)""",
            # Every kill bumps this row; every side effect locks it (shared) before it commits, so a side effect
            # either commits before the kill is acknowledged or sees the kill and does not happen.
            "CREATE TABLE podium_kill_epoch (id INTEGER PRIMARY KEY, epoch BIGINT NOT NULL)",
            "INSERT INTO podium_kill_epoch (id, epoch) VALUES (1, 0)",
            """CREATE TABLE podium_audit_log (
                seq BIGINT PRIMARY KEY,
                call_key TEXT NOT NULL UNIQUE,
                at DOUBLE PRECISION NOT NULL,
                actor TEXT NOT NULL,
                action TEXT NOT NULL,
                resource TEXT NOT NULL,
                decision TEXT NOT NULL,
                policies TEXT NOT NULL,
                run_id TEXT,
                step_id INTEGER,
                input_digest TEXT NOT NULL,
                output_digest TEXT NOT NULL,
                cost_nano_usd BIGINT NOT NULL,
                detail TEXT NOT NULL,
                leaf_hash TEXT NOT NULL)""",
            "CREATE INDEX podium_audit_log_run ON podium_audit_log (run_id)",
            "CREATE INDEX podium_audit_log_actor ON podium_audit_log (actor, seq)",
            """CREATE TABLE podium_tree_heads (
                tree_size BIGINT PRIMARY KEY,
                root_hash TEXT NOT NULL,
                timestamp DOUBLE PRECISION NOT NULL,
                key_id TEXT NOT NULL,
                signature TEXT NOT NULL,
                frontier TEXT NOT NULL)""",
            # The hash chain's entries carry over as the first leaves of the Merkle log (see `_carry_over_chain`).
        ),
        after=lambda conn: _carry_over_chain(conn),  # noqa: PLW0108 (defined below the list)
    ),
    Migration(
        8,
        "humans on the loop: reviews bound to a call, escalation chains, claims, edits; people; labelled examples",
        (
            "ALTER TABLE podium_reviews ADD COLUMN reasons TEXT NOT NULL DEFAULT '[]'",
            "ALTER TABLE podium_reviews ADD COLUMN facts TEXT NOT NULL DEFAULT '{}'",
            "ALTER TABLE podium_reviews ADD COLUMN value_usd DOUBLE PRECISION",
            "ALTER TABLE podium_reviews ADD COLUMN action_schema TEXT NOT NULL DEFAULT '{}'",
            "ALTER TABLE podium_reviews ADD COLUMN judgement TEXT",
            "ALTER TABLE podium_reviews ADD COLUMN approved_action TEXT",
            "ALTER TABLE podium_reviews ADD COLUMN approved_digest TEXT",
            "ALTER TABLE podium_reviews ADD COLUMN consumed_by TEXT",
            "ALTER TABLE podium_reviews ADD COLUMN chain TEXT NOT NULL DEFAULT '[]'",
            "ALTER TABLE podium_reviews ADD COLUMN level INTEGER NOT NULL DEFAULT 0",
            "ALTER TABLE podium_reviews ADD COLUMN level_seconds DOUBLE PRECISION NOT NULL DEFAULT 0",
            "ALTER TABLE podium_reviews ADD COLUMN level_deadline_at DOUBLE PRECISION NOT NULL DEFAULT 0",
            "ALTER TABLE podium_reviews ADD COLUMN on_expiry TEXT NOT NULL DEFAULT 'reject'",
            "ALTER TABLE podium_reviews ADD COLUMN assignee TEXT",
            "ALTER TABLE podium_reviews ADD COLUMN claimed_by TEXT",
            "ALTER TABLE podium_reviews ADD COLUMN minutes DOUBLE PRECISION",
            "ALTER TABLE podium_reviews ADD COLUMN label TEXT",
            "DROP INDEX podium_reviews_status",
            "CREATE INDEX podium_reviews_open ON podium_reviews (status, created_at)",
            "CREATE INDEX podium_reviews_run ON podium_reviews (run_id)",
            """CREATE TABLE podium_people (
                name TEXT PRIMARY KEY,
                display_name TEXT NOT NULL,
                teams TEXT NOT NULL,
                usd_per_hour DOUBLE PRECISION,
                updated_at DOUBLE PRECISION NOT NULL)""",
            """CREATE TABLE podium_labels (
                id TEXT PRIMARY KEY,
                model TEXT NOT NULL,
                text TEXT NOT NULL,
                label TEXT NOT NULL,
                predicted TEXT,
                source TEXT NOT NULL,
                labelled_by TEXT,
                at DOUBLE PRECISION NOT NULL)""",
            "CREATE INDEX podium_labels_model ON podium_labels (model, at)",
        ),
    ),
    Migration(
        9,
        "what people granted and withdrew: a relaunch declares an agent, it never re-grants what a person revoked",
        (
            # JSON objects {"models" | "tools" | "data_scopes": [name, ...]}
            "ALTER TABLE podium_agents ADD COLUMN granted TEXT NOT NULL DEFAULT '{}'",
            "ALTER TABLE podium_agents ADD COLUMN withheld TEXT NOT NULL DEFAULT '{}'",
        ),
    ),
    Migration(
        10,
        "people's keys: a name alone grants nothing, a key proves who acts (stored hashed, revocable, expiring)",
        (
            """CREATE TABLE podium_person_keys (
                id TEXT PRIMARY KEY,
                person TEXT NOT NULL,
                secret_sha256 TEXT NOT NULL,
                created_at DOUBLE PRECISION NOT NULL,
                created_by TEXT NOT NULL,
                expires_at DOUBLE PRECISION,
                revoked_at DOUBLE PRECISION,
                revoked_by TEXT)""",
            "CREATE INDEX podium_person_keys_person ON podium_person_keys (person)",
        ),
    ),
    Migration(
        11,
        "each declared workflow's parameters, so a run started by name is checked before it is queued",
        # JSON list of {"name", "schema", "required"}: the JSON schema of each parameter, from its type hint;
        # NULL until a worker of this version declares the workflow again (nothing to check against until then)
        ("ALTER TABLE podium_workflows ADD COLUMN parameters TEXT",),
    ),
    Migration(
        12,
        "trained models by digest: the file is <sha256>.npz in the models folder, never a recorded path; "
        "rows written before name pickles, which are never loaded (retrain them)",
        (
            "ALTER TABLE podium_model_files ADD COLUMN format TEXT NOT NULL DEFAULT 'pickle'",
            "ALTER TABLE podium_model_files DROP COLUMN path",
        ),
    ),
    Migration(
        13,
        "the gateway: people's own model calls, and token classes each priced at its own rate",
        (
            "ALTER TABLE podium_ledger ADD COLUMN person TEXT",
            "ALTER TABLE podium_ledger ADD COLUMN cached_input_tokens BIGINT NOT NULL DEFAULT 0",
            "ALTER TABLE podium_ledger ADD COLUMN cache_write_tokens BIGINT NOT NULL DEFAULT 0",
            "ALTER TABLE podium_ledger ADD COLUMN reasoning_tokens BIGINT NOT NULL DEFAULT 0",
        ),
    ),
    Migration(
        14,
        "the gateway's rate limits: requests and tokens per key and team, per minute, shared by every process",
        (
            """CREATE TABLE podium_rate_windows (
                scope TEXT NOT NULL,
                "window" BIGINT NOT NULL,
                requests BIGINT NOT NULL,
                tokens BIGINT NOT NULL,
                PRIMARY KEY (scope, "window"))""",
        ),
    ),
    Migration(
        15,
        "shadow-AI discovery: the log files ingested (once each, by sha256), each run, and what they showed of "
        "AI services per user, department, host and day",
        (
            """CREATE TABLE podium_discovery_runs (
                id TEXT PRIMARY KEY,
                at DOUBLE PRECISION NOT NULL,
                files TEXT NOT NULL,
                skipped_lines BIGINT NOT NULL)""",
            "CREATE INDEX podium_discovery_runs_at ON podium_discovery_runs (at)",
            """CREATE TABLE podium_discovery_files (
                sha256 TEXT PRIMARY KEY,
                path TEXT NOT NULL,
                format TEXT NOT NULL,
                lines BIGINT NOT NULL,
                skipped BIGINT NOT NULL,
                run_id TEXT NOT NULL,
                ingested_at DOUBLE PRECISION NOT NULL)""",
            """CREATE TABLE podium_discovery_sightings (
                run_id TEXT NOT NULL,
                "user" TEXT NOT NULL,
                department TEXT NOT NULL,
                service TEXT NOT NULL,
                host TEXT NOT NULL,
                day TEXT NOT NULL,
                requests BIGINT NOT NULL,
                bytes_up BIGINT,
                bytes_down BIGINT,
                first_seen DOUBLE PRECISION NOT NULL,
                last_seen DOUBLE PRECISION NOT NULL,
                PRIMARY KEY (run_id, "user", department, service, host, day))""",
            "CREATE INDEX podium_discovery_sightings_service ON podium_discovery_sightings (service, day)",
            'CREATE INDEX podium_discovery_sightings_user ON podium_discovery_sightings ("user", service)',
        ),
    ),
    Migration(
        16,
        "shadow-AI discovery: each ingested log's content length and the digest of its first 64 KiB, so a log "
        "that grew since (the live file read again) is read only for what was appended",
        (
            "ALTER TABLE podium_discovery_files ADD COLUMN size BIGINT",
            "ALTER TABLE podium_discovery_files ADD COLUMN head_sha256 TEXT",
            "CREATE INDEX podium_discovery_files_head ON podium_discovery_files (head_sha256)",
        ),
    ),
    Migration(
        17,
        "information flow: what the agents of a workflow run read (tool results, and model output after them), "
        "labelled, so a consequential call is traced to its sources after a restart too",
        (
            """CREATE TABLE podium_flow_records (
                call_key TEXT PRIMARY KEY,
                door_key TEXT NOT NULL,
                trusted INTEGER NOT NULL,
                scopes TEXT NOT NULL,
                source TEXT NOT NULL,
                content TEXT NOT NULL,
                at DOUBLE PRECISION NOT NULL)""",
            "CREATE INDEX podium_flow_records_door ON podium_flow_records (door_key, at)",
        ),
    ),
    Migration(
        18,
        "the router's shadow sample: a routed request's shadow answer, and whether it agreed with the served one",
        (
            "ALTER TABLE podium_routed ADD COLUMN shadow_of TEXT",
            "ALTER TABLE podium_routed ADD COLUMN agrees INTEGER",
        ),
    ),
)

_MIGRATION_LOCK = 0x706F64_6D6967  # "pod" "mig": podium's advisory lock for creating its version table
_VERSION_TABLE = """CREATE TABLE IF NOT EXISTS podium_schema_version (
    version INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    applied_at DOUBLE PRECISION NOT NULL)"""


def migrate(engine: sa.Engine) -> list[int]:
    """Apply every migration the database has not seen; return the versions applied now."""
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            # Two CREATE TABLE IF NOT EXISTS at once both find no table and one fails on the catalog's unique
            # index: workers starting together on a new database take turns here (released at commit).
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK})
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
        if migration.after is not None:
            migration.after(conn)
    return True


_CHAIN_FIELDS = (
    "call_key",
    "actor",
    "action",
    "resource",
    "decision",
    "run_id",
    "step_id",
    "input_digest",
    "output_digest",
    "detail",
    "at",
)


def _canonical_json(value: object) -> str:
    """The audit log's canonical JSON as of migration 7, frozen here: a migration never imports live code."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def _carry_over_chain(conn: sa.Connection) -> None:
    """Move the hash chain's entries, in order, into the Merkle log as its first leaves; drop the chain.

    The entries keep their sequence numbers and fields; they gain no policy ids (the chain had none) and their
    cost from their detail. Their leaf hashes follow the Merkle log's rules as migration 7 made them (RFC 6962:
    SHA-256 of 0x00 and the entry's canonical JSON with its seq), written out here, not imported.
    """
    rows = conn.execute(sa.text("SELECT * FROM podium_audit ORDER BY seq")).mappings().all()
    head_seq, head_hash = conn.execute(sa.text("SELECT seq, entry_hash FROM podium_audit_head")).one()
    # Carry over only a chain that verifies, by the chain's own rules: the Merkle log must not launder tampering.
    prev_hash = ""
    for number, row in enumerate(rows, start=1):
        fields = {k: row[k] for k in _CHAIN_FIELDS}
        body = _canonical_json({"seq": row["seq"], **fields})
        if (
            row["seq"] != number
            or row["prev_hash"] != prev_hash
            or row["entry_hash"] != hashlib.sha256(f"{prev_hash}\n{body}".encode()).hexdigest()
        ):
            raise ConfigurationError(
                f"the audit hash chain does not verify at entry {number}, so it cannot become the Merkle log's "
                "first leaves; nothing was changed. Restore the database from a backup, or export the chain for "
                "the record and start a new database."
            )
        prev_hash = row["entry_hash"]
    if (head_seq, head_hash) != (len(rows), prev_hash):
        raise ConfigurationError(
            f"the audit hash chain ends at entry {len(rows)} but its head says {head_seq}: entries were removed; "
            "nothing was changed. Restore the database from a backup."
        )
    carried = []
    for row in rows:
        entry = {name: row[name] for name in _CHAIN_FIELDS}
        entry.update(cost_nano_usd=int(json.loads(row["detail"]).get("cost_nano_usd", 0)), policies="[]")
        leaf = _canonical_json({**entry, "policies": [], "seq": row["seq"]}).encode()
        carried.append({**entry, "seq": row["seq"], "leaf_hash": hashlib.sha256(b"\x00" + leaf).hexdigest()})
    if carried:
        conn.execute(
            sa.text(
                "INSERT INTO podium_audit_log (seq, call_key, at, actor, action, resource, decision, policies, run_id,"
                " step_id, input_digest, output_digest, cost_nano_usd, detail, leaf_hash) VALUES (:seq, :call_key,"
                " :at, :actor, :action, :resource, :decision, :policies, :run_id, :step_id, :input_digest,"
                " :output_digest, :cost_nano_usd, :detail, :leaf_hash)"
            ),
            carried,
        )
    conn.execute(sa.text("DROP TABLE podium_audit"))
    conn.execute(sa.text("DROP TABLE podium_audit_head"))
    conn.execute(sa.text("CREATE TABLE podium_audit_size (id INTEGER PRIMARY KEY, size BIGINT NOT NULL)"))
    conn.execute(sa.text("INSERT INTO podium_audit_size (id, size) VALUES (1, :size)"), {"size": len(carried)})
