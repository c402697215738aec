"""Signed tree heads: at checkpoints, the Merkle root of the log so far, signed with podium's Ed25519 key.

A head pins every entry before it: changing, dropping or reordering any of them changes the root, and only the
holder of the private key can sign another. The key lives in a file beside the database, never in it (whoever
can write the database must not be able to re-sign it), and every head is published to witnesses outside the
database (`_witness.py`): whoever can write the database cannot make podium forget a head it signed, nor sign
with another key. Each head stores the tree's right edge, so the next checkpoint reads only the leaves appended
since.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import suppress
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

    @classmethod
    def from_json(cls, data: object) -> TreeHead:
        """The head `as_json` wrote; ValueError if `data` is not one."""
        fields = ("tree_size", "root_hash", "timestamp", "key_id", "signature")
        if not isinstance(data, dict) or not set(fields) <= set(data):
            raise ValueError(f"{data!r} is not a signed tree head")
        head = cls(*(data[name] for name in fields))
        texts = (head.root_hash, head.key_id, head.signature)
        if (
            type(head.tree_size) is not int
            or not isinstance(head.timestamp, int | float)
            or not all(isinstance(text, str) for text in texts)
        ):
            raise ValueError(f"{data!r} is not a signed tree head")
        return head


@dataclass(frozen=True)
class Witnessed:
    """A head as a witness holds it, and which witness (a folder or a URL)."""

    head: TreeHead
    by: str


class Signer:
    """podium's audit signing key, read from a PEM file readable only by its owner.

    `create=True` makes the key first if there is none: only for a log that has no signed head yet (see
    `AuditLog`), so a process that was not given the log's key fails instead of signing with a second one.
    """

    def __init__(self, path: Path, *, create: bool = False) -> None:
        self.path = path
        self.discarded = False
        self.created = create and _create_key(path)
        try:
            pem = path.read_bytes()
        except FileNotFoundError:
            raise ConfigurationError(f"there is no audit signing key at {path}: {KEY_FIX}.") from None
        except OSError as exc:
            raise ConfigurationError(
                f"cannot read the audit signing key {path} ({exc.strerror or exc}): {KEY_FIX}."
            ) from exc
        try:
            key = serialization.load_pem_private_key(pem, password=None)
        except ValueError as exc:
            raise ConfigurationError(
                f"the audit signing key {path} is not a PEM private key ({exc}). Restore it from your backup, or "
                "point PODIUM_AUDIT_KEY at the right file."
            ) from exc
        if not isinstance(key, Ed25519PrivateKey):
            raise ConfigurationError(f"the audit signing key {path} is not an Ed25519 key; podium signs with Ed25519.")
        self._key = key
        self._pem = pem
        self.public_key = key.public_key()
        self.key_id = key_id(self.public_key)

    def sign(self, tree_size: int, root_hash: str) -> TreeHead:
        unsigned = TreeHead(tree_size, root_hash, round(time.time(), 6), self.key_id, "")
        signature = self._key.sign(unsigned.signed_message()).hex()
        return TreeHead(tree_size, root_hash, unsigned.timestamp, self.key_id, signature)

    def public_pem(self) -> bytes:
        return self.public_key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)

    def export(self, path: Path, *, public: bool = False) -> None:
        """Write the key (`public`: only its public half, for auditors) to a new file: never over another, and the
        private key readable by its owner only."""
        data, mode = (self.public_pem(), 0o644) if public else (self._pem, 0o600)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        except FileExistsError:
            raise ConfigurationError(f"{path} exists already: give a new file name, or remove it first.") from None
        except OSError as exc:
            raise ConfigurationError(f"cannot create {path} ({exc.strerror or exc}): give a writable path.") from exc
        with os.fdopen(fd, "wb") as file:
            file.write(data)

    def discard(self) -> None:
        """Remove the key this process made, which signed nothing that was kept (another key signed the log)."""
        with suppress(FileNotFoundError):
            if self.created and self.path.read_bytes() == self._pem:
                self.path.unlink()
        self.discarded = True


KEY_FIX = (
    "copy the key that signs this log from a machine that has it (`podium audit key export FILE` there) and set "
    "PODIUM_AUDIT_KEY=FILE here; keep it readable by its owner only"
)


def missing_key(path: Path, log_key: str) -> str:
    return (
        f"this log's tree heads are signed with key {log_key[:16]}…, but there is no audit signing key at {path}: "
        f"{KEY_FIX}. podium does not make a second key for a log that is signed already."
    )


def _create_key(path: Path) -> bool:
    """Write a new key under a temporary name, then link it into place: two processes starting at once end up
    with one key, and none ever reads a half-written file. True if this call made the key."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigurationError(
            f"cannot create the folder {path.parent} for the audit signing key ({exc.strerror or exc}): set "
            "PODIUM_AUDIT_KEY to a writable place."
        ) from exc
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
        return False  # another process made it first: use theirs
    finally:
        temporary.unlink()
    return True


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


