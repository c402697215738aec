"""Executor ids: each process that runs workflows holds one no other live process holds, so DBOS recovers a
crashed process's runs under its id and never two processes' runs at once. A SQLite home holds them as file
locks beside the database, PostgreSQL as session advisory locks; either ends with the process."""

from __future__ import annotations

import fcntl
import os
import socket
from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa

from podium.errors import ConfigurationError
from podium.settings import Settings
from podium.store import is_sqlite

EXECUTOR_SLOTS = 64
_ADVISORY_LOCK_CLASS = 0x706F64  # "pod": the namespace of podium's executor locks in PostgreSQL


def claim_executor(settings: Settings, engine: sa.Engine) -> tuple[str, Callable[[], None]]:
    """Take an executor id no live process holds: the configured one, or the first free `<host>-<n>`."""
    candidates = (
        [settings.executor_id]
        if settings.executor_id
        else [f"{socket.gethostname()}-{n}" for n in range(1, EXECUTOR_SLOTS + 1)]
    )
    claim = _sqlite_claim(engine) if is_sqlite(engine) else _postgres_claim(engine)
    for candidate in candidates:
        release = claim(candidate)
        if release is not None:
            return candidate, release
    raise ConfigurationError(
        f"executor id {candidates[0]!r} is held by another live process. Give each process its own "
        "PODIUM_EXECUTOR_ID, or unset it to take a free slot."
        if settings.executor_id
        else f"all {EXECUTOR_SLOTS} executor slots on this host are taken; set PODIUM_EXECUTOR_ID explicitly."
    )


def _sqlite_claim(engine: sa.Engine) -> Callable[[str], Callable[[], None] | None]:
    database = engine.url.database or "podium.db"
    folder = Path(f"{database}.executors")
    folder.mkdir(parents=True, exist_ok=True)

    def claim(executor_id: str) -> Callable[[], None] | None:
        fd = os.open(folder / f"{executor_id}.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        return lambda: os.close(fd)  # closing the descriptor releases the lock, as does the process dying

    return claim


def _postgres_claim(engine: sa.Engine) -> Callable[[str], Callable[[], None] | None]:
    def claim(executor_id: str) -> Callable[[], None] | None:
        conn = engine.connect()
        held = conn.execute(
            sa.text("SELECT pg_try_advisory_lock(:cls, hashtext(:id))"),
            {"cls": _ADVISORY_LOCK_CLASS, "id": executor_id},
        ).scalar()
        conn.commit()
        if not held:
            conn.close()
            return None

        def release() -> None:
            conn.execute(
                sa.text("SELECT pg_advisory_unlock(:cls, hashtext(:id))"),
                {"cls": _ADVISORY_LOCK_CLASS, "id": executor_id},
            )
            conn.commit()
            conn.close()

        return release  # the session lock also ends when the process dies and its connection drops

    return claim
