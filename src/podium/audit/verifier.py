"""Verify an exported podium audit log without trusting podium.

This file is meant to be read by an auditor in one sitting. It shares no code with podium's writer except the
hashing rules of RFC 6962 (`_merkle.py`, pure functions on bytes), and needs only the standard library and
`cryptography`: copy it and `_merkle.py` into a folder and run `python verifier.py EXPORT ...`, or, with podium
installed, `python -m podium.audit.verifier EXPORT ...` (the same as `podium audit verify EXPORT ...`).
An export is a directory:

    manifest.json      {"format": "podium-audit-export/1", "entries": N, "tree_heads": H}
    entries.jsonl      line i is the entry with "seq": i in canonical JSON (sorted keys, no spaces, UTF-8);
                       its bytes without the newline are leaf i-1 of a Merkle tree
    tree-heads.jsonl   signed tree heads, smallest tree first: {"tree_size", "root_hash", "timestamp", "key_id",
                       "signature"}; each signs the root of the first tree_size entries, the last covers them all
    public-key.pem     the Ed25519 key that signed the heads

If the export verifies, no entry was altered, removed, inserted or reordered after a head covering it was
signed, unless whoever did it holds the signing key. Two things make that a verification rather than a
self-consistency check:

    --public-key KEY.pem    a key you already trust (from podium's operator, not from the export): anyone can
                            re-sign an edited export with a key of their own and ship that key inside it, so
                            without it the command exits 1 unless you pass --trust-embedded-key
    --trusted-head FILE     the last head you verified (written by --save-head FILE): the export must contain
                            that tree, so the log only grew since; an export cut back to an earlier signed head
                            is otherwise a valid, shorter log

    python -m podium.audit.verifier audit-2026-12 --public-key podium.pem \\
        --trusted-head last-head.json --save-head last-head.json

Exit status: 0 verified, 1 not verified (the line says why), 2 bad input (the line says what to pass).
From Python: `verify_export(Path("audit-export"), public_key=..., trusted_head=read_head(...))` gives a Report.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

if __package__:  # python -m podium.audit.verifier, or imported from podium
    from podium.audit._merkle import Frontier, leaf_hash
else:  # python verifier.py, run from a folder that holds a copy of _merkle.py beside it: no podium needed
    from _merkle import Frontier, leaf_hash  # type: ignore[import-not-found,no-redef]

FORMAT = "podium-audit-export/1"

# What every entry must hold; entries may hold more keys (they are hashed like the rest).
_NUMBER = (int, float)
_ENTRY_FIELDS: dict[str, tuple[type, ...]] = {
    "seq": (int,),
    "at": _NUMBER,
    "actor": (str,),
    "action": (str,),
    "resource": (str,),
    "decision": (str,),
    "policies": (list,),
    "run_id": (str, type(None)),
    "step_id": (int, type(None)),
    "call_key": (str,),
    "input_digest": (str,),
    "output_digest": (str,),
    "cost_nano_usd": (int,),
    "detail": (str,),
}
_HEAD_FIELDS: dict[str, tuple[type, ...]] = {
    "tree_size": (int,),
    "root_hash": (str,),
    "timestamp": _NUMBER,
    "key_id": (str,),
    "signature": (str,),
}


# The one form of a JSON value that is hashed and signed: json.dumps(value, sort_keys=True, separators=(",", ":"),
# ensure_ascii=False), encoded UTF-8. One encoder and decoder for all lines: a million entries add up.
_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)
_DECODER = json.JSONDecoder()


def _canonical(value: Any) -> bytes:
    return _ENCODER.encode(value).encode()


@dataclass(frozen=True)
class TreeHead:
    """The Merkle root (hex) of the first `tree_size` entries, signed at `timestamp` by the key `key_id`."""

    tree_size: int
    root_hash: str
    timestamp: float
    key_id: str
    signature: str

    def signed_message(self) -> bytes:
        return _canonical({"root_hash": self.root_hash, "timestamp": self.timestamp, "tree_size": self.tree_size})


@dataclass(frozen=True)
class Report:
    """The outcome: `ok`, how many entries and heads were checked, and the first problem, for a person.

    `trusted_key` is False when the heads were checked with the export's own key. `last_head` is the head that
    covers the whole log (None unless ok): keep it and pass it as `trusted_head` next time.
    """

    ok: bool
    entries: int
    tree_heads: int
    problem: str | None = None
    trusted_key: bool = False
    last_head: TreeHead | None = None


class _Problem(Exception):
    """Stops the verification at the first thing that is wrong."""


def verify_export(directory: Path, *, public_key: Path | None = None, trusted_head: TreeHead | None = None) -> Report:
    """Check everything in the export `directory`; see the module docstring for what that proves."""
    if not directory.is_dir():
        raise FileNotFoundError(
            f"there is no audit export at {directory}: pass the directory that `podium audit export` wrote."
        )
    heads: list[TreeHead] = []
    frontier = Frontier()
    try:
        manifest = _read_manifest(directory / "manifest.json")
        key = _read_key(directory / "public-key.pem", "the export's public-key.pem")
        if public_key is not None:
            trusted = _read_key(public_key, f"the key you trust, {public_key},")
            if _key_id(trusted) != _key_id(key):
                raise _Problem(
                    f"the export is signed by key {_key_id(key)}, not by the key you trust ({_key_id(trusted)})"
                )
        heads = _read_heads(directory / "tree-heads.jsonl", key)
        if len(heads) != manifest["tree_heads"]:
            raise _Problem(
                f"manifest.json lists {manifest['tree_heads']} tree heads but tree-heads.jsonl holds {len(heads)}"
            )
        _check_entries(directory / "entries.jsonl", frontier, heads, trusted_head)
        if frontier.size != manifest["entries"]:
            raise _Problem(f"manifest.json lists {manifest['entries']} entries but entries.jsonl holds {frontier.size}")
    except _Problem as problem:
        return Report(False, frontier.size, len(heads), str(problem), trusted_key=public_key is not None)
    return Report(True, frontier.size, len(heads), None, trusted_key=public_key is not None, last_head=heads[-1])


def _check_entries(path: Path, frontier: Frontier, heads: list[TreeHead], trusted: TreeHead | None) -> None:
    """One pass over the entries: each line well formed and in place, each head's root recomputed at its size."""
    if trusted is not None and trusted.tree_size < 1:
        raise _Problem(f"the head you trust has tree size {trusted.tree_size}; a signed head covers at least one entry")
    pending = iter(heads)
    head = next(pending, None)
    for number, line in enumerate(_lines(path), start=1):
        _check_entry(number, line)
        frontier.append(leaf_hash(line))
        root = None
        if head is not None and head.tree_size == frontier.size:
            root = frontier.root().hex()
            if root != head.root_hash:
                raise _Problem(
                    f"the signed head of size {head.tree_size} does not match entries 1..{head.tree_size}: "
                    "at least one of them was altered, removed, inserted or moved"
                )
            head = next(pending, None)
        if trusted is not None and trusted.tree_size == frontier.size:
            root = root or frontier.root().hex()
            if root != trusted.root_hash:
                raise _Problem(
                    f"entries 1..{trusted.tree_size} do not match the head you trust: the log was "
                    "rewritten since you verified it, not only appended to"
                )
    if trusted is not None and trusted.tree_size > frontier.size:
        raise _Problem(
            f"the head you trust covers {trusted.tree_size} entries but the export holds {frontier.size}: "
            "entries were removed since you verified it"
        )
    if head is not None:
        raise _Problem(
            f"the signed head of size {head.tree_size} covers more entries than the export holds "
            f"({frontier.size}): entries were removed"
        )
    if not heads or heads[-1].tree_size < frontier.size:
        covered = heads[-1].tree_size if heads else 0
        raise _Problem(f"entries {covered + 1}..{frontier.size} are not covered by a signed tree head")


