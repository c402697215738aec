"""People's keys: how a person proves who they are to the CLI, the Python API and the HTTP API.

A key is `podp_<id>_<secret>`: shown once when issued, stored as the secret's sha256 (the secret is 256 random
bits, so a plain hash is as strong as a slow one), revocable, and optionally expiring. Only admins issue keys
(Cedar `keys.issue`); a person may revoke their own. The first admin and their key come from `podium init`,
never from whoever happens to act first.
"""

from __future__ import annotations

import builtins
import json
import math
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

from podium._bounds import check_name
from podium.audit import parse_actor, record
from podium.errors import ConfigurationError, NotFoundError, Unauthenticated, UsageError
from podium.people._directory import admins, team_names
from podium.policy import Authorizer, Identity, KeyFormat, person_entity
from podium.store import reader, tables

KEYS = KeyFormat("podp")
MAX_EXPIRY_DAYS = 3650
k = tables.person_keys
p = tables.people
# Built once, read on every request a person's key signs: the key, and whether its person is in the directory.
_KEY_AND_PERSON = (
    sa.select(k, p.c.name.label("in_directory"))
    .select_from(k.outerjoin(p, p.c.name == k.c.person))
    .where(k.c.id == sa.bindparam("key_id"))
)


@dataclass(frozen=True)
class IssuedPersonKey:
    """A key as issued: `key` is the only copy of the secret, shown once."""

    person: str
    id: str
    key: str
    expires_at: float | None


@dataclass(frozen=True)
class PersonKey:
    """A key as podium remembers it: never the secret."""

    id: str
    person: str
    created_at: float
    created_by: str
    expires_at: float | None
    revoked_at: float | None
    revoked_by: str | None

    def state(self, now: float | None = None) -> str:
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= (now or time.time()):
            return "expired"
        return "live"


