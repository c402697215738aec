"""The audit log as an operator uses it: entries, checkpoints, proofs, export and verification."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

from podium.audit import _heads, _merkle
from podium.audit._heads import Signer, TreeHead, Verification
from podium.audit._log import AuditEntry
from podium.audit._witness import Witnesses
from podium.errors import ConfigurationError, NotFoundError, UsageError
from podium.settings import Settings
from podium.store import tables

EXPORT_FORMAT = "podium-audit-export/1"


@dataclass(frozen=True)
class StoredEntry:
    seq: int
    entry: AuditEntry


@dataclass(frozen=True)
class InclusionProof:
    """That entry `seq` is leaf `seq - 1` of the tree of `tree_size` entries whose root is `root_hash`."""

    seq: int
    tree_size: int
    leaf_hash: str
    root_hash: str
    path: tuple[str, ...]
    signed_root_hash: str | None = None  # the root podium signed for this size, if it signed one

    def holds(self) -> bool:
        """The path leads from the leaf to the root, and that root is the one podium signed (if it signed one)."""
        if self.signed_root_hash is not None and self.signed_root_hash != self.root_hash:
            return False
        return _merkle.verify_inclusion(
            bytes.fromhex(self.leaf_hash),
            self.seq - 1,
            self.tree_size,
            [bytes.fromhex(h) for h in self.path],
            bytes.fromhex(self.root_hash),
        )


@dataclass(frozen=True)
class ConsistencyProof:
    """That the tree of `old_size` entries is a prefix of the tree of `new_size` entries: the log only grew."""

    old_size: int
    new_size: int
    old_root: str
    new_root: str
    path: tuple[str, ...]

    def holds(self) -> bool:
        return _merkle.verify_consistency(
            self.old_size,
            self.new_size,
            bytes.fromhex(self.old_root),
            bytes.fromhex(self.new_root),
            [bytes.fromhex(h) for h in self.path],
        )


class AuditLog:
    def __init__(self, engine: sa.Engine, key_file: Path, witnesses: Witnesses) -> None:
        self._engine = engine
        self._key_file = key_file
        self._witnesses = witnesses
        self._signer: Signer | None = None

    @classmethod
    def from_settings(cls, engine: sa.Engine, settings: Settings) -> AuditLog:
        """The log in `engine`, signed with `audit_key`, witnessed by `audit_witnesses` (ConfigurationError if one
        of them is neither a folder nor an http(s) URL)."""
        return cls(engine, settings.audit_key_file, Witnesses.parse(settings.audit_witness_specs))

    @property
    def signer(self) -> Signer:
        """podium's signing key, read once (ConfigurationError if there is none: the first checkpoint of a log
        that has no signed head makes it; any other process must be given it, see `check_key`)."""
        if self._signer is None or self._signer.discarded:
            self._signer = Signer(self._key_file)
        return self._signer

    def check_key(self) -> None:
        """Fail now, in one line naming the fix, if this process cannot sign this log: its heads are signed with
        a key this process does not have (a worker started with another home, say). A log with no signed head
        gets its key at its first checkpoint."""
        log_key = self._log_key()
        if log_key is not None:
            self._matching_signer(log_key)

    def export_key(self, path: Path, *, public: bool = False) -> str:
        """Write the key that signs this log to a new file, for another machine's PODIUM_AUDIT_KEY (owner-only), or
        with `public` only its public half, which auditors verify exports with; made now if the log has no signed
        head yet. Returns its key id."""
        signer = self._matching_signer(self._log_key())
        signer.export(path, public=public)
        return signer.key_id

    def _matching_signer(self, log_key: str | None) -> Signer:
        signer = self._signer_for(log_key)
        if log_key is not None and (problem := _heads.key_mismatch(signer, log_key)):
            raise ConfigurationError(problem + ".")
        return signer

    def _signer_for(self, log_key: str | None) -> Signer:
        """This process's key for a log signed with `log_key`. Only a log with no signed head anywhere (None) has
        its key made here; a signed log never silently gets a second key."""
        if self._signer is None or self._signer.discarded:
            if log_key is not None and not self._key_file.exists():
                raise ConfigurationError(_heads.missing_key(self._key_file, log_key))
            self._signer = Signer(self._key_file, create=log_key is None)
        return self._signer

    def _log_key(self) -> str | None:
        """The key that signed the latest head in the database, if there is one."""
        heads = tables.tree_heads
        with self._engine.connect() as conn:
            found = conn.execute(sa.select(heads.c.key_id).order_by(heads.c.tree_size.desc()).limit(1)).scalar()
        return str(found) if found is not None else None

    def entries(
        self,
        *,
        actor: str | None = None,
        run_id: str | None = None,
        call_key_prefix: str | None = None,
        after: int = 0,
        limit: int | None = None,
    ) -> Iterator[StoredEntry]:
        """Entries in order, of `actor`, `run_id`, and calls whose key starts with `call_key_prefix` (a request's:
        give its actor too, whose index finds them)."""
        log = tables.audit_log
        query = sa.select(log).where(log.c.seq > after).order_by(log.c.seq)
        if actor is not None:
            query = query.where(log.c.actor == actor)
        if call_key_prefix is not None:
            query = query.where(log.c.call_key.startswith(call_key_prefix, autoescape=True))
        if run_id is not None:
            query = query.where(log.c.run_id == run_id)
        if limit is not None:
            query = query.limit(limit)
        with self._engine.connect() as conn:
            for row in conn.execution_options(stream_results=True, yield_per=5000).execute(query).mappings():
                yield StoredEntry(int(row["seq"]), AuditEntry.from_row(row))

    def get(self, seq: int) -> StoredEntry:
        self._check_entry(seq)
        for found in self.entries(after=seq - 1, limit=1):
            if found.seq == seq:
                return found
        raise NotFoundError(f"the audit log has no entry {seq}. `podium audit list` shows the latest entries.")

    def size(self) -> int:
        with self._engine.connect() as conn:
            return int(conn.execute(sa.select(tables.audit_size.c.size)).scalar_one())

    def checkpoint(self) -> TreeHead | None:
        """Sign the tree as it is now on top of what the witnesses hold (see `_heads.checkpoint`), and publish the
        head to every witness (again, if it is not new: a witness that missed one catches up)."""
        head = _heads.checkpoint(self._engine, self._signer_for, self._witnesses.latest())
        if head is not None:
            self._witnesses.publish(head)
        return head

    def heads(self) -> list[TreeHead]:
        with self._engine.connect() as conn:
            return _heads.heads(conn)

    def verify(self) -> Verification:
        """Check every entry and signed head in the database, and that it still holds every witnessed head."""
        log_key = self._log_key()
        public_key = self._signer_for(log_key).public_key if log_key is not None else None
        return _heads.verify(self._engine, public_key, self._witnesses.heads())

    def prove_inclusion(self, seq: int, tree_size: int | None = None) -> InclusionProof:
        """A proof that entry `seq` is in the tree of `tree_size` entries (default: the latest signed head)."""
        self._check_entry(seq)  # before a head is signed for the proof: a request that cannot be met changes nothing
        if tree_size is not None:
            self._check_entry(tree_size, "--size")
        size = tree_size or self._latest_head().tree_size
        if not 1 <= seq <= size:
            raise UsageError(f"entry {seq} is not in a tree of {size} entries; choose a size of at least {seq}.")
        leaves = self._leaves(size)
        path = _merkle.inclusion_proof(leaves, seq - 1)
        signed = next((h.root_hash for h in self.heads() if h.tree_size == size), None)
        return InclusionProof(
            seq, size, leaves[seq - 1].hex(), _merkle.root(leaves).hex(), tuple(h.hex() for h in path), signed
        )

    def prove_consistency(self, old_size: int, new_size: int | None = None) -> ConsistencyProof:
        """A proof that the tree of `old_size` entries is a prefix of the tree of `new_size` (default: latest head)."""
        self._check_entry(old_size, "OLD_SIZE")
        if new_size is not None:
            self._check_entry(new_size, "--size")
        size = new_size or self._latest_head().tree_size
        if not 1 <= old_size <= size:
            raise UsageError(
                f"cannot prove a tree of {old_size} entries consistent with one of {size}: need 1 <= old <= new."
            )
        leaves = self._leaves(size)
        path = _merkle.consistency_proof(leaves, old_size)
        return ConsistencyProof(
            old_size,
            size,
            _merkle.root(leaves[:old_size]).hex(),
            _merkle.root(leaves).hex(),
            tuple(h.hex() for h in path),
        )

    def export(self, directory: Path) -> TreeHead:
        """Write the log up to a fresh signed head, every head, and the public key to `directory` (see
        `podium.audit.verifier` for the format and how an auditor checks it)."""
        try:
            directory.mkdir(parents=True, exist_ok=True)
            (directory / "manifest.json").touch()  # the folder takes files: checked before a head is signed
        except OSError as exc:
            raise UsageError(
                f"cannot write the export to {directory} ({exc.strerror}); choose a folder you can write to."
            ) from None
        head = self.checkpoint()
        if head is None:
            raise UsageError("the audit log is empty: there is nothing to export yet.")
        signed = [h for h in self.heads() if h.tree_size <= head.tree_size]
        with (directory / "entries.jsonl").open("wb") as file:
            for stored in self.entries(limit=head.tree_size):
                file.write(stored.entry.canonical(stored.seq) + b"\n")
        with (directory / "tree-heads.jsonl").open("w", encoding="utf-8") as file:
            for tree_head in signed:
                file.write(json.dumps(tree_head.as_json(), sort_keys=True) + "\n")
        (directory / "public-key.pem").write_bytes(self.signer.public_pem())
        manifest = {"format": EXPORT_FORMAT, "entries": head.tree_size, "tree_heads": len(signed)}
        (directory / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        return head

    def _check_entry(self, seq: int, what: str = "the entry") -> None:
        """Refuse an entry number (or tree size) the log does not have, before anything is read or signed."""
        size = self.size()
        if isinstance(seq, bool) or not isinstance(seq, int) or not 1 <= seq <= size:
            held = f"entries 1 to {size:,}" if size else "no entries yet"
            raise UsageError(f"{what} {seq} is not in the audit log, which holds {held}.")

    def _leaves(self, size: int) -> list[bytes]:
        leaves = _heads.leaf_hashes(self._engine, size)
        if len(leaves) < size:
            raise UsageError(f"the log holds {len(leaves)} entries, fewer than {size}.")
        return leaves

    def _latest_head(self) -> TreeHead:
        head = self.checkpoint()
        if head is None:
            raise UsageError("the audit log is empty: there is nothing to prove yet.")
        return head
