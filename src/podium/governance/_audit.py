"""The audit log: an append-only, hash-chained record of every governed action.

Each entry's hash covers the previous entry's hash and the entry's canonical JSON, so editing, deleting or
reordering any row breaks the chain; a head row holds the last (seq, hash), so truncating the tail is caught
too. (The governance issue replaces the chain with a Merkle tree and signed tree heads.)
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

import sqlalchemy as sa

from podium.store import tables

GENESIS = ""


def canonical_json(value: Any) -> str:
    """JSON with sorted keys and no spaces: the one byte form podium hashes and signs."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def digest(value: Any) -> str:
    """sha256 of a value's canonical JSON (or of its bytes, for str and bytes)."""
    if isinstance(value, bytes):
        data = value
    elif isinstance(value, str):
        data = value.encode()
    else:
        data = canonical_json(value).encode()
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class AuditEntry:
    """What happened: who did what to which resource, the decision, and digests of what went in and out."""

    call_key: str
    actor: str
    action: str
    resource: str
    decision: str
    run_id: str | None = None
    step_id: int | None = None
    input_digest: str = ""
    output_digest: str = ""
    detail: str = "{}"
    at: float = 0.0


ENTRY_FIELDS = tuple(AuditEntry.__dataclass_fields__)


def _fields(entry: AuditEntry) -> dict[str, object]:
    return {name: getattr(entry, name) for name in ENTRY_FIELDS}


def entry_hash(prev_hash: str, seq: int, entry: AuditEntry) -> str:
    body = canonical_json({"seq": seq, **_fields(entry)})
    return hashlib.sha256(f"{prev_hash}\n{body}".encode()).hexdigest()


# Built once: constructing statements per append costs more than executing them.
_FIND = sa.select(tables.audit.c.call_key, tables.audit.c.seq).where(
    tables.audit.c.call_key.in_(sa.bindparam("keys", expanding=True))
)
_BUMP_HEAD = (
    sa.update(tables.audit_head)
    .where(tables.audit_head.c.id == 1)
    .values(seq=tables.audit_head.c.seq + sa.bindparam("count"))
    .returning(tables.audit_head.c.seq, tables.audit_head.c.entry_hash)
)
_INSERT = sa.insert(tables.audit)
_SET_HEAD_HASH = sa.update(tables.audit_head).where(tables.audit_head.c.id == 1).values(entry_hash=sa.bindparam("hash"))


def append(conn: sa.Connection, entry: AuditEntry) -> int:
    """Append `entry` in the caller's transaction; return its sequence number. See `append_many`."""
    return append_many(conn, [entry])[0]


def append_many(conn: sa.Connection, entries: Sequence[AuditEntry], *, known_new: Collection[str] = ()) -> list[int]:
    """Append `entries`, in order, in the caller's transaction; return their sequence numbers.

    An entry whose `call_key` is already in the log is not appended again (its existing number is returned), so a
    step that re-runs after a crash does not log its calls twice. Keys in `known_new` were just proven new by the
    caller (the governor inserts their ledger rows in the same transaction) and are not looked up. However many
    entries, this is at most five statements: appending in batches is what makes the log fast under load.
    """
    keys = [e.call_key for e in entries]
    unknown = [key for key in keys if key not in known_new]
    existing: dict[str, int] = {}
    if unknown:
        existing = {key: seq for key, seq in conn.execute(_FIND, {"keys": unknown})}
    fresh: dict[str, AuditEntry] = {}
    for entry in entries:
        if entry.call_key not in existing and entry.call_key not in fresh:
            fresh[entry.call_key] = entry if entry.at else replace(entry, at=time.time())
    if fresh:
        # Bumping the head first serialises appenders: SQLite's write lock, PostgreSQL's row lock.
        last, prev_hash = conn.execute(_BUMP_HEAD, {"count": len(fresh)}).one()
        rows = []
        for seq, entry in enumerate(fresh.values(), start=int(last) - len(fresh) + 1):
            new_hash = entry_hash(prev_hash, seq, entry)
            rows.append({**_fields(entry), "seq": seq, "prev_hash": prev_hash, "entry_hash": new_hash})
            existing[entry.call_key] = seq
            prev_hash = new_hash
        conn.execute(_INSERT, rows)
        conn.execute(_SET_HEAD_HASH, {"hash": prev_hash})
    return [int(existing[key]) for key in keys]


def record(
    conn: sa.Connection,
    actor: str,
    action: str,
    resource: str,
    *,
    decision: str = "done",
    input_digest: str = "",
    detail: dict[str, str] | None = None,
) -> int:
    """Append an entry for an action taken outside a governed call: a person's decision, a registry change."""
    entry = AuditEntry(
        call_key=f"{action}:{uuid.uuid4()}",
        actor=actor,
        action=action,
        resource=resource,
        decision=decision,
        input_digest=input_digest,
        detail=canonical_json(detail or {}),
    )
    return append(conn, entry)


@dataclass(frozen=True)
class Verification:
    """The result of checking the chain: `ok`, how many entries, and the first problem found."""

    ok: bool
    entries: int
    problem: str | None = None


def verify(engine: sa.Engine) -> Verification:
    """Recompute every hash from the first entry and compare it with the stored chain and head."""
    prev_hash = GENESIS
    count = 0
    with engine.connect() as conn:
        for row in _rows(conn):
            count += 1
            if row.seq != count:
                return Verification(False, count, f"entry {count} is missing (found seq {row.seq} in its place)")
            if row.prev_hash != prev_hash:
                return Verification(False, count, f"entry {row.seq} does not follow entry {row.seq - 1}")
            fields = {name: getattr(row, name) for name in AuditEntry.__dataclass_fields__}
            expected = entry_hash(prev_hash, row.seq, AuditEntry(**fields))
            if row.entry_hash != expected:
                return Verification(False, count, f"entry {row.seq} was altered (its hash does not match)")
            prev_hash = row.entry_hash
        head_seq, head_hash = conn.execute(sa.select(tables.audit_head.c.seq, tables.audit_head.c.entry_hash)).one()
    if head_seq != count or head_hash != prev_hash:
        return Verification(False, count, f"the log ends at entry {count} but its head says {head_seq}")
    return Verification(True, count)


def _rows(conn: sa.Connection) -> Iterator[sa.Row[Any]]:
    result = conn.execution_options(stream_results=True, yield_per=5000).execute(
        sa.select(tables.audit).order_by(tables.audit.c.seq)
    )
    yield from result
