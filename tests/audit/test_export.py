"""The log podium writes, exported by `podium audit export`, verifies with the independent verifier alone; an
edited export does not. And a database that still has the old hash chain carries it over into the Merkle log."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from podium import Settings
from podium.audit._heads import verify
from podium.cli import app
from podium.errors import ConfigurationError
from podium.store import MIGRATIONS, create_engine, current_version, migrate, tables
from podium.store._migrations import _apply
from tests import _apps

runner = CliRunner()


def cli(settings: Settings, *args: str, code: int = 0) -> str:
    result = runner.invoke(
        app,
        ["--database-url", settings.resolved_database_url, "--home", str(settings.home), *args],
        env={"COLUMNS": "250"},
    )
    assert result.exit_code == code, result.output
    return result.output


def test_an_export_of_podiums_own_log_verifies_and_an_edited_one_does_not(settings: Settings, tmp_path: Path) -> None:
    with _apps.launch(settings):
        for n in range(3):
            _apps.ask_then_note.options(run_id=f"run-{n}").start("tester", f"hello {n}").result()
    cli(settings, "audit", "checkpoint")
    with _apps.launch(settings):
        _apps.ask_then_note.options(run_id="run-late").start("tester", "late").result()  # after the first head

    folder = tmp_path / "export"
    assert "exported" in cli(settings, "audit", "export", str(folder))
    key = settings.home / "audit-signing-key.pem"
    public = tmp_path / "public.pem"
    public.write_bytes((folder / "public-key.pem").read_bytes())  # the auditor keeps this copy out of band
    verified = cli(settings, "audit", "verify", str(folder), "--public-key", str(public))
    assert "export verified" in verified and "2 signed tree head(s)" in verified and key.exists()

    lines = (folder / "entries.jsonl").read_bytes().splitlines(keepends=True)
    entry = json.loads(lines[3])
    entry["decision"] = "denied" if entry["decision"] != "denied" else "allowed"
    lines[3] = json.dumps(entry, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"
    (folder / "entries.jsonl").write_bytes(b"".join(lines))
    refused = cli(settings, "audit", "verify", str(folder), "--public-key", str(public), code=1)
    assert "does NOT verify" in refused

    proof = json.loads(cli(settings, "audit", "prove", "2"))
    assert proof["holds"] is True and proof["seq"] == 2
    consistency = json.loads(cli(settings, "audit", "consistency", "3"))
    assert consistency["holds"] is True and consistency["old_size"] == 3


def write_chain(engine: sa.Engine, *, tamper: bool) -> None:
    """Two entries as the hash chain (migrations 1-6) wrote them: each hash covers the previous one."""
    prev = ""
    with engine.begin() as conn:
        for seq in (1, 2):
            fields = {
                "call_key": f"k{seq}",
                "actor": "agent:a",
                "action": "model.call",
                "resource": "m",
                "decision": "allowed",
                "run_id": "r",
                "step_id": 1,
                "input_digest": "",
                "output_digest": "",
                "detail": '{"cost_nano_usd":"42"}',
                "at": 1700000000.0 + seq,
            }
            body = json.dumps({"seq": seq, **fields}, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
            entry_hash = hashlib.sha256(f"{prev}\n{body}".encode()).hexdigest()
            if tamper and seq == 2:
                fields["decision"] = "denied"  # edited after it was hashed
            conn.execute(
                sa.text(
                    "INSERT INTO podium_audit (seq, call_key, at, actor, action, resource, decision, run_id, step_id,"
                    " input_digest, output_digest, detail, prev_hash, entry_hash) VALUES (:seq, :call_key, :at,"
                    " :actor, :action, :resource, :decision, :run_id, :step_id, :input_digest, :output_digest,"
                    " :detail, :prev, :hash)"
                ),
                {**fields, "seq": seq, "prev": prev, "hash": entry_hash},
            )
            prev = entry_hash
        conn.execute(sa.text("UPDATE podium_audit_head SET seq = 2, entry_hash = :h"), {"h": prev})


def test_the_hash_chain_of_an_older_database_carries_over_as_the_first_leaves(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'old.db'}")
    migrate_to_chain = [m for m in MIGRATIONS if m.version < 7]
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "CREATE TABLE IF NOT EXISTS podium_schema_version (version INTEGER PRIMARY KEY, "
                "name TEXT NOT NULL, applied_at DOUBLE PRECISION NOT NULL)"
            )
        )
    for migration in migrate_to_chain:
        _apply(engine, migration)
    write_chain(engine, tamper=True)
    with pytest.raises(ConfigurationError, match="the audit hash chain does not verify at entry 2"):
        migrate(engine)
    assert current_version(engine) == 6, "a failed migration changed nothing"
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM podium_audit"))
    write_chain(engine, tamper=False)
    assert migrate(engine) == [m.version for m in MIGRATIONS if m.version >= 7]
    assert current_version(engine) == MIGRATIONS[-1].version
    with engine.connect() as conn:
        carried = conn.execute(sa.select(tables.audit_log.c.seq, tables.audit_log.c.cost_nano_usd)).all()
        size = conn.execute(sa.select(tables.audit_size.c.size)).scalar_one()
        old_tables = sa.inspect(conn).get_table_names()
    assert carried == [(1, 42), (2, 42)] and size == 2
    assert "podium_audit" not in old_tables and "podium_audit_head" not in old_tables
    assert verify(engine, None).ok
    engine.dispose()
