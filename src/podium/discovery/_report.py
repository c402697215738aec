"""What discovery reports, from everything stored: per service and per person (or department) the requests, the
bytes each way (exact sums; unknown where only DNS saw the use, never 0), first and last seen, active days, the
weekly trend, the risk score and whether the service is sanctioned, and which services are new since the last run.

The JSON form is a contract others build on (issue 15, "The JSON output"): `findings`, `services`,
`skipped_lines`, `files`; each finding exactly `user`, `department`, `service`, `domain`, `requests`, `bytes_up`,
`bytes_down`, `first_seen`, `last_seen`, `sanctioned`, `risk`.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import sqlalchemy as sa

from podium._visible import visible
from podium.discovery._catalogue import Catalogue, Service
from podium.discovery._evidence import BadLine
from podium.discovery._store import DayUse, StoredUse, iso_week, new_services, stored_uses

FINDING_FIELDS = (
    "user",
    "department",
    "service",
    "domain",
    "requests",
    "bytes_up",
    "bytes_down",
    "first_seen",
    "last_seen",
    "sanctioned",
    "risk",
)


def iso_time(epoch: float) -> str:
    """ISO 8601 in UTC with a Z, as every podium JSON output writes times."""
    return dt.datetime.fromtimestamp(epoch, tz=dt.UTC).isoformat().replace("+00:00", "Z")


@dataclass
class _Total:
    """A running sum of days of use: the figures a finding or a service reports."""

    use: DayUse | None = None
    days: set[str] = field(default_factory=set)
    weeks: dict[str, int] = field(default_factory=dict)
    users: set[str] = field(default_factory=set)
    departments: set[str] = field(default_factory=set)

    def add(self, stored: StoredUse) -> None:
        day = stored.use
        if self.use is None:
            self.use = DayUse(day.requests, day.bytes_up, day.bytes_down, day.first_seen, day.last_seen)
        else:
            self.use.add(day)
        self.days.add(stored.day)
        week = iso_week(stored.day)
        self.weeks[week] = self.weeks.get(week, 0) + day.requests
        self.users.add(stored.user)
        if stored.department:
            self.departments.add(stored.department)

    def summed(self) -> dict[str, Any]:
        """The figures a finding and a service both report."""
        if self.use is None:
            raise ValueError("a total of nothing")  # never: a total is made for a stored use and adds it
        use = self.use
        return {
            "requests": use.requests,
            "bytes_up": use.bytes_up,
            "bytes_down": use.bytes_down,
            "first_seen": use.first_seen,
            "last_seen": use.last_seen,
            "active_days": len(self.days),
        }


@dataclass(frozen=True)
class Finding:
    """One person's (or address's, or pseudonym's) use of one service at one registered domain."""

    user: str
    department: str | None
    service: str
    domain: str
    requests: int
    bytes_up: int | None
    bytes_down: int | None
    first_seen: float
    last_seen: float
    active_days: int
    sanctioned: bool
    risk: int

    def as_json(self) -> dict[str, Any]:
        shown: dict[str, Any] = {name: getattr(self, name) for name in FINDING_FIELDS}
        shown.update(first_seen=iso_time(self.first_seen), last_seen=iso_time(self.last_seen))
        return shown


@dataclass(frozen=True)
class ServiceUse:
    """One service's use by everyone, with its trend."""

    service: Service
    requests: int
    bytes_up: int | None
    bytes_down: int | None
    first_seen: float
    last_seen: float
    active_days: int
    users: int
    departments: tuple[str, ...]
    weekly: dict[str, int]  # ISO week -> requests, in order
    new: bool  # first seen by the newest run

    def as_json(self) -> dict[str, Any]:
        s = self.service
        return {
            "service": s.id,
            "name": s.name,
            "vendor": s.vendor,
            "category": s.category,
            "risk": s.risk,
            "sanctioned": s.sanctioned,
            "blocked": s.blocked,
            "requests": self.requests,
            "bytes_up": self.bytes_up,
            "bytes_down": self.bytes_down,
            "first_seen": iso_time(self.first_seen),
            "last_seen": iso_time(self.last_seen),
            "active_days": self.active_days,
            "users": self.users,
            "departments": list(self.departments),
            "weekly_requests": self.weekly,
            "new": self.new,
        }


@dataclass(frozen=True)
class FileOutcome:
    """What became of one file given to a run: read now, or known already (and then not counted again)."""

    path: str
    format: str
    sha256: str
    lines: int
    skipped: int
    already_ingested: bool

    def as_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "format": self.format,
            "sha256": self.sha256,
            "lines": self.lines,
            "skipped": self.skipped,
            "already_ingested": self.already_ingested,
        }


