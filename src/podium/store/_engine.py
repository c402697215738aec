"""One SQLAlchemy engine per process, shared by DBOS's system tables and podium's own."""

from __future__ import annotations

import os
import sqlite3
import threading
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from podium.errors import ConfigurationError

POOL_SIZE = 20


def create_engine(url: str, *, pooled: bool = True) -> sa.Engine:
    """Create the engine for `url` and check that the database answers.

    `pooled=False` gives an engine that opens a connection of its own for each use: for the control plane (the kill
    switch), which must not queue behind the workers' connections.

    SQLite runs in WAL mode with `synchronous=NORMAL` (measured ~20x DBOS's default throughput) and IMMEDIATE
    transactions, as DBOS expects of its system database. PostgreSQL URLs use psycopg 3.
    """
    try:
        parsed = make_url(url)
    except sa.exc.ArgumentError as exc:
        raise ConfigurationError(
            f"PODIUM_DATABASE_URL {url!r} is not a database URL. "
            "Use sqlite:///path/to/podium.db or postgresql://user@host:5432/dbname."
        ) from exc
    if parsed.get_backend_name() == "sqlite":
        engine = _sqlite_engine(parsed, pooled)
    elif parsed.get_backend_name() == "postgresql":
        pool: dict[str, Any] = (
            {"pool_size": POOL_SIZE, "max_overflow": POOL_SIZE, "pool_pre_ping": True}
            if pooled
            else {"poolclass": NullPool}
        )
        engine = sa.create_engine(
            parsed.set(drivername="postgresql+psycopg"), connect_args={"connect_timeout": 5}, **pool
        )
    else:
        raise ConfigurationError(
            f"podium supports SQLite and PostgreSQL, not {parsed.get_backend_name()!r} "
            f"(from PODIUM_DATABASE_URL={safe_url(url)}). Use sqlite:///… or postgresql://…."
        )
    _check_connection(engine)
    return engine


def is_sqlite(engine: sa.Engine) -> bool:
    return engine.dialect.name == "sqlite"


def reader(engine: sa.Engine) -> sa.Engine:
    """`engine` for reads of one statement, which see one snapshot by themselves: on PostgreSQL in autocommit, so a
    read costs no BEGIN and ROLLBACK round trips (and psycopg keeps the statements it prepared, which a ROLLBACK
    discards). SQLite needs nothing: pysqlite opens no transaction for a SELECT."""
    if engine.dialect.name == "postgresql":
        return engine.execution_options(isolation_level="AUTOCOMMIT")
    return engine


def safe_url(url: str | sa.URL) -> str:
    """The URL with any password masked, for messages and logs."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return "<unparseable URL>"


def _sqlite_engine(url: sa.URL, pooled: bool = True) -> sa.Engine:
    if url.database and url.database != ":memory:":
        path = Path(url.database)
        try:  # a new home is its owner's alone: the database holds customer text, reviews and key digests
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigurationError(
                f"cannot create the folder {path.parent} for the SQLite database ({exc.strerror}). "
                "Set PODIUM_HOME or PODIUM_DATABASE_URL to a writable place."
            ) from exc
        if path.exists():
            _check_sqlite_file(path)
        else:
            _create_sqlite_file(path)
    engine = (
        sa.create_engine(url, pool_size=POOL_SIZE, max_overflow=POOL_SIZE)
        if pooled
        else sa.create_engine(url, poolclass=NullPool)
    )

    @event.listens_for(engine, "connect")
    def _configure(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = "IMMEDIATE"
        dbapi_conn.execute("PRAGMA busy_timeout=30000")
        dbapi_conn.execute("PRAGMA journal_mode=WAL")
        dbapi_conn.execute("PRAGMA synchronous=NORMAL")
        dbapi_conn.execute("PRAGMA foreign_keys=ON")

    return engine


SQLITE_HEADER = b"SQLite format 3\x00"


def _check_sqlite_file(path: Path) -> None:
    """Refuse a file that is not a SQLite database: SQLite would start an empty database over an empty file (its
    history gone without a word), and fail on garbage at some later query."""
    try:
        with path.open("rb") as file:
            header = file.read(len(SQLITE_HEADER))
    except OSError as exc:
        raise ConfigurationError(
            f"cannot read the SQLite database {path} ({exc.strerror}). Point PODIUM_HOME or PODIUM_DATABASE_URL at "
            "the database file, readable and writable by you."
        ) from exc
    if header != SQLITE_HEADER:
        what = "is empty (0 bytes)" if not header else "is not a SQLite database"
        raise ConfigurationError(
            f"{path} {what}: podium never leaves a database file like that, so it was damaged or replaced. "
            "Restore it from a backup; podium does not start afresh over it (move it aside for a new, empty home)."
        )


def _create_sqlite_file(path: Path) -> None:
    """Make a new database file whole (a SQLite header, WAL mode) under a temporary name, then link it into place:
    a database podium made is never empty, so an empty one is refused (`_check_sqlite_file`), and two processes
    starting at once end up with the same file."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}")
    try:
        created = sqlite3.connect(temporary)
        try:
            created.execute("PRAGMA journal_mode=WAL")
        finally:
            created.close()
        os.chmod(temporary, 0o600)  # and SQLite gives its -wal and -shm files the database's mode
        os.link(temporary, path)
    except FileExistsError:
        pass  # another process made it first: use theirs
    except (OSError, sqlite3.Error) as exc:
        raise ConfigurationError(
            f"cannot create the SQLite database {path} ({exc}). Set PODIUM_HOME or PODIUM_DATABASE_URL to a "
            "writable place."
        ) from exc
    finally:
        temporary.unlink(missing_ok=True)


def _check_connection(engine: sa.Engine) -> None:
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except sa.exc.OperationalError as exc:
        engine.dispose()
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        raise ConfigurationError(
            f"the database at {safe_url(engine.url)} did not answer: {reason}. "
            "Check that the server runs and PODIUM_DATABASE_URL is right "
            "(unset it to use the embedded SQLite file)."
        ) from exc
    except sa.exc.DatabaseError as exc:  # it answers, but what it holds is damaged (a SQLite file cut short)
        engine.dispose()
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        raise ConfigurationError(
            f"the database at {safe_url(engine.url)} is damaged ({reason}). Restore it from a backup; podium does "
            "not write over it."
        ) from exc
