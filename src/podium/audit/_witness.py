"""Witnesses: copies of the signed tree heads kept outside the database, the live log's trust anchor.

Whoever can write the database can delete the heads in it, rewrite entries and their leaf hashes, and wait for
the next checkpoint; a witness (as in Certificate Transparency, Trillian and Sigsum) is somewhere they cannot
reach that remembers every head podium signed. A checkpoint reads the latest witnessed head before it signs
(the database must still hold it, and the key must be the one that signed it) and publishes the new head after;
`podium audit verify` checks the log against every witnessed head.

    DirectoryWitness    a folder: one file per head, `<tree size, 20 digits>.json`, never rewritten
    HttpWitness         an endpoint: GET <url>/heads lists the heads it holds (JSON, smallest first), POST
                        <url>/heads gives it one (200 when held, 409 when it holds another root for that size)

A witness that does not answer stops the checkpoint with ConfigurationError (nothing is signed until it is
back, and the next checkpoint publishes the latest head); two roots for one size are AuditTampered.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from podium.audit._heads import TreeHead, Witnessed
from podium.errors import AuditTampered, ConfigurationError

_FIX = "fix it or change PODIUM_AUDIT_WITNESSES"


class Witness(Protocol):
    """Somewhere outside the database that keeps the signed heads it is given."""

    name: str

    def heads(self) -> list[TreeHead]:
        """Every head it holds, smallest tree first."""
        ...

    def latest(self) -> TreeHead | None: ...

    def publish(self, head: TreeHead) -> None:
        """Keep `head` (again: publishing is idempotent); AuditTampered if it holds another root for its size."""
        ...


def _forked(witness: str, head: TreeHead, held: str) -> AuditTampered:
    return AuditTampered(
        f"the witness {witness} holds root {held[:16]}… for size {head.tree_size}, not {head.root_hash[:16]}…: the "
        "log was forked or the witness written by someone else; nothing more is published. Run `podium audit verify`."
    )


class DirectoryWitness:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.name = str(path)

    def heads(self) -> list[TreeHead]:
        return [self._read(path) for path in sorted(self._files())]

    def latest(self) -> TreeHead | None:
        files = self._files()
        return self._read(max(files)) if files else None

    def publish(self, head: TreeHead) -> None:
        target = self.path / f"{head.tree_size:020d}.json"
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            temporary = self.path / f".{target.name}.{os.getpid()}"
            temporary.write_text(json.dumps(head.as_json(), sort_keys=True), encoding="utf-8")
            try:
                os.link(temporary, target)  # never replaces a head already witnessed
            except FileExistsError:
                held = self._read(target)
                if held.root_hash != head.root_hash:
                    raise _forked(self.name, head, held.root_hash) from None
            finally:
                temporary.unlink()
        except OSError as exc:
            raise ConfigurationError(
                f"cannot write the audit witness folder {self.path} ({exc.strerror or exc}): {_FIX}."
            ) from exc

    def _files(self) -> list[Path]:
        try:
            return [path for path in self.path.glob("*.json") if not path.name.startswith(".")]
        except OSError as exc:
            raise ConfigurationError(
                f"cannot read the audit witness folder {self.path} ({exc.strerror or exc}): {_FIX}."
            ) from exc

    def _read(self, path: Path) -> TreeHead:
        try:
            return TreeHead.from_json(json.loads(path.read_text(encoding="utf-8")))
        except OSError as exc:
            raise ConfigurationError(f"cannot read the witnessed head {path} ({exc.strerror or exc}): {_FIX}.") from exc
        except ValueError as exc:  # JSON, or not a head
            raise AuditTampered(
                f"the witnessed head {path} is not a signed tree head ({exc}): someone wrote to the witness."
            ) from exc


class HttpWitness:
    def __init__(self, url: str, timeout_s: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self.name = url
        self._timeout_s = timeout_s

    def heads(self) -> list[TreeHead]:
        listed = self._call(urllib.request.Request(f"{self.url}/heads"))  # noqa: S310 - http(s) only, see parse
        try:
            if not isinstance(listed, list):
                raise ValueError(f"expected a JSON list, got {type(listed).__name__}")
            return sorted((TreeHead.from_json(head) for head in listed), key=lambda head: head.tree_size)
        except ValueError as exc:
            raise ConfigurationError(f"the audit witness {self.name} answered with no list of heads ({exc}).") from exc

    def latest(self) -> TreeHead | None:
        heads = self.heads()
        return heads[-1] if heads else None

    def publish(self, head: TreeHead) -> None:
        body = json.dumps(head.as_json()).encode()
        request = urllib.request.Request(  # noqa: S310 - http(s) only, see parse
            f"{self.url}/heads", data=body, method="POST", headers={"Content-Type": "application/json"}
        )
        try:
            self._call(request)
        except _Conflict:
            held = next((h.root_hash for h in self.heads() if h.tree_size == head.tree_size), "?")
            raise _forked(self.name, head, held) from None

    def _call(self, request: urllib.request.Request) -> object:
        try:
            with urllib.request.urlopen(request, timeout=self._timeout_s) as response:  # noqa: S310 - see parse
                return json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            if exc.code == 409:
                raise _Conflict from exc
            reason = f"HTTP {exc.code} {exc.reason}"
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = str(getattr(exc, "reason", exc))
        raise ConfigurationError(f"the audit witness {self.name} does not answer ({reason}): {_FIX}.")


class _Conflict(Exception):
    """The witness holds another root for that size (HTTP 409)."""


@dataclass(frozen=True)
class Witnesses:
    """The witnesses a log publishes to: every one must answer, and they must agree."""

    members: tuple[Witness, ...]

    @classmethod
    def parse(cls, specs: Sequence[str]) -> Witnesses:
        """`http(s)://…` is an HTTP witness, anything else without `://` a folder."""
        members: list[Witness] = []
        for spec in specs:
            if spec.startswith(("http://", "https://")):
                members.append(HttpWitness(spec))
            elif "://" in spec:
                raise ConfigurationError(
                    f"audit witness {spec!r}: use an http:// or https:// URL or a folder (PODIUM_AUDIT_WITNESSES)."
                )
            else:
                members.append(DirectoryWitness(Path(spec).expanduser()))
        return cls(tuple(members))

    def latest(self) -> Witnessed | None:
        """The largest head any witness holds."""
        found = [Witnessed(head, member.name) for member in self.members if (head := member.latest()) is not None]
        return max(found, key=lambda held: held.head.tree_size, default=None)

    def heads(self) -> list[Witnessed]:
        """Every head any witness holds, once per size, smallest first; AuditTampered if two disagree."""
        by_size: dict[int, Witnessed] = {}
        for member in self.members:
            for head in member.heads():
                held = by_size.setdefault(head.tree_size, Witnessed(head, member.name))
                if held.head.root_hash != head.root_hash:
                    raise _forked(member.name, held.head, head.root_hash)
        return [by_size[size] for size in sorted(by_size)]

    def publish(self, head: TreeHead) -> None:
        """Give `head` to every witness; the first failure is raised once all were tried."""
        failures: list[Exception] = []
        for member in self.members:
            try:
                member.publish(head)
            except (ConfigurationError, AuditTampered) as exc:
                failures.append(exc)
        if failures:
            raise failures[0]
