"""Helpers for testing code built on podium against the real databases."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa


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
