"""Governance: the governor, its pydantic-ai wrappers, and the audit log."""

from podium.governance._audit import AuditEntry, Verification, canonical_json, digest, verify
from podium.governance._governor import Call, Governor, Usage
from podium.governance._wrappers import GovernedModel, GovernedToolset

__all__ = [
    "AuditEntry",
    "Call",
    "GovernedModel",
    "GovernedToolset",
    "Governor",
    "Usage",
    "Verification",
    "canonical_json",
    "digest",
    "verify",
]
