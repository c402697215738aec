"""The directory of people: who is in which team (review chains name teams), and what an hour of them costs.

People are named as they sign decisions (ana@example.com) and prove it with a key (`podium keys`); the directory
adds their teams, which Cedar sees as `principal.teams`, and their loaded hourly rate, at which the ledger costs
their review minutes.
"""

from __future__ import annotations

import builtins
import json
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import sqlalchemy as sa

from podium._bounds import MAX_USD_PER_HOUR, check_name, check_number
from podium.audit import parse_actor
from podium.errors import NotFoundError, UsageError
from podium.policy import Authorizer, GovernedAction, Identity, person_entity
from podium.store import tables

p = tables.people


@dataclass(frozen=True)
class Person:
    name: str
    display_name: str
    teams: tuple[str, ...]
    usd_per_hour: float | None  # None: the default loaded rate (PODIUM_REVIEW_USD_PER_HOUR)


class People:
    """Add, change and remove people; every change is a Cedar decision (`people.change`) and is audited."""

    def __init__(self, engine: sa.Engine, authorizer: Authorizer) -> None:
        self._engine = engine
        self._authorizer = authorizer

    def add(
        self,
        name: str,
        *,
        teams: Iterable[str],
        by: Identity,
        display_name: str = "",
        usd_per_hour: float | None = None,
    ) -> Person:
        """Add `name`, or replace their entry (teams and rate are set, not merged)."""
        kind, name = parse_actor(name)  # a person's name, as decisions are signed with it
        if kind != "person":
            raise UsageError(f"{name!r} is an agent; people add people (how they sign, e.g. ana@example.com).")
        team_list = team_names(teams)
        if usd_per_hour is not None:
            check_number(usd_per_hour, "--rate (USD an hour)", low=0, high=MAX_USD_PER_HOUR)
        check_name(display_name, "--display-name")
        person = Person(name, display_name or name, tuple(team_list), usd_per_hour)
        values = {
            "display_name": person.display_name,
            "teams": json.dumps(team_list),
            "usd_per_hour": usd_per_hour,
            "updated_at": time.time(),
        }
        detail = {"teams": ", ".join(team_list), "usd_per_hour": str(usd_per_hour)}
        before = self.find(name)
        touched = {*team_list, *(before.teams if before else ())}  # a demotion touches admins too
        with self._act(by, name, touched, stays_admin="admins" in team_list, detail=detail) as act:
            if not act.conn.execute(p.update().where(p.c.name == name).values(**values)).rowcount:
                act.conn.execute(p.insert().values(name=name, **values))
        return person

    def remove(self, name: str, *, by: Identity) -> None:
        person = self.get(name)
        with self._act(by, name, person.teams, stays_admin=False) as act:
            act.action = "people.remove"
            act.conn.execute(p.delete().where(p.c.name == name))
            keys = tables.person_keys  # so that adding them again later does not revive a key they left with
            revoked = act.conn.execute(
                keys.update()
                .where(keys.c.person == name, keys.c.revoked_at.is_(None))
                .values(revoked_at=time.time(), revoked_by=by.actor)
            ).rowcount
            act.detail["keys_revoked"] = str(revoked)

    @contextmanager
    def _act(
        self,
        by: Identity,
        name: str,
        teams: Iterable[str],
        *,
        stays_admin: bool,
        detail: dict[str, str] | None = None,
    ) -> Iterator[GovernedAction]:
        """Who may change the directory: admins (the first is made by `podium init`). A change that would leave no
        admin is refused, so the directory always has someone who can appoint and issue keys; the admins are read
        in the change's own transaction, under a lock, so two admins removing each other at once cannot both."""
        entity, context = person_entity(name, teams), {"touches_admins": "admins" in teams}
        with self._authorizer.act(
            by, "people.change", entity, context, resource_name=f"person:{name}", detail=detail
        ) as act:
            if admins(act.conn) == {name} and not stays_admin:
                raise UsageError(
                    f"{name} is the last admin: the directory would be left without one, and nobody could then "
                    "change it. Make someone else an admin first (`podium people add NAME --team admins`)."
                )
            yield act

    def get(self, name: str) -> Person:
        found = self.find(name)
        if found is None:
            raise NotFoundError(f"no person {name!r} in the directory. `podium people list` shows who is.")
        return found

    def find(self, name: str) -> Person | None:
        with self._engine.connect() as conn:
            row = conn.execute(sa.select(p).where(p.c.name == name)).first()
        return _person(row) if row is not None else None

    def admins(self) -> set[str]:
        """Who is in team admins now."""
        with self._engine.connect() as conn:
            return admins(conn, lock=False)

    def list(self) -> builtins.list[Person]:
        with self._engine.connect() as conn:
            return [_person(row) for row in conn.execute(sa.select(p).order_by(p.c.name))]


def _person(row: sa.Row[tuple[object, ...]]) -> Person:
    rate = row.usd_per_hour
    return Person(str(row.name), str(row.display_name), tuple(json.loads(str(row.teams))), rate)


def admins(conn: sa.Connection, *, lock: bool = True) -> set[str]:
    """The people in team admins, read in `conn`'s transaction. With `lock`, PostgreSQL serialises the
    transactions that read them to change them, and SQLite takes its write lock first, so a check
    made on this answer ("no admin yet", "not the last admin") still holds when the change commits."""
    if lock and conn.dialect.name == "postgresql":
        conn.execute(sa.text("LOCK TABLE podium_people IN SHARE ROW EXCLUSIVE MODE"))
    elif lock:  # Python's sqlite3 begins the (IMMEDIATE, write-locked) transaction at the first write, not a read
        conn.execute(sa.text("UPDATE podium_people SET name = name WHERE 1 = 0"))
    rows = conn.execute(sa.select(p.c.name, p.c.teams).where(p.c.teams.like('%"admins"%'))).all()
    return {str(row.name) for row in rows if "admins" in json.loads(row.teams)}


def team_names(teams: Iterable[str]) -> list[str]:
    """Teams as the directory stores them: `support` (or `team:support`, once) -> `support`. A name with a `:`
    left is refused, so `team:team:admins` cannot make an admin that Cedar sees and podium does not count."""
    names = set()
    for team in teams:
        name = check_name(team, "--team").strip().removeprefix("team:")
        if not name:
            continue
        if ":" in name:
            raise UsageError(f"team {team!r}: a team's name has no ':' (give support, or team:support).")
        names.add(name)
    return sorted(names)