class PersonKeys:
    """Issue, list, revoke and check people's keys."""

    def __init__(self, engine: sa.Engine, authorizer: Authorizer) -> None:
        self._engine = engine
        self._reader = reader(engine)
        self._authorizer = authorizer

    def bootstrap(self, admin: str, *, store_in: Path | None = None, teams: Iterable[str] = ()) -> IssuedPersonKey:
        """Make `admin` the first admin of a new installation (also in `teams`) and issue their key; refused once
        any admin exists, so there is no first-come admin: later admins are appointed by an admin.

        `store_in` is a file to keep the key in for the local command line, owner-only and never over an
        existing file. It is written under a temporary name before the transaction commits and linked into
        place after, so it never holds a key the database does not, and a key the database holds is never lost."""
        kind, name = parse_actor(admin)
        if kind != "person":
            raise UsageError(f"{admin!r} is an agent; the first admin is a person (e.g. ana@example.com).")
        team_list = team_names(["admins", *teams])
        if store_in is not None and store_in.exists():
            raise UsageError(
                f"{store_in} exists: this home was initialised already. Ask its admin for a key "
                "(`podium keys issue --person EMAIL`), or give --home a new folder."
            )
        now = time.time()
        pending: Path | None = None
        try:
            with self._engine.begin() as conn:
                if found := sorted(admins(conn)):
                    raise UsageError(
                        f"this home already has an admin ({', '.join(found)}); ask them for a key "
                        "(`podium keys issue --person EMAIL`), or give --home a new folder for a new installation."
                    )
                values = {"display_name": name, "teams": json.dumps(team_list), "updated_at": now}
                if not conn.execute(p.update().where(p.c.name == name).values(**values)).rowcount:
                    conn.execute(p.insert().values(name=name, usd_per_hour=None, **values))
                issued = self._insert(conn, name, created_by="podium init", expires_at=None)
                record(conn, f"person:{name}", "podium.init", f"person:{name}", detail={"key_id": issued.id})
                if store_in is not None:
                    pending = _write_owner_only(store_in.with_name(f".{store_in.name}.{issued.id}"), issued.key)
        except BaseException:
            if pending is not None:
                pending.unlink(missing_ok=True)
            raise
        if store_in is not None and pending is not None:
            _link_into_place(pending, store_in)
        return issued

    def issue(
        self, person: str, *, by: Identity, expires_days: float | None = None, purpose: str = ""
    ) -> IssuedPersonKey:
        """A new key for `person` (who must be in the directory), live until revoked or `expires_days` pass.
        `purpose` says what it was issued for, beside who issued it (`created_by`, which `podium keys list` shows,
        and the audit entry), so the work that issued it can find it again (`podium discover sanction`)."""
        if expires_days is not None and not (math.isfinite(expires_days) and 0 < expires_days <= MAX_EXPIRY_DAYS):
            raise UsageError(
                f"--expires {expires_days} is out of range: give the days it lasts, more than 0 (0.5 is twelve "
                f"hours) and at most {MAX_EXPIRY_DAYS}."
            )
        teams = self._teams(person)
        expires_at = time.time() + expires_days * 86400 if expires_days is not None else None
        detail = {"expires_at": str(expires_at)} if expires_at else {}
        if purpose:
            detail["purpose"] = check_name(purpose, "a key's purpose")
        entity, context = person_entity(person, teams), {"touches_admins": "admins" in teams}
        with self._authorizer.act(
            by, "keys.issue", entity, context, resource_name=f"person:{person}", detail=detail
        ) as act:
            created_by = f"{by.actor} for {purpose}" if purpose else by.actor
            issued = self._insert(act.conn, person, created_by=created_by, expires_at=expires_at)
            act.detail["key_id"] = issued.id
        return issued

    def revoke(self, key_id: str, *, by: Identity) -> PersonKey:
        """Revoke a key at once: the next request it signs is refused."""
        key = self.get(key_id)
        if key.revoked_at is not None:
            return key
        teams = self._teams(key.person, must_exist=False)
        entity, context = person_entity(key.person, teams), {"touches_admins": "admins" in teams}
        with self._authorizer.act(
            by, "keys.revoke", entity, context, resource_name=f"person:{key.person}", detail={"key_id": key_id}
        ) as act:
            act.conn.execute(k.update().where(k.c.id == key_id).values(revoked_at=time.time(), revoked_by=by.actor))
        return self.get(key_id)

    def get(self, key_id: str) -> PersonKey:
        with self._engine.connect() as conn:
            row = conn.execute(sa.select(k).where(k.c.id == key_id)).first()
        if row is None:
            raise NotFoundError(f"no key {key_id!r}. `podium keys list` shows the keys and their ids.")
        return _key(row)

    def list(self, person: str | None = None) -> builtins.list[PersonKey]:
        query = sa.select(k).order_by(k.c.person, k.c.created_at)
        if person is not None:
            query = query.where(k.c.person == person)
        with self._engine.connect() as conn:
            return [_key(row) for row in conn.execute(query)]

    def authenticate(self, key: str) -> Identity:
        """The person a key proves, or `Unauthenticated` with why (malformed, unknown, revoked, expired, or its
        person left the directory). Not audited here: each front door audits refusals its own way (the HTTP
        server in aggregate, so a flood of bad keys cannot flood the log)."""
        key_id, secret = KEYS.split(key)
        row = None
        if key_id:
            with self._reader.connect() as conn:
                row = conn.execute(_KEY_AND_PERSON, {"key_id": key_id}).first()
        if not key_id:
            problem = f"it is not a person's key ({KEYS.prefix}_<id>_<secret>)"
        elif row is None or not KEYS.matches(secret, row.secret_sha256):
            problem = "the key is not one podium issued"
        elif row.revoked_at is not None:
            problem = f"key {key_id} was revoked by {row.revoked_by}; ask an admin for a new one"
        elif row.expires_at is not None and row.expires_at <= time.time():
            problem = f"key {key_id} expired; ask an admin for a new one (`podium keys issue`)"
        elif row.in_directory is None:
            problem = f"{row.person} is no longer in the directory"
        else:
            return Identity("person", str(row.person), key_id)
        raise Unauthenticated(f"key refused: {problem}.", key_id=key_id or "?", reason=problem)

    def _teams(self, person: str, *, must_exist: bool = True) -> tuple[str, ...]:
        with self._engine.connect() as conn:
            teams = conn.execute(sa.select(p.c.teams).where(p.c.name == person)).scalar()
        if teams is None and must_exist:
            raise NotFoundError(
                f"no person {person!r} in the directory; add them first (`podium people add {person} --team TEAM`)."
            )
        return tuple(json.loads(teams)) if teams else ()

    def _insert(
        self, conn: sa.Connection, person: str, *, created_by: str, expires_at: float | None
    ) -> IssuedPersonKey:
        key_id, key, digest = KEYS.new()
        conn.execute(
            k.insert().values(
                id=key_id,
                person=person,
                secret_sha256=digest,
                created_at=time.time(),
                created_by=created_by,
                expires_at=expires_at,
            )
        )
        return IssuedPersonKey(person, key_id, key, expires_at)


def _write_owner_only(path: Path, key: str) -> Path:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:
        raise ConfigurationError(
            f"cannot store the key in {path.parent}: {exc.strerror}. Nothing was changed; fix the folder and run again."
        ) from None
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(key + "\n")
    return path


def _link_into_place(pending: Path, path: Path) -> None:
    """Give the committed key its name; if something took the name meanwhile, keep the key where it is."""
    try:
        os.link(pending, path)
    except OSError as exc:
        raise ConfigurationError(
            f"the admin was made and their key stored in {pending}, but not as {path} ({exc.strerror}): move it "
            "there yourself, or set PODIUM_KEY to the key it holds."
        ) from None
    pending.unlink(missing_ok=True)


def _key(row: sa.Row[tuple[object, ...]]) -> PersonKey:
    return PersonKey(
        id=str(row.id),
        person=str(row.person),
        created_at=float(row.created_at),
        created_by=str(row.created_by),
        expires_at=row.expires_at,
        revoked_at=row.revoked_at,
        revoked_by=row.revoked_by,
    )
