"""The audit log's writer: append-only canonical entries, each a leaf of an RFC 6962 Merkle tree.

An entry's leaf hash covers its canonical JSON (sequence number included), so editing, reordering or inserting
an entry changes the tree; the tree's root at checkpoints is signed (`_heads.py`), so a signed head pins every
entry before it. Appending needs no previous hash, only the next sequence number: one counter bump and one insert
per batch.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace
from typing import Any

import sqlalchemy as sa

from podium._bounds import check_name
from podium.audit._merkle import leaf_hash
from podium.errors import UsageError
from podium.store import tables


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
    """What happened: who did what to which resource, the decision and the policies that made it, digests of
    what went in and out, and what it cost."""

    call_key: str
    actor: str
    action: str
    resource: str
    decision: str
    run_id: str | None = None
    step_id: int | None = None
    input_digest: str = ""
    output_digest: str = ""
    policies: tuple[str, ...] = ()
    cost_nano_usd: int = 0
    detail: str = "{}"
    at: float = 0.0

    def canonical(self, seq: int) -> bytes:
        """The exact bytes of this entry as leaf `seq - 1` of the tree (and as a line of an export)."""
        return canonical_json({**self.columns(), "policies": list(self.policies), "seq": seq}).encode()

    def columns(self) -> dict[str, Any]:
        """The entry as a row of `podium_audit_log` (without seq and leaf hash)."""
        values: dict[str, Any] = {name: getattr(self, name) for name in _FIELDS}
        values["policies"] = canonical_json(list(self.policies))
        return values

    @classmethod
    def from_row(cls, row: sa.RowMapping) -> AuditEntry:
        values = {name: row[name] for name in _FIELDS}
        values["policies"] = tuple(json.loads(row["policies"]))
        return cls(**values)


_FIELDS = tuple(AuditEntry.__dataclass_fields__)


def leaf_hash_hex(seq: int, entry: AuditEntry) -> str:
    return leaf_hash(entry.canonical(seq)).hex()


# Built once: constructing statements per append costs more than executing them.
_FIND = sa.select(tables.audit_log.c.call_key, tables.audit_log.c.seq).where(
    tables.audit_log.c.call_key.in_(sa.bindparam("keys", expanding=True))
)
_BUMP_SIZE = (
    sa.update(tables.audit_size)
    .where(tables.audit_size.c.id == 1)
    .values(size=tables.audit_size.c.size + sa.bindparam("count"))
    .returning(tables.audit_size.c.size)
)
_INSERT = sa.insert(tables.audit_log)


def append(conn: sa.Connection, entry: AuditEntry) -> int:
    """Append `entry` in the caller's transaction; return its sequence number. See `append_many`."""
    return append_many(conn, [entry])[0]


def append_many(conn: sa.Connection, entries: Sequence[AuditEntry], *, known_new: Collection[str] = ()) -> list[int]:
    """Append `entries`, in order, in the caller's transaction; return their sequence numbers.

    An entry whose `call_key` is already in the log is not appended again (its existing number is returned), so a
    step that re-runs after a crash does not log its calls twice. Keys in `known_new` were just proven new by the
    caller (the governor inserts their ledger rows in the same transaction) and are not looked up. However many
    entries, this is at most three statements: appending in batches is what makes the log fast under load.
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
        # Bumping the size first serialises appenders: SQLite's write lock, PostgreSQL's row lock.
        last = int(conn.execute(_BUMP_SIZE, {"count": len(fresh)}).scalar_one())
        rows = []
        for seq, entry in enumerate(fresh.values(), start=last - len(fresh) + 1):
            rows.append({**entry.columns(), "seq": seq, "leaf_hash": leaf_hash_hex(seq, entry)})
            existing[entry.call_key] = seq
        conn.execute(_INSERT, rows)
    return [int(existing[key]) for key in keys]


def parse_actor(by: str) -> tuple[str, str]:
    """`alice` or `person:alice` is a person; `agent:triage` is an agent.

    A person's name has no `:` and is not `owner`: those name teams (`team:support`) and the agent's owner in
    escalation chains, so whoever signed as one would decide as the whole team."""
    check_name(by, "a name")  # how someone signs: one short line of text
    kind, _, name = by.partition(":") if ":" in by else ("person", "", by)
    name = name.strip()
    if kind not in ("person", "agent") or not name or ":" in name or name == "owner":
        raise UsageError(
            f"actor {by!r} is not a person or an agent: use a person's name without ':' (how they sign, e.g. "
            "ana@example.com) or agent:<name>."
        )
    return kind, name


def record(
    conn: sa.Connection,
    actor: str,
    action: str,
    resource: str,
    *,
    decision: str = "done",
    input_digest: str = "",
    policies: Sequence[str] = (),
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
        policies=tuple(policies),
        detail=canonical_json(detail or {}),
    )
    return append(conn, entry)
