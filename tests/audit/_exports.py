"""The tests' own writer of audit exports: valid by construction, so each test can break one thing in it.

Written from the export format, not from podium's writer or verifier; it shares only the hashing rules.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from podium.audit import _merkle
from podium.audit.verifier import TreeHead


def canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def entry(n: int, **changes: Any) -> dict[str, Any]:
    """A plausible entry (without seq), different for each n."""
    fields: dict[str, Any] = {
        "at": 1_750_000_000.0 + n / 8,
        "actor": f"agent:writer-{n % 3}",
        "action": "tool.call",
        "resource": f"tool:search/{n}",
        "decision": "allow" if n % 5 else "deny",
        "policies": ["budget"] if n % 2 else [],
        "run_id": f"run-{n // 4}" if n % 4 else None,
        "step_id": n % 7 if n % 4 else None,
        "call_key": f"call-{n}",
        "input_digest": hashlib.sha256(b"in%d" % n).hexdigest(),
        "output_digest": hashlib.sha256(b"out%d" % n).hexdigest(),
        "cost_nano_usd": 1000 * n,
        "detail": "{}",
    }
    return {**fields, **changes}


def entry_lines(entries: Sequence[dict[str, Any]]) -> list[bytes]:
    """Each entry numbered by its position, as its line of entries.jsonl (without the newline)."""
    return [canonical({**fields, "seq": seq}) for seq, fields in enumerate(entries, start=1)]


def sign_head(key: Ed25519PrivateKey, tree_size: int, root_hash: str) -> TreeHead:
    timestamp = round(time.time(), 6)
    message = canonical({"root_hash": root_hash, "timestamp": timestamp, "tree_size": tree_size})
    return TreeHead(tree_size, root_hash, timestamp, key_id(key), key.sign(message).hex())


def key_id(key: Ed25519PrivateKey) -> str:
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()


def public_pem(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def write_export(
    directory: Path,
    entries: Sequence[dict[str, Any]],
    checkpoints: Sequence[int],
    key: Ed25519PrivateKey | None = None,
) -> list[TreeHead]:
    """A valid export of `entries` with a signed head at each checkpoint size (the last should be len(entries))."""
    key = key or Ed25519PrivateKey.generate()
    lines = entry_lines(entries)
    leaves = [_merkle.leaf_hash(line) for line in lines]
    heads = [sign_head(key, size, _merkle.root(leaves[:size]).hex()) for size in checkpoints]
    directory.mkdir(parents=True, exist_ok=True)
    write_lines(directory, lines)
    write_heads(directory, heads)
    (directory / "public-key.pem").write_bytes(public_pem(key))
    return heads


def write_lines(directory: Path, lines: Sequence[bytes]) -> None:
    """Replace entries.jsonl, and fix the manifest's count as a careful forger would."""
    (directory / "entries.jsonl").write_bytes(b"".join(line + b"\n" for line in lines))
    _write_manifest(directory, entries=len(lines))


def read_lines(directory: Path) -> list[bytes]:
    return (directory / "entries.jsonl").read_bytes().splitlines()


def write_heads(directory: Path, heads: Sequence[TreeHead]) -> None:
    """Replace tree-heads.jsonl, and fix the manifest's count."""
    text = "".join(
        json.dumps(
            {
                "tree_size": h.tree_size,
                "root_hash": h.root_hash,
                "timestamp": h.timestamp,
                "key_id": h.key_id,
                "signature": h.signature,
            },
            sort_keys=True,
        )
        + "\n"
        for h in heads
    )
    (directory / "tree-heads.jsonl").write_text(text, encoding="utf-8")
    _write_manifest(directory, tree_heads=len(heads))


def _write_manifest(directory: Path, **counts: int) -> None:
    path = directory / "manifest.json"
    manifest = json.loads(path.read_text()) if path.exists() else {"format": "podium-audit-export/1"}
    manifest.update(counts)
    path.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
