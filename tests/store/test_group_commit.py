"""Group commit: concurrent writers share transactions, each learns its own outcome, and nothing is lost."""

from __future__ import annotations

import threading
from pathlib import Path

import sqlalchemy as sa

from podium.audit import AuditEntry, append_many
from podium.audit._heads import verify
from podium.store import create_engine, migrate, tables
from podium.store._group_commit import GroupCommitter


def test_many_threads_append_one_unbroken_chain(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'p.db'}")
    migrate(engine)
    batches: list[int] = []

    def write(conn: sa.Connection, entries: list[AuditEntry]) -> None:
        batches.append(len(entries))
        append_many(conn, entries)

    committer: GroupCommitter[AuditEntry] = GroupCommitter(engine, write)
    threads = [
        threading.Thread(
            target=lambda n=n: [
                committer.write(AuditEntry(f"k-{n}-{i}", "agent:a", "tool.call", "t", "allowed")) for i in range(25)
            ]
        )
        for n in range(16)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    committer.close()
    result = verify(engine, None)
    assert (result.ok, result.entries) == (True, 16 * 25)
    assert sum(batches) == 16 * 25
    engine.dispose()


def test_a_failing_write_fails_only_its_caller(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'p.db'}")
    migrate(engine)

    def write(conn: sa.Connection, keys: list[str]) -> None:
        for key in keys:
            if key == "bad":
                raise ValueError("bad row")
            conn.execute(
                tables.outbox.insert().values(idempotency_key=key, channel="c", recipient="r", body="b", created_at=0)
            )

    committer: GroupCommitter[str] = GroupCommitter(engine, write)
    outcomes: dict[str, str] = {}

    def submit(key: str) -> None:
        try:
            committer.write(key)
            outcomes[key] = "ok"
        except ValueError as exc:
            outcomes[key] = str(exc)

    threads = [threading.Thread(target=submit, args=(key,)) for key in ("a", "bad", "b", "c")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    committer.close()
    assert outcomes == {"a": "ok", "bad": "bad row", "b": "ok", "c": "ok"}
    with engine.connect() as conn:
        assert sorted(conn.execute(sa.select(tables.outbox.c.idempotency_key)).scalars()) == ["a", "b", "c"]
    engine.dispose()


def test_a_batch_with_a_repeated_call_key_appends_it_once(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'p.db'}")
    migrate(engine)
    entries = [AuditEntry(k, "agent:a", "tool.call", "t", "allowed") for k in ("x", "y", "x")]
    with engine.begin() as conn:
        assert append_many(conn, entries) == [1, 2, 1]
    assert verify(engine, None).entries == 2
    engine.dispose()
