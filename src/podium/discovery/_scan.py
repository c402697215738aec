"""One discovery run: find which logs are new (by the sha256 of their content), read them (of a log that grew since,
only its new lines), say who each sighting is, store it all in one transaction, and report on everything stored.
The CLI's `podium discover LOG...` is this, shown."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import sqlalchemy as sa

from podium.discovery._catalogue import Catalogue
from podium.discovery._evidence import Fingerprint, LogFile, Reading
from podium.discovery._fingerprint import fingerprint, may_continue, size_hint
from podium.discovery._formats import read_head
from podium.discovery._read import read_logs
from podium.discovery._report import FileOutcome, Report, build_report
from podium.discovery._store import continuable, day_uses, ingested, latest_run, record_run
from podium.discovery._who import AddressBook, Attribution, Pseudonyms
from podium.errors import InputDataError
from podium.policy import scope_entity

if TYPE_CHECKING:
    from podium._runtime import Podium
    from podium.policy import Identity

SCANNED = "discovery"  # the Scope a `discovery.scan` acts on: the organisation's findings


class LogReader(Protocol):
    """What reads the logs: `read_logs` (the readers in this package), or a stand-in in tests."""

    def __call__(
        self,
        paths: Sequence[Path],
        catalogue: Catalogue,
        *,
        format: str | None = None,
        mapping: Mapping[str, str] | None = None,
        fingerprints: Mapping[Path, Fingerprint] | None = None,
    ) -> Reading: ...


def fingerprints(engine: sa.Engine, paths: Sequence[Path], done: Callable[[int], None]) -> dict[Path, Fingerprint]:
    """Each log's fingerprint (`done` hears how many so far). A log that starts with the whole of one ingested
    before, or of a shorter one given with it (fingerprinted first), continues it: only its new lines are read."""
    found: dict[Path, Fingerprint] = {}
    for path in sorted(dict.fromkeys(paths), key=size_hint):
        head = read_head(path)
        given = [LogFile(p, "", f.sha256, 0, 0, size=f.size, head_sha256=f.head_sha256) for p, f in found.items()]
        found[path] = fingerprint(path, continuable(engine, head) + may_continue(head, given))
        done(len(found))
    return {path: found[path] for path in paths}


def attribution(pod: Podium, *, users: Path | None = None, pseudonymise: bool = False) -> Attribution:
    """Who sightings are, as this home knows: the `users` address book, its people directory, its pseudonym key."""

    def teams_of(name: str) -> tuple[str, ...] | None:
        person = pod.people.find(name)
        return None if person is None else person.teams

    return Attribution(
        addresses=AddressBook.read(users) if users is not None else None,
        teams_of=teams_of,
        pseudonyms=Pseudonyms.of_home(pod.settings.home) if pseudonymise else None,
    )


def stored_report(pod: Podium, catalogue: Catalogue | None = None) -> Report:
    """The report on everything stored, without reading anything (for the board report and the console)."""
    catalogue = catalogue or Catalogue.from_settings(pod.settings)
    return build_report(pod.engine, catalogue, run_id=latest_run(pod.engine))


def discover(
    pod: Podium,
    paths: Sequence[Path],
    *,
    by: Identity,
    read: LogReader | None = None,
    catalogue: Catalogue | None = None,
    format: str | None = None,
    mapping: Mapping[str, str] | None = None,
    users: Path | None = None,
    pseudonymise: bool = False,
    progress: Callable[[int, int], None] = lambda done, total: None,
) -> Report:
    """Read the logs at `paths` that were not ingested before (the same content counts once, whatever its name and
    whether it is gzipped),
    store what they show, and report on everything stored. `read` reads them (default: `read_logs`); `progress`
    hears (steps done, steps in all) as each file is fingerprinted and then as each new one is read. Storing
    who used what is `by`'s action `discovery.scan` (admins, by default): refused before anything is read,
    audited with the run."""
    pod.agents.authorizer.check(by, "discovery.scan", scope_entity(SCANNED))  # a refusal is audited
    catalogue = catalogue or Catalogue.from_settings(pod.settings)
    who = attribution(pod, users=users, pseudonymise=pseudonymise)  # a bad --users file stops us before reading
    for path in paths:
        if not path.is_file():
            problem = "it is a folder" if path.is_dir() else "there is no such file"
            raise InputDataError(f"cannot read the log {path}: {problem}. Give the paths of log files.")
    prints = fingerprints(pod.engine, paths, lambda done: progress(done, 2 * len(paths)))
    digests = {path: known.sha256 for path, known in prints.items()}
    known = ingested(pod.engine, digests.values())
    fresh: dict[str, Path] = {}
    for path, digest in digests.items():
        if digest not in known:
            fresh.setdefault(digest, path)  # the same content under two names (or gzipped): read once
    steps = len(digests) + len(fresh)
    if not fresh:
        reading = Reading([], [])
    elif read is None:
        counted = iter(range(len(digests) + 1, steps + 1))
        told = lambda lines: progress(next(counted, steps), steps)  # noqa: E731 - read_logs calls it after each file
        reading = read_logs(
            list(fresh.values()), catalogue, format=format, mapping=mapping, progress=told, fingerprints=prints
        )
    else:
        reading = read(list(fresh.values()), catalogue, format=format, mapping=mapping, fingerprints=prints)
    progress(steps, steps)
    already = [known[digest] for digest in digests.values() if digest in known]
    return ingest(pod, reading, by=by, catalogue=catalogue, who=who, already=already)


def ingest(
    pod: Podium,
    reading: Reading,
    *,
    by: Identity,
    catalogue: Catalogue,
    who: Attribution | None = None,
    already: Sequence[LogFile] = (),
) -> Report:
    """Store one reading as one run (all or nothing) and report on everything stored. `already` are files given
    again that an earlier run ingested: listed in the report, not counted again. The run and its audit entry (the
    files' digests, never their contents) are one transaction."""
    who = who or attribution(pod)
    run_id, at = uuid.uuid4().hex, time.time()
    uses = day_uses(who(sighting) for sighting in reading.sightings)
    detail = {
        "run": run_id,
        "files": json.dumps({str(f.path): f.sha256 for f in reading.files}, sort_keys=True),
        "sightings": str(len(uses)),
    }
    with pod.agents.authorizer.act(by, "discovery.scan", scope_entity(SCANNED), detail=detail) as act:
        record_run(pod.engine, run_id, at, reading.files, uses, reading.skipped_lines, within=act.conn)
    files = [_outcome(f, already_ingested=False) for f in reading.files]
    files += [_outcome(f, already_ingested=True) for f in dict.fromkeys(already)]
    return build_report(
        pod.engine,
        catalogue,
        run_id=run_id,
        files=files,
        skipped_lines=reading.skipped_lines,
        bad_lines=reading.bad_lines,
    )


def _outcome(file: LogFile, *, already_ingested: bool) -> FileOutcome:
    return FileOutcome(str(file.path), file.format, file.sha256, file.lines, file.skipped, already_ingested)