@dataclass(frozen=True)
class Report:
    findings: list[Finding]  # most requests first
    services: list[ServiceUse]  # most requests first
    files: list[FileOutcome]  # of this run, in the order given
    skipped_lines: int  # lines of this run's files that could not be used
    bad_lines: list[BadLine] = field(default_factory=list)  # the first few of them

    def as_json(self) -> dict[str, Any]:
        return {
            "findings": [f.as_json() for f in self.findings],
            "services": [s.as_json() for s in self.services],
            "skipped_lines": self.skipped_lines,
            "files": [f.as_json() for f in self.files],
        }

    def findings_csv(self) -> str:
        """The findings as CSV, one per row; a cell a spreadsheet would run as a formula is quoted with `'`."""
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(FINDING_FIELDS)
        for finding in self.findings:
            shown = finding.as_json()
            writer.writerow([_csv_cell(shown[name]) for name in FINDING_FIELDS])
        return out.getvalue()

    def by_department(self) -> list[Finding]:
        """The findings summed per department, service and domain (`user` is ""; people without a department are
        summed under None)."""
        totals: dict[tuple[str, str, str], list[Finding]] = {}
        for f in self.findings:
            totals.setdefault((f.department or "", f.service, f.domain), []).append(f)
        merged = [_merge(department, group) for (department, _, _), group in totals.items()]
        return sorted(merged, key=_busiest)

    @property
    def new_services(self) -> list[ServiceUse]:
        return [s for s in self.services if s.new]


def _finding(user: str, department: str | None, service: Service, domain: str, total: _Total) -> Finding:
    return Finding(
        user=user,
        department=department,
        service=service.id,
        domain=domain,
        sanctioned=service.sanctioned,
        risk=service.risk,
        **total.summed(),
    )


def _service_use(service: Service, total: _Total, *, new: bool) -> ServiceUse:
    return ServiceUse(
        service=service,
        users=len(total.users),
        departments=tuple(sorted(total.departments)),
        weekly=dict(sorted(total.weeks.items())),
        new=new,
        **total.summed(),
    )


def _merge(department: str, group: Sequence[Finding]) -> Finding:
    """Findings of one service and domain summed into one for `department` (active days: the most of any one)."""
    total = DayUse(0, None, None, min(f.first_seen for f in group), max(f.last_seen for f in group))
    for f in group:
        total.add(DayUse(f.requests, f.bytes_up, f.bytes_down, f.first_seen, f.last_seen))
    return replace(
        group[0],
        user="",
        department=department or None,
        requests=total.requests,
        bytes_up=total.bytes_up,
        bytes_down=total.bytes_down,
        first_seen=total.first_seen,
        last_seen=total.last_seen,
        active_days=max(f.active_days for f in group),
    )


def _busiest(f: Finding) -> tuple[int, str, str]:
    return (-f.requests, f.service, f.user)


def _csv_cell(value: object) -> object:
    """A cell as the HTML report shows it: characters a terminal acts on as escapes (`cat` of the file runs no
    escape sequence), and a cell a spreadsheet would run as a formula quoted with `'`."""
    if not isinstance(value, str):
        return "" if value is None else value
    value = visible(value, one_line=True)
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t") else value


def unknown_service(service_id: str) -> Service:
    """A service the stored findings name that today's catalogue no longer has: shown by its id, unscored."""
    return Service(service_id, service_id, "", "unknown", ())


def build_report(
    engine: sa.Engine,
    catalogue: Catalogue,
    *,
    run_id: str | None,
    files: Iterable[FileOutcome] = (),
    skipped_lines: int = 0,
    bad_lines: Sequence[BadLine] = (),
) -> Report:
    """The report on everything stored; `run_id` is the newest run, which "new services" are measured against."""
    domains: dict[str, str] = {}  # host -> registered domain, looked up once each
    by_finding: dict[tuple[str, str | None, str, str], _Total] = {}
    by_service: dict[str, _Total] = {}
    for stored in stored_uses(engine):
        if (domain := domains.get(stored.host)) is None:
            domain = domains[stored.host] = catalogue.registered_domain(stored.host)
        key = (stored.user, stored.department, stored.service, domain)
        by_finding.setdefault(key, _Total()).add(stored)
        by_service.setdefault(stored.service, _Total()).add(stored)
    services = {sid: catalogue.services.get(sid) or unknown_service(sid) for sid in by_service}
    new = new_services(engine, run_id)
    findings = [
        _finding(user, department, services[sid], domain, total)
        for (user, department, sid, domain), total in by_finding.items()
    ]
    uses = [_service_use(services[sid], total, new=sid in new) for sid, total in by_service.items()]
    uses.sort(key=lambda s: (-s.requests, s.service.id))
    return Report(sorted(findings, key=_busiest), uses, list(files), skipped_lines, list(bad_lines))
