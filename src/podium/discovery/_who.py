"""Who used a service: a log's client address becomes a person (or a pseudonym) and a department.

In order, the first that answers: the user the log itself names (Squid's user field, a CSV export's user column);
the `--users` address book (DHCP leases, an asset inventory), whose intervals say who held an address when; else the
address itself. A person the people directory knows gets their team as the department when nothing else gives one.
`--pseudonymise` replaces every user by a keyed hash before anything is stored or printed; departments stay
readable, so a report can still say which teams use what without saying who.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import hmac
import ipaddress
import itertools
import os
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from podium.discovery._evidence import Sighting
from podium.errors import ConfigurationError, InputDataError

MAX_FIELD_CHARS = 200  # a user, address or department from a log or a CSV: a name, not a document
USERS_COLUMNS = ("address", "person", "department", "valid_from", "valid_to")
_KEY_FILE = "discovery-pseudonym.key"


def clean(value: str) -> str:
    """Text from a log as a database stores and a reader sees it: no NUL or lone surrogate (shown as escapes),
    at most MAX_FIELD_CHARS characters."""
    value = value.replace("\x00", "\\x00")
    value = value.encode("utf-8", "backslashreplace").decode("utf-8") if not value.isascii() else value
    return value[:MAX_FIELD_CHARS]


def normal_address(address: str) -> str:
    """One spelling per address, so `10.0.0.7` in a log and in the CSV meet (IPv6 compressed, lower case)."""
    text = address.strip().lower()
    try:
        return ipaddress.ip_address(text).compressed
    except ValueError:
        return text


@dataclass(frozen=True)
class Lease:
    """Who held `address` from `valid_from` (inclusive) to `valid_to` (exclusive), epoch seconds; None: open."""

    address: str
    person: str
    department: str | None
    valid_from: float | None
    valid_to: float | None
    line: int  # in the CSV, for errors

    def holds(self, at: float) -> bool:
        return (self.valid_from is None or self.valid_from <= at) and (self.valid_to is None or at < self.valid_to)


class AddressBook:
    """The `--users` CSV: address -> leases, checked so that no address has two holders at once."""

    def __init__(self, leases: Iterable[Lease], source: str = "the address book") -> None:
        self._leases: dict[str, list[Lease]] = {}
        for lease in leases:
            self._leases.setdefault(lease.address, []).append(lease)
        for address, held in self._leases.items():
            held.sort(key=lambda lease: -float("inf") if lease.valid_from is None else lease.valid_from)
            for before, after in itertools.pairwise(held):
                if before.valid_to is None or (after.valid_from is None or after.valid_from < before.valid_to):
                    raise InputDataError(
                        f"{source}: lines {before.line} and {after.line} give {address} to {before.person!r} and "
                        f"{after.person!r} at overlapping times; an address has one holder at a time (valid_to is "
                        "exclusive): fix the dates."
                    )

    def holder(self, address: str, at: float) -> Lease | None:
        return next((lease for lease in self._leases.get(normal_address(address), ()) if lease.holds(at)), None)

    @classmethod
    def read(cls, path: Path) -> AddressBook:
        """Read a CSV with the header address,person,department,valid_from,valid_to (dates ISO 8601 or empty)."""
        try:
            with path.open(encoding="utf-8", newline="") as file:
                rows = list(csv.reader(file))
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else "it is not UTF-8 text"
            raise InputDataError(f"cannot read --users {path}: {reason}. Give a UTF-8 CSV file.") from None
        except csv.Error as exc:
            raise InputDataError(f"--users {path} is not a CSV file ({exc}); fix it and run again.") from None
        header = [name.strip().lower() for name in rows[0]] if rows else []
        if tuple(header[: len(USERS_COLUMNS)]) != USERS_COLUMNS:
            raise InputDataError(
                f"--users {path}: the first line must be the header {','.join(USERS_COLUMNS)}, not "
                f"{','.join(header)[:120]!r}."
            )
        leases = []
        for number, row in enumerate(rows[1:], start=2):
            if not any(cell.strip() for cell in row):
                continue
            if len(row) < 2 or not row[0].strip() or not row[1].strip():
                raise InputDataError(f"--users {path}:{number}: every row needs an address and a person.")
            cells = [*row, "", "", ""][:5]
            leases.append(
                Lease(
                    address=normal_address(clean(cells[0])),
                    person=clean(cells[1].strip()),
                    department=clean(cells[2].strip()) or None,
                    valid_from=_moment(cells[3], f"--users {path}:{number}: valid_from"),
                    valid_to=_moment(cells[4], f"--users {path}:{number}: valid_to"),
                    line=number,
                )
            )
        return cls(leases, source=f"--users {path}")


def _moment(text: str, what: str) -> float | None:
    """An ISO date (midnight UTC) or date-time (UTC unless it says otherwise) as epoch seconds; empty: None."""
    text = text.strip()
    if not text:
        return None
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise InputDataError(f"{what} {text[:40]!r} is not an ISO 8601 date (2026-03-01 or 2026-03-01T08:00)") from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)).timestamp()


class Pseudonyms:
    """A keyed hash (HMAC-SHA256) of a user: the same user gives the same pseudonym in every run with the same key,
    and nobody without the key can test a guess of who it is."""

    def __init__(self, key: bytes) -> None:
        if len(key) < 16:
            raise ConfigurationError("the pseudonym key is shorter than 16 bytes: delete it to have a new one made.")
        self._key = key

    def __call__(self, user: str) -> str:
        return "u-" + hmac.new(self._key, user.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()[:20]

    @classmethod
    def of_home(cls, home: Path) -> Pseudonyms:
        """The home's key (`home`/discovery-pseudonym.key), made on first use, readable by its owner only."""
        path = home / _KEY_FILE
        try:
            return cls(bytes.fromhex(path.read_text(encoding="ascii").strip()))
        except FileNotFoundError:
            pass
        except (OSError, ValueError, UnicodeDecodeError):
            raise ConfigurationError(
                f"cannot read the pseudonym key {path}: restore it from a backup (pseudonyms change without it), or "
                "delete it to start new ones."
            ) from None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another run made it meanwhile: use theirs
            return cls.of_home(home)
        except OSError as exc:
            raise ConfigurationError(f"cannot store the pseudonym key in {path.parent}: {exc.strerror}.") from None
        key = secrets.token_bytes(32)
        with os.fdopen(fd, "w", encoding="ascii") as out:
            out.write(key.hex() + "\n")
        return cls(key)


