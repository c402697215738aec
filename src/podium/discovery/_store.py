"""Where discovery's findings live: the files ingested (each once, by sha256), the runs, and per run what they
showed per user, department, service, host and day. Reports, the board report and `podium discover sanction` read
them back through the queries here; every run writes in one transaction, so a failure leaves nothing half-stored.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import sqlalchemy as sa

from podium.discovery._evidence import LogFile
from podium.discovery._fingerprint import head_digests, may_continue
from podium.discovery._formats import HEAD_BYTES
from podium.discovery._who import Attributed
from podium.errors import StaleError
from podium.store import insert_many_if_absent, tables

runs_t, files_t, sightings_t = tables.discovery_runs, tables.discovery_files, tables.discovery_sightings
DAY_KEY = tuple[str, str, str, str, str]  # user, department ('' for none), service, host, day


def ingested(engine: sa.Engine, digests: Iterable[str]) -> dict[str, LogFile]:
    """Of `digests`, the files already ingested, as they were read the first time (path, format, lines)."""
    wanted = list(digests)
    if not wanted:
        return {}
    with engine.connect() as conn:
        rows = conn.execute(sa.select(files_t).where(files_t.c.sha256.in_(wanted))).all()
    return {str(r.sha256): _logfile(r) for r in rows}


def continuable(engine: sa.Engine, head: bytes) -> list[LogFile]:
    """The ingested logs whose whole content a log starting with `head` (its first 64 KiB) may start with: found
    by the digest of their first bytes, for `fingerprint` to verify. Bounded: the distinct lengths under 64 KiB,
    then an indexed lookup."""
    with engine.connect() as conn:
        small = conn.execute(sa.select(files_t.c.size).distinct().where(files_t.c.size < HEAD_BYTES)).scalars()
        keys = head_digests(head, [*small, HEAD_BYTES])
        rows = conn.execute(sa.select(files_t).where(files_t.c.head_sha256.in_(keys.values()))).all()
    return may_continue(head, map(_logfile, rows))


def _logfile(row: sa.Row[Any]) -> LogFile:
    size, head = row.size, row.head_sha256
    return LogFile(
        Path(str(row.path)),
        str(row.format),
        str(row.sha256),
        int(row.lines),
        int(row.skipped),
        size=None if size is None else int(size),
        head_sha256=None if head is None else str(head),
    )


@dataclass
class DayUse:
    """One user's use of one host of a service on one day, summed over the sightings a run made of it."""

    requests: int
    bytes_up: int | None
    bytes_down: int | None
    first_seen: float
    last_seen: float

    def add(self, other: DayUse) -> None:
        self.requests += other.requests
        self.bytes_up = add_bytes(self.bytes_up, other.bytes_up)
        self.bytes_down = add_bytes(self.bytes_down, other.bytes_down)
        self.first_seen = min(self.first_seen, other.first_seen)
        self.last_seen = max(self.last_seen, other.last_seen)


def add_bytes(a: int | None, b: int | None) -> int | None:
    """Bytes add up as SQL's SUM does: unknown (None) adds nothing, and only unknowns stay unknown, never 0."""
    return b if a is None else a if b is None else a + b


def day_uses(attributed: Iterable[Attributed]) -> dict[DAY_KEY, DayUse]:
    """Sightings folded per (user, department, service, host, day): several addresses may be one person."""
    uses: dict[DAY_KEY, DayUse] = {}
    for one in attributed:
        s = one.sighting
        use = DayUse(s.requests, s.bytes_up, s.bytes_down, s.first_seen, s.last_seen)
        key = (one.user, one.department or "", s.service, s.host, s.day)
        if key in uses:
            uses[key].add(use)
        else:
            uses[key] = use
    return uses


def record_run(
    engine: sa.Engine,
    run_id: str,
    at: float,
    files: Sequence[LogFile],
    uses: dict[DAY_KEY, DayUse],
    skipped_lines: int,
    *,
    within: sa.Connection | None = None,
) -> None:
    """Store one run: its new files and what they showed, all or nothing. A file another run ingested meanwhile
    undoes the whole run (its evidence was read together with the others'), and says to run again. `within`: the
    transaction of the audited action the run is part of (`podium discover`), else one of its own."""
    rows = [
        {
            "sha256": file.sha256,
            "path": str(file.path),
            "format": file.format,
            "lines": file.lines,
            "skipped": file.skipped,
            "run_id": run_id,
            "ingested_at": at,
            "size": file.size,
            "head_sha256": file.head_sha256,
        }
        for file in files
    ]
    with contextlib.nullcontext(within) if within is not None else engine.begin() as conn:
        taken = {f.sha256 for f in files} - (insert_many_if_absent(conn, files_t, rows) if rows else set())
        if taken:
            path = next(f.path for f in files if f.sha256 in taken)
            raise StaleError(
                f"{path} was ingested by another `podium discover` while this one read it; nothing of this run was "
                "stored. Run it again: the files ingested since are skipped."
            )
        files_json = json.dumps([f.sha256 for f in files])
        conn.execute(runs_t.insert().values(id=run_id, at=at, files=files_json, skipped_lines=skipped_lines))
        uses_rows = [
            {
                "run_id": run_id,
                "user": user,
                "department": department,
                "service": service,
                "host": host,
                "day": day,
                "requests": use.requests,
                "bytes_up": use.bytes_up,
                "bytes_down": use.bytes_down,
                "first_seen": use.first_seen,
                "last_seen": use.last_seen,
            }
            for (user, department, service, host, day), use in uses.items()
        ]
        if uses_rows:
            conn.execute(sightings_t.insert(), uses_rows)


