"""Who acts: an identity a key proved, never a name someone typed.

Every operator action (a kill, a budget, a registry change, a review decision, a directory change) is decided by
Cedar on an `Identity`, and podium's front doors make one only where a key was checked: `Podium.authenticate(key)`
(a person's key from `podium keys issue`, or an agent's from the registry). A plain string is refused wherever an
identity is asked for, so a name alone grants nothing. Code in the same process as podium can build one by hand
(`podium.testing` does, for test databases); that code can write the database directly too, which is the trust
boundary docs/governance.md draws.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Literal

from podium.errors import UsageError


@dataclass(frozen=True)
class Identity:
    """A person or an agent, and the key (its id, never the secret) that proved it."""

    kind: Literal["person", "agent"]
    name: str
    key_id: str

    @property
    def actor(self) -> str:
        """How the audit log names them: `person:ana@example.com`, `agent:triage`."""
        return f"{self.kind}:{self.name}"

    def __str__(self) -> str:
        return self.name if self.kind == "person" else self.actor


def require_identity(by: object) -> Identity:
    """`by` as an identity, or one line saying how to get one (a name is not an identity)."""
    if isinstance(by, Identity):
        return by
    raise UsageError(
        f"{by!r} is a name, not an identity: act with a key. In Python, `me = pod.authenticate(key)` then pass "
        "`by=me`; on the command line, set PODIUM_KEY or use the key `podium init` stored."
    )


@dataclass(frozen=True)
class KeyFormat:
    """Keys `<prefix>_<id>_<secret>`, agents' (`pod`) and people's (`podp`) alike: the secret is 256 random bits,
    so podium keeps its sha256 (a slow hash adds nothing) and shows the key once."""

    prefix: str
    max_chars: int = 200  # anything longer is not a key podium issued; refused before any lookup

    def new(self) -> tuple[str, str, str]:
        """A fresh key: (id, the key to show once, the digest to keep)."""
        key_id, secret = secrets.token_hex(6), secrets.token_urlsafe(32)
        return key_id, f"{self.prefix}_{key_id}_{secret}", _sha256(secret)

    def split(self, key: str) -> tuple[str, str]:
        """(id, secret) of a key of this format; ("", "") for anything else."""
        prefix, _, rest = key.strip().partition("_")
        key_id, _, secret = rest.partition("_")
        if prefix != self.prefix or not key_id or not secret or len(key) > self.max_chars:
            return "", ""
        return key_id, secret

    @staticmethod
    def matches(secret: str, kept_sha256: str) -> bool:
        """Whether `secret` is the one whose digest was kept (compared in constant time)."""
        return hmac.compare_digest(kept_sha256, _sha256(secret))


def _sha256(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()