def _lines(path: Path) -> Iterator[bytes]:
    """The lines of a file as bytes without their newline; each must end with one."""
    try:
        with path.open("rb") as file:
            for number, line in enumerate(file, start=1):
                if not line.endswith(b"\n"):
                    raise _Problem(f"line {number} of {path.name} does not end with a newline: the file was cut short")
                yield line[:-1]
    except OSError as exc:
        raise _Problem(f"cannot read {path.name} of the export: {exc.strerror or exc}") from exc


def _check_entry(number: int, line: bytes) -> None:
    where = f"line {number} of entries.jsonl"
    text = _utf8(line, where)
    entry = _parse_object(text, where)
    if _ENCODER.encode(entry) != text:
        raise _Problem(f"{where} is not in canonical JSON form (sorted keys, no spaces): it was edited")
    _check_fields(entry, _ENTRY_FIELDS, where)
    if not all(isinstance(policy, str) for policy in entry["policies"]):
        raise _Problem(f"{where}: policies must be a list of strings")
    if entry["seq"] != number:
        raise _Problem(f"{where} holds entry seq {entry['seq']}, not {number}: entries were removed, inserted or moved")


def _read_heads(path: Path, key: Ed25519PublicKey) -> list[TreeHead]:
    """The signed heads, each checked on its own: well formed, larger than the last, signed by `key`."""
    heads: list[TreeHead] = []
    for number, line in enumerate(_lines(path), start=1):
        where = f"tree head {number} (line {number} of tree-heads.jsonl)"
        fields = _parse_object(_utf8(line, where), where)
        _check_fields(fields, _HEAD_FIELDS, where)
        head = TreeHead(**{name: fields[name] for name in _HEAD_FIELDS})
        if len(head.root_hash) != 64 or not set(head.root_hash) <= set("0123456789abcdef"):
            raise _Problem(f"{where}: root_hash must be 64 lowercase hex digits, not {head.root_hash!r}")
        if head.tree_size <= (heads[-1].tree_size if heads else 0):
            raise _Problem(f"{where} has tree size {head.tree_size}: sizes must start at 1 and increase")
        if head.key_id != _key_id(key):
            raise _Problem(f"{where} names key {head.key_id!r}, but the export's key is {_key_id(key)}")
        if not _signature_holds(head, key):
            raise _Problem(f"the signature of {where} does not verify: the head was altered or signed by another key")
        heads.append(head)
    return heads