def checkpoint(
    engine: sa.Engine, signer_for: Callable[[str | None], Signer], witnessed: Witnessed | None
) -> TreeHead | None:
    """Sign the root of the log as it is now; return the new head, or the latest if nothing was appended since
    (None for an empty log). Safe to run from several processes at once: a head per size is kept once.

    `signer_for(key_id)` gives this process's key for a log already signed with `key_id` (None: no head yet,
    anywhere; only then may a key be made). It refuses (AuditTampered) to sign on top of a database that lost the
    latest head its witnesses hold, whose latest head does not verify (stored edge, root, signature), or with a
    key other than the one that signed the heads before: signing then would bless a rewrite of the log by whoever
    can write the database. Heads are inserted one at a time, each checked against the key of the heads already
    there, so two processes given different keys cannot both sign a new log's first heads.
    """
    with engine.connect() as conn:
        row = (
            conn.execute(sa.select(tables.tree_heads).order_by(tables.tree_heads.c.tree_size.desc()).limit(1))
            .mappings()
            .first()
        )
        latest = _head(row) if row else None
        frontier = Frontier.from_json(json.loads(row["frontier"])) if row else Frontier()
        problem = _witnessed_missing(conn, latest, witnessed) or _edge_problem(latest, frontier)
        if problem:
            raise AuditTampered(f"{problem}; nothing was signed. Run `podium audit verify` and investigate.")
        for _seq, leaf in _leaves(conn, after=frontier.size):
            frontier.append(leaf)
    if frontier.size == 0:
        return None
    signer = signer_for(latest.key_id if latest else witnessed.head.key_id if witnessed else None)
    problem = _key_problems(signer, latest, witnessed)
    if problem:
        raise AuditTampered(f"{problem}; nothing was signed. Run `podium audit verify` and investigate.")
    if latest is not None and frontier.size == latest.tree_size:
        return latest
    head = signer.sign(frontier.size, frontier.root().hex())
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":  # SQLite's IMMEDIATE transaction holds the write lock from the insert
            conn.execute(sa.text(f"LOCK TABLE {tables.tree_heads.name} IN SHARE ROW EXCLUSIVE MODE"))
        insert_if_absent(conn, tables.tree_heads, **head.as_json(), frontier=json.dumps(frontier.to_json()))
        other = conn.execute(
            sa.select(tables.tree_heads.c.key_id).where(tables.tree_heads.c.key_id != signer.key_id).limit(1)
        ).scalar()
        if other is not None:  # rolls the insert back
            made = " (this process's new key, which signed nothing kept, was removed)" if signer.created else ""
            signer.discard()
            raise ConfigurationError(
                f"another process signed this log with key {other[:16]}… meanwhile{made}; give every process that "
                f"key: {KEY_FIX}."
            )
    return head


def _witnessed_missing(conn: sa.Connection, latest: TreeHead | None, witnessed: Witnessed | None) -> str | None:
    """Whether the database lost the latest witnessed head."""
    if witnessed is None:
        return None
    stored = conn.execute(
        sa.select(tables.tree_heads.c.root_hash).where(tables.tree_heads.c.tree_size == witnessed.head.tree_size)
    ).scalar()
    by_size = {witnessed.head.tree_size: stored} if stored else {}
    return _witness_problem([witnessed], by_size, database_has_heads=latest is not None)


def _edge_problem(latest: TreeHead | None, frontier: Frontier) -> str | None:
    if latest is None or frontier.root().hex() == latest.root_hash:
        return None
    return _altered(latest)


def _altered(latest: TreeHead) -> str:
    return (
        f"the latest head in the database (size {latest.tree_size}) does not verify: its stored edge, root or "
        "signature was altered"
    )


def _key_problems(signer: Signer, latest: TreeHead | None, witnessed: Witnessed | None) -> str | None:
    """Whether `signer` is not the key of the heads signed before, or the latest head's signature fails."""
    path = str(signer.path)
    if witnessed is not None:
        problem = _key_problem(path, signer.key_id, witnessed.head.key_id, f"{witnessed.by} witnessed")
        if problem:
            return problem
    if latest is None:
        return None
    problem = _key_problem(path, signer.key_id, latest.key_id, "the database holds")
    if problem is None and not signature_holds(latest, signer.public_key):
        return _altered(latest)
    return problem


