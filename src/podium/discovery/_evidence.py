"""What the log readers hand on: sightings of catalogued AI services, already aggregated per person-to-be, host
and day, so that everything after the reader (people, storage, reports) works on thousands of rows, not on the
millions of lines a log holds."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

FORMATS = (
    "zeek-conn",
    "zeek-dns",
    "zeek-ssl",
    "zeek-http",
    "squid",
    "bind-query",
    "dnsmasq",
    "pihole",
    "csv",
    "cef",
)
"""Every log format `podium discover` reads (Zeek's in TSV or JSON, each plain or gzipped)."""


@dataclass(frozen=True)
class Sighting:
    """Use of one catalogued service from one client on one day, reconciled across logs.

    `requests` counts flows or proxy requests; for a host seen only in DNS answers it counts lookups (visits) and
    both byte counts are None, never 0: a lookup says nothing about what was sent.
    """

    source: str  # the client's address as the log wrote it
    user: str | None  # the user the log itself names (Squid's user field, a CSV user column), else None
    service: str  # catalogue id
    host: str  # lower case, no trailing dot
    day: str  # ISO date (UTC) of the lines
    requests: int
    bytes_up: int | None
    bytes_down: int | None
    first_seen: float  # epoch seconds
    last_seen: float


@dataclass(frozen=True)
class BadLine:
    """A line a reader could not use: where it is and why, shown literally (bounded), never interpreted."""

    path: str
    line: int  # 1-based
    reason: str
    text: str  # at most 200 characters of the line


@dataclass(frozen=True)
class LogFile:
    path: Path
    format: str  # one of FORMATS
    sha256: str  # of its content, decompressed: the same log is ingested once, gzipped or not
    lines: int  # data lines read (headers and comments not counted)
    skipped: int  # lines that could not be used
    size: int | None = None  # bytes of content, decompressed (None: not known, so never continued)
    head_sha256: str | None = None  # of its first min(size, 64 KiB) bytes: finds the logs it may grow into


@dataclass(frozen=True)
class Fingerprint:
    """What a log is known by, computed in one pass over its content before it is read. `skip_lines` are the
    lines an earlier ingest read already: this log is that one, grown (the live file read again), and only the
    lines after them are read."""

    sha256: str  # of its content, decompressed
    size: int  # bytes of content
    head_sha256: str
    skip_lines: int = 0


@dataclass(frozen=True)
class Reading:
    """Everything one `read_logs` found."""

    sightings: list[Sighting]
    files: list[LogFile]
    bad_lines: list[BadLine] = field(default_factory=list)  # the first few, for the report

    @property
    def skipped_lines(self) -> int:
        return sum(f.skipped for f in self.files)