def _read_manifest(path: Path) -> dict[str, Any]:
    try:
        manifest = _parse_object(_utf8(path.read_bytes(), "manifest.json"), "manifest.json")
    except OSError as exc:
        raise _Problem(f"cannot read manifest.json of the export: {exc.strerror or exc}") from exc
    if manifest.get("format") != FORMAT:
        raise _Problem(f"manifest.json says format {manifest.get('format')!r}; this verifier reads {FORMAT!r}")
    _check_fields(manifest, {"entries": (int,), "tree_heads": (int,)}, "manifest.json")
    return manifest


def _read_key(path: Path, what: str) -> Ed25519PublicKey:
    try:
        key = serialization.load_pem_public_key(path.read_bytes())
    except OSError as exc:
        raise _Problem(f"cannot read {what}: {exc.strerror or exc}") from exc
    except ValueError as exc:
        raise _Problem(f"{what} is not a PEM public key ({exc})") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise _Problem(f"{what} is not an Ed25519 key; podium signs with Ed25519")
    return key


def _utf8(data: bytes, where: str) -> str:
    try:
        return data.decode()
    except UnicodeDecodeError as exc:
        raise _Problem(f"{where} is not UTF-8 text ({exc})") from exc


def _parse_object(text: str, where: str) -> dict[str, Any]:
    try:
        value = _DECODER.decode(text)
    except ValueError as exc:
        raise _Problem(f"{where} is not valid JSON ({exc})") from exc
    if not isinstance(value, dict):
        raise _Problem(f"{where} is not a JSON object")
    return value


def _check_fields(value: dict[str, Any], fields: dict[str, tuple[type, ...]], where: str) -> None:
    for name, types in fields.items():
        if name not in value:
            raise _Problem(f"{where} has no {name!r}")
        if type(value[name]) not in types:  # exact types: JSON's true is no int here
            allowed = " or ".join("null" if t is type(None) else t.__name__ for t in types)
            raise _Problem(f"{where}: {name!r} must be {allowed}, not {value[name]!r}")


def _key_id(key: Ed25519PublicKey) -> str:
    """sha256 (hex) of the raw 32-byte public key."""
    return hashlib.sha256(key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)).hexdigest()


def _signature_holds(head: TreeHead, key: Ed25519PublicKey) -> bool:
    try:
        key.verify(bytes.fromhex(head.signature), head.signed_message())
    except (InvalidSignature, ValueError):
        return False
    return True