def key_mismatch(signer: Signer, log_key: str) -> str | None:
    """Why `signer` cannot sign a log whose latest head `log_key` signed, if it cannot."""
    return _key_problem(str(signer.path), signer.key_id, log_key, "the database holds")


def _key_problem(key_file: str, key: str, expected: str, whose: str) -> str | None:
    if key == expected:
        return None
    return (
        f"the audit signing key {key_file} (id {key[:16]}…) is not the key of the heads {whose} "
        f"(id {expected[:16]}…): point PODIUM_AUDIT_KEY at the key that signs this log (restore it from your "
        "backup, or `podium audit key export FILE` where it is)"
    )


def _witness_problem(
    witnessed: Sequence[Witnessed], stored: Mapping[int, str], *, database_has_heads: bool
) -> str | None:
    """Whether the database still holds every witnessed head, as signed (`stored`: its roots by tree size)."""
    for number, held in enumerate(reversed(witnessed)):
        if stored.get(held.head.tree_size) != held.head.root_hash:
            which = "the last head" if number == 0 else "a head"
            anew = (
                ""
                if database_has_heads
                else f" (a database started anew on purpose needs a witness of its own: move {held.by} aside)"
            )
            return (
                f"{which} podium signed (size {held.head.tree_size}, root {held.head.root_hash[:16]}…), witnessed by "
                f"{held.by}, is missing from the database or was altered{anew}"
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
    """The result of checking the log in the database: `ok`, how many entries, how many signed heads, the first
    problem found, and the latest witnessed head it was checked against (its size, and which witness)."""

    ok: bool
    entries: int
    tree_heads: int = 0
    problem: str | None = None
    witnessed_size: int = 0
    witnessed_by: str | None = None


def verify(engine: sa.Engine, public_key: Ed25519PublicKey | None, witnessed: Sequence[Witnessed] = ()) -> Verification:
    """Recompute every leaf from its row and every signed root from the leaves, in one pass; then check that the
    database still holds every head the witnesses hold (`witnessed`, smallest first), signed with their key.

    Entries after the last signed head are checked against their own leaf hashes and the log's size counter; a
    head checks everything before it. Without the public key (no key file yet) no head can be checked.
    """
    with engine.connect() as conn:
        signed = heads(conn)
        count, problem = _size(conn)
        if problem is None:
            count, problem = _check_leaves(conn, count, signed, public_key)
    if problem is None and witnessed:
        stored = {head.tree_size: head.root_hash for head in signed}
        problem = _witness_problem(witnessed, stored, database_has_heads=bool(signed))
    if problem is None and witnessed and public_key is not None:
        held = witnessed[-1]
        problem = _key_problem("(PODIUM_AUDIT_KEY)", key_id(public_key), held.head.key_id, f"{held.by} witnessed")
    latest = witnessed[-1] if witnessed else None
    return Verification(
        problem is None,
        count,
        len(signed),
        problem,
        latest.head.tree_size if latest else 0,
        latest.by if latest else None,
    )


def _size(conn: sa.Connection) -> tuple[int, str | None]:
    """The log's size counter, and a problem if an entry lies past it.

    The counter and the last entry are read in one statement (one snapshot): entries appended after it are not
    this verification's business, but an entry past the counter makes every later append collide."""
    log = tables.audit_log
    size, last = conn.execute(
        sa.select(tables.audit_size.c.size, sa.select(sa.func.max(log.c.seq)).scalar_subquery())
    ).one()
    if last is not None and last > size:
        return int(size), (
            f"entry {last} lies past the log's size counter ({size}): the counter was lowered or an entry was "
            "inserted past it, so every audited action now fails to append; investigate before repairing either"
        )
    return int(size), None


def _check_leaves(
    conn: sa.Connection, size: int, signed: list[TreeHead], public_key: Ed25519PublicKey | None
) -> tuple[int, str | None]:
    """(entries checked, the first problem or None) for the first `size` entries."""
    log = tables.audit_log
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
    if head.key_id != key_id(public_key):
        return (
            f"the head of size {head.tree_size} names key {head.key_id[:16]}…, not this process's key "
            f"{key_id(public_key)[:16]}…: the heads were re-signed, or PODIUM_AUDIT_KEY is not this log's key"
        )
    if not signature_holds(head, public_key):
        return f"the signature of the head of size {head.tree_size} does not verify with podium's key"
    return None


def _head(row: sa.RowMapping) -> TreeHead:
    return TreeHead(int(row["tree_size"]), row["root_hash"], float(row["timestamp"]), row["key_id"], row["signature"])
