"""Discovery's storage on SQLite and PostgreSQL: a run is stored whole, sums stay exact (unknown bytes stay
unknown), and the queries `podium discover sanction` reads answer who used a service and how much, week by week."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from podium import Settings
from podium.discovery import LogFile, Sighting
from podium.discovery._store import (
    day_uses,
    direct_requests_by_week,
    ingested,
    iso_week,
    new_services,
    record_run,
    stored_uses,
    users_of,
)
from podium.discovery._who import Attributed
from podium.errors import StaleError
from podium.store import create_engine, migrate, tables


@pytest.fixture
def engine(settings: Settings) -> Iterator[sa.Engine]:
    made = create_engine(settings.resolved_database_url)
    migrate(made)
    yield made
    made.dispose()


def at(day: str, hour: int = 9) -> float:
    return dt.datetime.fromisoformat(f"{day}T{hour:02d}:00:00+00:00").timestamp()


def seen(user: str, service: str, day: str, requests: int, up: int | None, down: int | None, dept: str | None = None):
    host = f"api.{service}.example"
    sighting = Sighting("10.0.0.1", None, service, host, day, requests, up, down, at(day, 9), at(day, 17))
    return Attributed(user, dept, sighting)


def log_file(name: str) -> LogFile:
    return LogFile(Path(f"/logs/{name}"), "squid", f"{name:0>64}"[-64:], lines=10, skipped=1)


def test_a_run_is_stored_whole_and_sums_are_exact(engine: sa.Engine) -> None:
    first = [
        seen("ana", "openai", "2026-03-02", 3, 100, 2_000, "sales"),
        seen("ana", "openai", "2026-03-02", 2, 50, None, "sales"),  # a second address of Ana's: sums, None adds 0
        seen("bo", "claude", "2026-03-02", 7, None, None),  # DNS only: visits, no bytes
    ]
    record_run(engine, "run-1", at("2026-03-03"), [log_file("a")], day_uses(first), skipped_lines=1)
    uses = {(u.user, u.service): u for u in stored_uses(engine)}
    assert (uses["ana", "openai"].use.requests, uses["ana", "openai"].use.bytes_up) == (5, 150)
    assert (uses["ana", "openai"].use.bytes_down, uses["ana", "openai"].department) == (2_000, "sales")
    assert (uses["bo", "claude"].use.bytes_up, uses["bo", "claude"].use.bytes_down) == (None, None)
    assert uses["bo", "claude"].department is None
    assert ingested(engine, ["a" * 64, f"{'a':0>64}"]) == {f"{'a':0>64}": log_file("a")}
    assert new_services(engine, "run-1") == {"openai", "claude"}

    later = [seen("ana", "openai", "2026-03-09", 4, 10, 20, "sales"), seen("cy", "gemini", "2026-03-09", 1, 1, 1)]
    record_run(engine, "run-2", at("2026-03-10"), [log_file("b")], day_uses(later), skipped_lines=0)
    assert new_services(engine, "run-2") == {"gemini"}  # openai was seen by run-1 already
    assert [(u.user, u.requests) for u in users_of(engine, "openai")] == [("ana", 9)]
    assert users_of(engine, "openai")[0].last_seen == at("2026-03-09", 17)
    weekly = direct_requests_by_week(engine, service="openai")
    assert [(w.week, w.who, w.requests) for w in weekly] == [("2026-W10", "ana", 5), ("2026-W11", "ana", 4)]
    by_team = direct_requests_by_week(engine, by="department")
    assert [(w.service, w.week, w.who, w.requests) for w in by_team] == [
        ("claude", "2026-W10", "", 7),
        ("gemini", "2026-W11", "", 1),
        ("openai", "2026-W10", "sales", 5),
        ("openai", "2026-W11", "sales", 4),
    ]


def test_a_file_ingested_meanwhile_undoes_the_whole_run(engine: sa.Engine) -> None:
    record_run(engine, "run-1", at("2026-03-03"), [log_file("a")], day_uses([]), skipped_lines=0)
    uses = day_uses([seen("ana", "openai", "2026-03-02", 3, 1, 1)])
    with pytest.raises(StaleError, match="Run it again"):
        record_run(engine, "run-2", at("2026-03-04"), [log_file("b"), log_file("a")], uses, skipped_lines=0)
    with engine.connect() as conn:
        for table in (tables.discovery_runs, tables.discovery_files):
            assert conn.execute(sa.select(sa.func.count()).select_from(table)).scalar() == 1, table.name
        assert conn.execute(sa.select(sa.func.count()).select_from(tables.discovery_sightings)).scalar() == 0


def test_iso_weeks_follow_iso_years() -> None:
    assert [iso_week(d) for d in ("2026-01-01", "2025-12-29", "2027-01-03", "2026-03-09")] == [
        "2026-W01",
        "2026-W01",
        "2026-W53",
        "2026-W11",
    ]
