"""The audit log: an RFC 6962 Merkle tree over canonical entries, signed tree heads, proofs, export and verify.

_log.py         the writer: canonical entries appended as leaves (in the caller's transaction)
_merkle.py      the hashing rules (RFC 6962 / 9162): roots, inclusion and consistency proofs
_heads.py       signed tree heads at checkpoints, and verification of the log in the database
_witness.py     witnesses: copies of the signed heads outside the database (a folder, an HTTP endpoint)
_audit_log.py   AuditLog: what an operator does with it (list, checkpoint, prove, export, verify)
verifier.py     the independent verifier of an export and its command (`python -m podium.audit.verifier`),
                sharing only the hashing rules with the writer; runs from a copy beside _merkle.py
"""

from podium.audit._audit_log import EXPORT_FORMAT, AuditLog, ConsistencyProof, InclusionProof, StoredEntry
from podium.audit._heads import TreeHead, Verification
from podium.audit._log import (
    AuditEntry,
    append,
    append_many,
    canonical_json,
    digest,
    parse_actor,
    record,
)

__all__ = [
    "EXPORT_FORMAT",
    "AuditEntry",
    "AuditLog",
    "ConsistencyProof",
    "InclusionProof",
    "StoredEntry",
    "TreeHead",
    "Verification",
    "append",
    "append_many",
    "canonical_json",
    "digest",
    "parse_actor",
    "record",
]
