"""Signed tree heads: at checkpoints, the Merkle root of the log so far, signed with podium's Ed25519 key.

A head pins every entry before it: changing, dropping or reordering any of them changes the root, and only the
holder of the private key can sign another. The key lives in a file beside the database, never in it (whoever
can write the database must not be able to re-sign it). Each head stores the tree's right edge, so the next
checkpoint reads only the leaves appended since.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from podium.audit._log import AuditEntry, canonical_json, leaf_hash_hex
from podium.audit._merkle import Frontier
from podium.errors import AuditTampered, ConfigurationError
from podium.store import insert_if_absent, tables


@dataclass(frozen=True)
class TreeHead:
    """The root of the first `tree_size` entries at `timestamp`, signed by the key `key_id`."""

    tree_size: int
    root_hash: str
    timestamp: float
    key_id: str
    signature: str

    def signed_message(self) -> bytes:
        return canonical_json(
            {"root_hash": self.root_hash, "timestamp": self.timestamp, "tree_size": self.tree_size}
        ).encode()

    def as_json(self) -> dict[str, Any]:
        return {
            "tree_size": self.tree_size,
            "root_hash": self.root_hash,
            "timestamp": self.timestamp,
            "key_id": self.key_id,
            "signature": self.signature,
        }


class Signer:
    """podium's audit signing key, loaded from (or created at) a PEM file readable only by its owner."""

    def __init__(self, path: Path) -> None:
        self.path = path
        if not path.exists():
            _create_key(path)
        try:
            key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        except ValueError as exc:
            raise ConfigurationError(
                f"the audit signing key {path} is not a PEM private key ({exc}). Restore it from your backup, or "
                "point PODIUM_AUDIT_KEY at the right file."
            ) from exc
        if not isinstance(key, Ed25519PrivateKey):
            raise ConfigurationError(f"the audit signing key {path} is not an Ed25519 key; podium signs with Ed25519.")
        self._key = key
        self.public_key = key.public_key()
        self.key_id = key_id(self.public_key)

    def sign(self, tree_size: int, root_hash: str) -> TreeHead:
        unsigned = TreeHead(tree_size, root_hash, round(time.time(), 6), self.key_id, "")
        signature = self._key.sign(unsigned.signed_message()).hex()
        return TreeHead(tree_size, root_hash, unsigned.timestamp, self.key_id, signature)

    @property
    def pin(self) -> Path:
        """Where the last head this key signed is remembered, outside the database."""
        return self.path.with_name(f"{self.path.stem}.last-head.json")

    def remember(self, head: TreeHead) -> None:
        """Keep `head` as the last signed one, unless a larger one is remembered already (another process)."""
        if self.pin.exists() and json.loads(self.pin.read_text(encoding="utf-8"))["tree_size"] >= head.tree_size:
            return
        temporary = self.pin.with_name(f".{self.pin.name}.{os.getpid()}")
        temporary.write_text(json.dumps(head.as_json()), encoding="utf-8")
        temporary.replace(self.pin)

    def public_pem(self) -> bytes:
        return self.public_key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def _create_key(path: Path) -> None:
    """Write a new key under a temporary name, then link it into place: two processes starting at once end up
    with one key, and none ever reads a half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as file:
        file.write(pem)
    try:
        os.link(temporary, path)
    except FileExistsError:
        pass  # another process made it first: use theirs
    finally:
        temporary.unlink()


def key_id(public_key: Ed25519PublicKey) -> str:
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()


def signature_holds(head: TreeHead, public_key: Ed25519PublicKey) -> bool:
    try:
        public_key.verify(bytes.fromhex(head.signature), head.signed_message())
    except (InvalidSignature, ValueError):
        return False
    return True


def heads(conn: sa.Connection) -> list[TreeHead]:
    """Every signed tree head, smallest tree first."""
    rows = conn.execute(sa.select(tables.tree_heads).order_by(tables.tree_heads.c.tree_size)).mappings()
    return [_head(row) for row in rows]


def checkpoint(engine: sa.Engine, signer: Signer) -> TreeHead | None:
    """Sign the root of the log as it is now; return the new head, or the latest if nothing was appended since
    (None for an empty log). Safe to run from several processes at once: a head per size is kept once.

    It refuses (AuditTampered) to sign on top of a database that lost the last head podium signed (remembered in
    a file beside the key) or whose stored tree edge does not give its signed root: signing then would bless a
    rewrite of the log by whoever can write the database.
    """
    with engine.connect() as conn:
        latest = (
            conn.execute(sa.select(tables.tree_heads).order_by(tables.tree_heads.c.tree_size.desc()).limit(1))
            .mappings()
            .first()
        )
        problem = _pin_problem(conn, signer.pin)
        frontier = Frontier.from_json(json.loads(latest["frontier"])) if latest else Frontier()
        if latest is not None and frontier.root().hex() != latest["root_hash"]:
            problem = f"the stored tree edge of the head of size {latest['tree_size']} does not give its signed root"
        if problem:
            raise AuditTampered(f"{problem}; nothing was signed. Run `podium audit verify` and investigate.")
        for _seq, leaf in _leaves(conn, after=frontier.size):
            frontier.append(leaf)
    if frontier.size == 0:
        return None
    if latest is not None and frontier.size == latest["tree_size"]:
        return _head(latest)
    head = signer.sign(frontier.size, frontier.root().hex())
    with engine.begin() as conn:
        insert_if_absent(conn, tables.tree_heads, **head.as_json(), frontier=json.dumps(frontier.to_json()))
    signer.remember(head)
    return head


def _pin_problem(conn: sa.Connection, pin: Path) -> str | None:
    """Whether the database still holds the last head this key signed, as signed."""
    if not pin.exists():
        return None
    remembered = json.loads(pin.read_text(encoding="utf-8"))
    stored = conn.execute(
        sa.select(tables.tree_heads.c.root_hash).where(tables.tree_heads.c.tree_size == remembered["tree_size"])
    ).scalar()
    if stored != remembered["root_hash"]:
        return (
            f"the last head podium signed (size {remembered['tree_size']}, root {remembered['root_hash'][:16]}…) "
            "is missing from the database or was altered"
        )
    return None


def _leaves(conn: sa.Connection, *, after: int = 0, upto: int | None = None) -> Iterator[tuple[int, bytes]]:
    log = tables.audit_log
    query = sa.select(log.c.seq, log.c.leaf_hash).where(log.c.seq > after).order_by(log.c.seq)
    if upto is not None:
        query = query.where(log.c.seq <= upto)
    for seq, leaf in conn.execution_options(stream_results=True, yield_per=10_000).execute(query):
        yield int(seq), bytes.fromhex(leaf)


def leaf_hashes(engine: sa.Engine, tree_size: int) -> list[bytes]:
    """The first `tree_size` leaf hashes, for proofs."""
    with engine.connect() as conn:
        return [leaf for _seq, leaf in _leaves(conn, upto=tree_size)]


@dataclass(frozen=True)
class Verification:
    """The result of checking the log in the database: `ok`, how many entries, how many signed heads, and the
    first problem found."""

    ok: bool
    entries: int
    tree_heads: int = 0
    problem: str | None = None


def verify(engine: sa.Engine, public_key: Ed25519PublicKey | None, pin: Path | None = None) -> Verification:
    """Recompute every leaf from its row and every signed root from the leaves, in one pass.

    Entries after the last signed head are checked against their own leaf hashes and the log's size; a head
    checks everything before it. Without the public key (no key file yet) no head can be checked. `pin` is the
    file where the signer remembers its last head: the database must still hold it.
    """
    with engine.connect() as conn:
        signed = heads(conn)
        problem = _pin_problem(conn, pin) if pin is not None else None
        count = 0
        if problem is None:
            count, problem = _check_leaves(conn, signed, public_key)
    return Verification(problem is None, count, len(signed), problem)


def _check_leaves(
    conn: sa.Connection, signed: list[TreeHead], public_key: Ed25519PublicKey | None
) -> tuple[int, str | None]:
    """(entries checked, the first problem or None)."""
    log = tables.audit_log
    size = int(conn.execute(sa.select(tables.audit_size.c.size)).scalar_one())
    # Entries appended after the size was read are not this verification's business.
    query = sa.select(log).where(log.c.seq <= size).order_by(log.c.seq)
    frontier = Frontier()
    pending = iter(signed)
    head = next(pending, None)
    for row in conn.execution_options(stream_results=True, yield_per=5000).execute(query).mappings():
        count = frontier.size + 1
        if row["seq"] != count:
            return count, f"entry {count} is missing (found {row['seq']} there)"
        if row["leaf_hash"] != leaf_hash_hex(count, AuditEntry.from_row(row)):
            return count, f"entry {count} was altered (its hash does not match)"
        frontier.append(bytes.fromhex(row["leaf_hash"]))
        while head is not None and head.tree_size == frontier.size:
            problem = _head_problem(head, frontier, public_key)
            if problem:
                return count, problem
            head = next(pending, None)
    if head is not None:
        return frontier.size, (
            f"a signed head covers {head.tree_size} entries, but the log holds {frontier.size}: entries were deleted"
        )
    if size != frontier.size:
        return frontier.size, f"the log holds {frontier.size} entries but {size} were appended: entries were deleted"
    return frontier.size, None


def _head_problem(head: TreeHead, frontier: Frontier, public_key: Ed25519PublicKey | None) -> str | None:
    if frontier.root().hex() != head.root_hash:
        return f"the signed head of size {head.tree_size} does not match the entries before it: one was altered"
    if public_key is None:
        return f"the signed head of size {head.tree_size} cannot be checked: the audit signing key is missing"
    if head.key_id != key_id(public_key) or not signature_holds(head, public_key):
        return f"the signature of the head of size {head.tree_size} does not verify with podium's key"
    return None


def _head(row: sa.RowMapping) -> TreeHead:
    return TreeHead(int(row["tree_size"]), row["root_hash"], float(row["timestamp"]), row["key_id"], row["signature"])