@dataclass(frozen=True)
class Attributed:
    """A sighting with its user (person, pseudonym or address) and department resolved."""

    user: str
    department: str | None
    sighting: Sighting


class Attribution:
    """Resolves sightings to people. `teams_of` is the people directory (a name -> its teams, or None)."""

    def __init__(
        self,
        *,
        addresses: AddressBook | None = None,
        teams_of: Callable[[str], tuple[str, ...] | None] = lambda name: None,
        pseudonyms: Pseudonyms | None = None,
    ) -> None:
        self._addresses = addresses
        self._teams_of = teams_of
        self._pseudonyms = pseudonyms
        self._teams: dict[str, str | None] = {}

    def __call__(self, sighting: Sighting) -> Attributed:
        lease = self._addresses.holder(sighting.source, sighting.first_seen) if self._addresses else None
        if sighting.user:
            user = clean(sighting.user.strip())
            department = lease.department if lease is not None and lease.person == user else None
        elif lease is not None:
            user, department = lease.person, lease.department
        else:
            user, department = normal_address(clean(sighting.source)), None
        if department is None:
            department = self._team(user)
        if self._pseudonyms is not None:
            user = self._pseudonyms(user)
        return Attributed(user, department, sighting)

    def _team(self, name: str) -> str | None:
        """The person's team, the one that is not `admins` if they have another (admins is a role, not a
        department), remembered: one directory look-up per person a run."""
        if name not in self._teams:
            teams = self._teams_of(name) or ()
            departments = [team for team in teams if team != "admins"] or list(teams)
            self._teams[name] = departments[0] if departments else None
        return self._teams[name]