@dataclass(frozen=True)
class StoredUse:
    """Everything stored about one (user, department, service, host, day), over every run."""

    user: str
    department: str | None
    service: str
    host: str
    day: str
    use: DayUse


def stored_uses(engine: sa.Engine) -> list[StoredUse]:
    """Every stored day of use, summed over runs (a later log of the same day adds to it)."""
    s = sightings_t
    query = sa.select(
        s.c.user,
        s.c.department,
        s.c.service,
        s.c.host,
        s.c.day,
        sa.func.sum(s.c.requests).label("requests"),
        sa.func.sum(s.c.bytes_up).label("bytes_up"),
        sa.func.sum(s.c.bytes_down).label("bytes_down"),
        sa.func.min(s.c.first_seen).label("first_seen"),
        sa.func.max(s.c.last_seen).label("last_seen"),
    ).group_by(s.c.user, s.c.department, s.c.service, s.c.host, s.c.day)
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    return [
        StoredUse(
            str(r.user),
            str(r.department) or None,
            str(r.service),
            str(r.host),
            str(r.day),
            DayUse(int(r.requests), _int(r.bytes_up), _int(r.bytes_down), float(r.first_seen), float(r.last_seen)),
        )
        for r in rows
    ]


def latest_run(engine: sa.Engine) -> str | None:
    """The newest run's id: what "new since the last run" is measured against."""
    with engine.connect() as conn:
        query = sa.select(runs_t.c.id).order_by(runs_t.c.at.desc(), runs_t.c.id.desc()).limit(1)
        found = conn.execute(query).scalar()
    return None if found is None else str(found)


def new_services(engine: sa.Engine, run_id: str | None) -> set[str]:
    """The services run `run_id` saw that no earlier run had seen."""
    if run_id is None:
        return set()
    s, r = sightings_t, runs_t
    with engine.connect() as conn:
        at = conn.execute(sa.select(r.c.at).where(r.c.id == run_id)).scalar()
        if at is None:
            return set()
        seen_now = set(conn.execute(sa.select(s.c.service).where(s.c.run_id == run_id).distinct()).scalars())
        earlier = sa.or_(r.c.at < at, sa.and_(r.c.at == at, r.c.id < run_id))
        seen_before = conn.execute(
            sa.select(s.c.service).join(r, r.c.id == s.c.run_id).where(earlier, s.c.service.in_(seen_now)).distinct()
        ).scalars()
        return seen_now - set(seen_before)


def _int(value: object) -> int | None:
    return None if value is None else int(str(value))  # PostgreSQL's SUM of BIGINT is a Decimal


# -- what `podium discover sanction` and its migration KPI read -------------------------------------------------


@dataclass(frozen=True)
class ServiceUser:
    """Someone the logs show using a service directly: whom to issue a key to."""

    user: str  # person, pseudonym or client address, as stored
    department: str | None
    requests: int
    last_seen: float  # epoch seconds


def users_of(engine: sa.Engine, service: str) -> list[ServiceUser]:
    """Who used `service` (a catalogue id), with their department and when they last did, most requests first."""
    s = sightings_t
    query = (
        sa.select(
            s.c.user,
            s.c.department,
            sa.func.sum(s.c.requests).label("requests"),
            sa.func.max(s.c.last_seen).label("last_seen"),
        )
        .where(s.c.service == service)
        .group_by(s.c.user, s.c.department)
    )
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    found = [ServiceUser(str(r.user), str(r.department) or None, int(r.requests), float(r.last_seen)) for r in rows]
    return sorted(found, key=lambda u: (-u.requests, u.user, u.department or ""))


@dataclass(frozen=True)
class WeeklyRequests:
    """Direct requests to one service in one ISO week by one person (or one department)."""

    service: str
    week: str  # ISO week, "2026-W09"
    who: str  # the user, or the department ('' when none is known) when counted by department
    requests: int


def iso_week(day: str) -> str:
    """The ISO week of an ISO date: "2026-03-01" -> "2026-W09" (weeks start on Monday; the ISO year may differ)."""
    year, week, _ = dt.date.fromisoformat(day).isocalendar()
    return f"{year}-W{week:02d}"


def direct_requests_by_week(
    engine: sa.Engine, *, service: str | None = None, by: Literal["user", "department"] = "user"
) -> list[WeeklyRequests]:
    """Requests the logs show going straight to AI services, per service, ISO week and person or department: the
    "direct" side of the migration KPI (the gateway's side is in the ledger). Sorted by service, week, who."""
    s = sightings_t
    who = s.c.user if by == "user" else s.c.department
    query = sa.select(s.c.service, s.c.day, who.label("who"), sa.func.sum(s.c.requests).label("requests"))
    if service is not None:
        query = query.where(s.c.service == service)
    with engine.connect() as conn:
        rows = conn.execute(query.group_by(s.c.service, s.c.day, who)).all()
    weekly: dict[tuple[str, str, str], int] = {}
    for r in rows:  # weeks are folded here: SQLite and PostgreSQL disagree on ISO weeks in SQL
        key = (str(r.service), iso_week(str(r.day)), str(r.who))
        weekly[key] = weekly.get(key, 0) + int(r.requests)
    return [WeeklyRequests(*key, requests) for key, requests in sorted(weekly.items())]
