"""Who acts: an identity a key proved, never a name someone typed.

Every operator action (a kill, a budget, a registry change, a review decision, a directory change) is decided by
Cedar on an `Identity`, and podium's front doors make one only where a key was checked: `Podium.authenticate(key)`
(a person's key from `podium keys issue`, or an agent's from the registry). A plain string is refused wherever an
identity is asked for, so a name alone grants nothing. Code in the same process as podium can build one by hand
(`podium.testing` does, for test databases); that code can write the database directly too, which is the trust
boundary docs/governance.md draws.
"""

from __future__ import annotations

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
