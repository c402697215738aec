"""The migration KPI: of each person's (or team's) requests to a sanctioned AI service, week by week, the share that
went through the gateway rather than straight to the service.

Direct requests are what the logs showed (`podium discover`'s sightings); gateway requests are the ledger's rows of
that person's calls through the alias the service was sanctioned with (each joined to its audit entry, which names
the alias the client asked for). A request that failed at every upstream is no request served, and a try thrown
away for a fallback is not counted twice: only ledger rows not marked wasted count.

The figures are per person, so reading them is an action of its own: Cedar's `discovery.read` (admins, by default),
decided for the authenticated reader before anything is read, and a refusal audited.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import sqlalchemy as sa

from podium.discovery._scan import SCANNED
from podium.discovery._store import direct_requests_by_week, iso_week, users_of
from podium.policy import scope_entity
from podium.store import tables

if TYPE_CHECKING:
    from podium._runtime import Podium
    from podium.policy import Identity

Per = Literal["person", "team"]
DAY_SECONDS = 86400


@dataclass(frozen=True)
class Share:
    """One service, one ISO week, one person or team: requests through the gateway and direct."""

    service: str
    week: str  # "2026-W09"
    who: str  # a person, or a team ('' when the logs and the directory know none)
    gateway: int
    direct: int

    @property
    def share(self) -> float:
        """The gateway's share of the requests (0 to 1)."""
        total = self.gateway + self.direct
        return self.gateway / total if total else 0.0

    def as_json(self) -> dict[str, object]:
        return {
            "service": self.service,
            "week": self.week,
            "who": self.who,
            "gateway": self.gateway,
            "direct": self.direct,
            "gateway_share": round(self.share, 4),
        }


def sanctioned_aliases(engine: sa.Engine) -> dict[str, str]:
    """Service -> the gateway alias its latest sanction made, read from the audit log (`discovery.sanction`)."""
    log = tables.audit_log
    query = (
        sa.select(log.c.resource, log.c.detail)
        .where(log.c.action == "discovery.sanction", log.c.decision == "allowed")
        .order_by(log.c.seq)
    )
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    aliases: dict[str, str] = {}
    for row in rows:
        alias = json.loads(row.detail).get("alias")
        if isinstance(alias, str) and alias:
            aliases[str(row.resource).removeprefix("service:")] = alias
    return aliases


def gateway_requests_by_week(engine: sa.Engine, alias: str) -> dict[tuple[str, str], int]:
    """(person, ISO week) -> the person's requests served through `alias` at the gateway."""
    ledger, log = tables.ledger, tables.audit_log
    day = _whole_days(engine, ledger.c.at)
    query = (
        sa.select(ledger.c.person, day.label("day"), sa.func.count().label("requests"))
        .select_from(ledger.join(log, log.c.call_key == ledger.c.call_key))
        .where(
            ledger.c.person.is_not(None),
            ledger.c.wasted == 0,
            log.c.detail.contains(f'"alias":{json.dumps(alias)}', autoescape=True),  # the audit entry's JSON
        )
        .group_by(ledger.c.person, day)
    )
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    weekly: dict[tuple[str, str], int] = defaultdict(int)
    for row in rows:
        date = dt.datetime.fromtimestamp(int(row.day) * DAY_SECONDS, dt.UTC).date().isoformat()
        weekly[(str(row.person), iso_week(date))] += int(row.requests)
    return weekly


def _whole_days(engine: sa.Engine, at: sa.ColumnElement[float]) -> sa.ColumnElement[int]:
    """Days since the epoch of a time in seconds, in SQL: PostgreSQL rounds a cast to integer, SQLite truncates."""
    if engine.dialect.name == "postgresql":
        return sa.cast(sa.func.floor(at / DAY_SECONDS), sa.BigInteger)
    return sa.cast(at / DAY_SECONDS, sa.BigInteger)


def migration(
    pod: Podium,
    *,
    by: Identity,
    per: Per = "person",
    weeks: int = 12,
    services: Iterable[str] | None = None,
) -> list[Share]:
    """The KPI for every sanctioned service (or those of `services`), over the last `weeks` weeks in which anything
    happened, as `by` may read it (`discovery.read`). Per team, a person counts under the department the logs gave
    them, else their first team in the directory that is not `admins` (a role, not a department)."""
    pod.agents.authorizer.check(by, "discovery.read", scope_entity(SCANNED))  # a refusal is audited
    engine = pod.engine
    aliases = sanctioned_aliases(engine)
    wanted = sorted(aliases if services is None else set(services) & set(aliases))
    rows: dict[tuple[str, str, str], list[int]] = defaultdict(lambda: [0, 0])
    for service in wanted:
        department = {u.user: u.department for u in users_of(engine, service)} if per == "team" else {}

        def group(person: str, department: dict[str, str | None] = department) -> str:
            if per == "person":
                return person
            return department.get(person) or _directory_team(pod, person) or ""

        for (person, week), count in gateway_requests_by_week(engine, aliases[service]).items():
            rows[(service, week, group(person))][0] += count
        for direct in direct_requests_by_week(engine, service=service, by="user" if per == "person" else "department"):
            rows[(service, direct.week, direct.who)][1] += direct.requests
    recent = sorted({week for _, week, _ in rows})[-weeks:] if weeks > 0 else []
    return [Share(s, w, who, g, d) for (s, w, who), (g, d) in sorted(rows.items()) if w in recent]


def _directory_team(pod: Podium, person: str) -> str | None:
    found = pod.people.find(person)
    teams = [t for t in found.teams if t != "admins"] if found else []
    return teams[0] if teams else None