# -- the command an auditor runs ------------------------------------------------------------------------------


class BadInput(Exception):
    """Something the auditor passed cannot be read; the message says what to pass instead."""


@dataclass(frozen=True)
class Outcome:
    """What the command says, in one line, and its exit status: 0 verified, 1 not verified, 2 bad input."""

    status: int
    message: str


_SAVE_HINT = "pass the file that --save-head wrote when you last verified this log"


def read_head(path: Path) -> TreeHead:
    """The head in `path` (one JSON object, as --save-head writes it); BadInput if it is not one."""
    where = f"the trusted head {path}"
    try:
        fields = _parse_object(_utf8(path.read_bytes(), where), where)
        _check_fields(fields, _HEAD_FIELDS, where)
    except OSError as exc:
        raise BadInput(f"cannot read {where}: {exc.strerror or exc}; {_SAVE_HINT}.") from exc
    except _Problem as exc:
        raise BadInput(f"{exc}; {_SAVE_HINT}.") from exc
    return TreeHead(**{name: fields[name] for name in _HEAD_FIELDS})


def write_head(path: Path, head: TreeHead) -> None:
    """Keep `head` in `path` for the next verification, replacing the file in one step."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    temporary.write_text(json.dumps(head.__dict__, sort_keys=True) + "\n", encoding="utf-8")
    temporary.replace(path)


def check(
    directory: Path,
    *,
    public_key: Path | None = None,
    trusted_head: Path | None = None,
    save_head: Path | None = None,
    trust_embedded_key: bool = False,
) -> Outcome:
    """Verify the export in `directory` as the command does, and say what came of it."""
    try:
        trusted = read_head(trusted_head) if trusted_head is not None else None
        report = verify_export(directory, public_key=public_key, trusted_head=trusted)
    except (BadInput, FileNotFoundError) as exc:
        return Outcome(2, str(exc))
    if not report.ok or report.last_head is None:
        return Outcome(1, f"export does NOT verify: {report.problem}")
    summary = f"{report.entries:,} entries, {report.tree_heads} signed tree head(s)"
    if not report.trusted_key and not trust_embedded_key:
        return Outcome(
            1,
            f"export intact but NOT verified: {summary}, signed by a key you have not said you trust "
            f"({report.last_head.key_id[:16]}…, shipped inside the export). Pass --public-key KEY.pem with the key "
            "podium's operator gave you, or --trust-embedded-key to accept it.",
        )
    signer = "the key you trust" if report.trusted_key else "the key inside the export (as you asked)"
    message = f"export verified: {summary}, signed by {signer}"
    if trusted is not None:
        message += f"; it extends the head you trusted ({trusted.tree_size:,} entries)"
    if save_head is not None:
        write_head(save_head, report.last_head)
        message += f"; its last head is saved to {save_head} (pass it as --trusted-head next time)"
    return Outcome(0, message + ".")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m podium.audit.verifier", description="Verify an exported podium audit log."
    )
    parser.add_argument("export", type=Path, help="the folder `podium audit export` wrote")
    parser.add_argument("--public-key", type=Path, help="the signing key you trust (PEM), from podium's operator")
    parser.add_argument("--trusted-head", type=Path, help="the last head you verified: the log must extend it")
    parser.add_argument("--save-head", type=Path, help="where to keep this export's last head for next time")
    parser.add_argument(
        "--trust-embedded-key", action="store_true", help="accept the key inside the export (proves intact, not who)"
    )
    args = parser.parse_args(argv)
    outcome = check(
        args.export,
        public_key=args.public_key,
        trusted_head=args.trusted_head,
        save_head=args.save_head,
        trust_embedded_key=args.trust_embedded_key,
    )
    print(_visible(outcome.message), file=sys.stdout if outcome.status == 0 else sys.stderr)
    return outcome.status


def _visible(text: str) -> str:
    """`text` with each character a terminal would act on or not draw (ESC, bidi overrides, newlines) escaped, as
    `repr` writes it: a message quotes the export, and a crafted export must not paint lines on the terminal."""
    return "".join(char if char.isprintable() else repr(char)[1:-1] for char in text)


if __name__ == "__main__":
    sys.exit(main())
