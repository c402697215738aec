"""Helpers for testing code built on podium against the real databases."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import sqlalchemy as sa

from podium.policy import Identity

if TYPE_CHECKING:
    from podium._runtime import Podium

TEST_ADMIN = "admin@podium.test"


@contextmanager
def temporary_postgres_database(server_url: str, *, prefix: str = "podium_test") -> Iterator[str]:
    """Create an empty database on the PostgreSQL server at `server_url`, yield its URL, drop it afterwards.

    `server_url` names any database the user may connect to (for example `.../postgres`); the user needs the
    CREATEDB privilege.
    """
    admin_url = sa.make_url(server_url).set(drivername="postgresql+psycopg")
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        yield admin_url.set(database=name, drivername="postgresql").render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def sign_in(pod: Podium, name: str, *, teams: Iterable[str] | None = None) -> Identity:
    """The identity of `name` on a test database, got the way a person gets one (see `key_for`).

    `agent:<name>` gives the registered agent's identity as its key would prove it, without issuing a key."""
    if name.startswith("agent:"):
        return Identity("agent", pod.agents.get(name.removeprefix("agent:")).name, "test")
    if name == TEST_ADMIN and teams is None:
        return _test_admin(pod)
    return pod.authenticate(key_for(pod, name, teams=teams))


def key_for(pod: Podium, name: str, *, teams: Iterable[str] | None = None) -> str:
    """A new key for `name` on a test database, for `--key` or `Authorization: Bearer`. The first time, a test
    admin (`admin@podium.test`) is made as `podium init` makes one; `name` is added to the directory (with
    `teams` if given; an existing entry keeps its teams otherwise) and issued a key by that admin."""
    admin = _test_admin(pod)
    person = pod.people.find(name)
    if person is None or teams is not None:
        kept = set(teams) if teams is not None else set()
        if name == TEST_ADMIN:
            kept.add("admins")
        pod.people.add(name, teams=sorted(kept), by=admin)
    return pod.keys.issue(name, by=admin).key


def _test_admin(pod: Podium) -> Identity:
    """The test admin; made on first use. Code in podium's process may name an identity directly (whoever runs
    code here can write the database anyway): tests do, for the admin whose key they did not keep."""
    admins = sorted(pod.people.admins())
    if not admins:
        return pod.authenticate(pod.keys.bootstrap(TEST_ADMIN).key)
    if TEST_ADMIN not in admins:
        raise RuntimeError(f"this database has admins ({', '.join(admins)}): not a test database?")
    return Identity("person", TEST_ADMIN, "test")
