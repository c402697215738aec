"""Which log format a file holds, told from its first lines (decompressed first when it starts with gzip's magic).

Detection reads at most `HEAD_BYTES` of the file and decides by the majority of its first data lines, so one
garbled line at the top does not hide a good log; a file that looks like nothing known is refused with the list
of formats and the `--format` option, never guessed at.
"""

from __future__ import annotations

import gzip
import json
import re
import zlib
from dataclasses import dataclass
from pathlib import Path

from podium.discovery._evidence import FORMATS
from podium.errors import InputDataError, UsageError

HEAD_BYTES = 64 * 1024  # what detection reads, and the head a log's fingerprint keeps a digest of
_SNIFF_LINES = 50
_GZIP_MAGIC = b"\x1f\x8b"
_ZEEK_PATHS = {"conn": "zeek-conn", "dns": "zeek-dns", "ssl": "zeek-ssl", "http": "zeek-http"}
_CSV_DELIMITERS = (",", "\t", ";", "|")
PIHOLE_FTL_COLUMNS = {"time": "timestamp", "host": "domain", "source": "client"}
"""The columns of Pi-hole's query database (pihole-FTL.db's `queries`) that an export with a header carries."""
_ZEEK_JSON_KEYS = (  # a Zeek JSON log is told by the keys its records carry: any one of these sets
    ("zeek-dns", (("id.orig_h", "query"),)),
    ("zeek-ssl", (("server_name",), ("id.orig_h", "ssl_history"))),
    ("zeek-http", (("host", "method"),)),
    ("zeek-conn", (("orig_bytes",), ("resp_bytes",), ("conn_state",))),
)

SYSLOG_PREFIX = r"(?:[A-Z][a-z]{2} +\d{1,2} \d{2}:\d{2}:\d{2} )?(?:\S+ )?"
BIND_TIMESTAMP = r"\d{2}-[A-Z][a-z]{2}-\d{4} \d{2}:\d{2}:\d{2}(?:\.\d+)?"
"""The shapes the line readers parse, shared with their SQL so detection and reading agree."""

_LINE_SHAPES: dict[str, re.Pattern[str]] = {
    "squid": re.compile(r"^\s*\d+(?:\.\d+)?\s+-?\d+\s+\S+\s+[A-Z_]+/\d{3}\s+\d+\s+\S+\s+\S+\s+\S+\s+\S+"),
    "bind-query": re.compile(r"client (?:@0x[0-9a-fA-F]+ )?\S+#\d+ (?:\([^)]*\))?: (?:view \S+: )?query: \S+ \S+ \S+"),
    "dnsmasq": re.compile(r"\bquery\[[A-Za-z0-9]+\] \S+ from \S+"),
    "cef": re.compile(r"CEF:\d+\|"),
}


@dataclass(frozen=True)
class Detected:
    """What a reader needs to know about one file before DuckDB reads it."""

    format: str  # one of FORMATS
    layout: str  # "zeek-tsv", "zeek-json", "lines" (one record a line) or "csv" (a header, then delimited rows)
    fields: tuple[str, ...] = ()  # Zeek TSV's #fields, or the CSV header
    separator: str = "\t"  # Zeek TSV's #separator, or the CSV delimiter
    set_separator: str = ","  # Zeek TSV's #set_separator (between a set's or vector's items)


def is_gzipped(path: Path) -> bool:
    """Whether the file starts with gzip's magic: how every pass over it (fingerprint, sniff, read) opens it."""
    return read_head_bytes(path, len(_GZIP_MAGIC)) == _GZIP_MAGIC


def read_head_bytes(path: Path, size: int = HEAD_BYTES) -> bytes:
    """The file's first bytes as stored (compressed or not)."""
    try:
        with path.open("rb") as raw:
            return raw.read(size)
    except OSError as error:
        raise InputDataError(f"cannot read {path}: {error.strerror}; check the path and its permissions") from error


def read_head(path: Path) -> bytes:
    """The first bytes of the file's content, decompressed when it is gzipped (a truncated stream is fine)."""
    start = read_head_bytes(path)
    if not start.startswith(_GZIP_MAGIC):
        return start
    try:
        with gzip.open(path, "rb") as unpacked:
            return unpacked.read(HEAD_BYTES)
    except (OSError, EOFError, zlib.error):
        pass  # a truncated stream: what decompresses of its start is enough to tell the format
    try:
        return zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(start, HEAD_BYTES)
    except zlib.error as error:
        raise InputDataError(
            f"{path} starts like a gzip file but does not decompress ({error}); check it with gzip -t"
        ) from error


def detect(path: Path, forced: str | None = None) -> Detected:
    """The format of `path`, or a UsageError naming the formats podium reads and how to force one."""
    if forced is not None and forced not in FORMATS:
        raise UsageError(f"unknown log format {forced!r}: use one of {', '.join(FORMATS)}")
    head = read_head(path)
    lines = head.decode("utf-8", errors="replace").splitlines()
    if len(head) >= HEAD_BYTES:
        lines = lines[:-1]  # cut short by the read
    found = _zeek_tsv(lines, forced) or _by_content(lines, path, forced)
    if found is None and not any(line.strip() for line in lines):
        raise InputDataError(f"{path} holds no log lines; leave it out, or pass --format to read it anyway")
    if found is None:
        raise UsageError(
            f"cannot tell the log format of {path}: podium reads {', '.join(FORMATS)}; "
            "pass --format FORMAT to say which it is"
        )
    return found


def _zeek_tsv(lines: list[str], forced: str | None) -> Detected | None:
    header = {line.split(None, 1)[0]: line for line in lines if line.startswith("#") and line.strip()}
    if "#fields" not in header or "#separator" not in header:
        return None
    separator = _unescape(header["#separator"].split(None, 1)[-1].strip()) or "\t"
    fields = tuple(header["#fields"].split(separator)[1:])
    log_path = header.get("#path", "").split(separator)[-1].strip()
    fmt = forced or _ZEEK_PATHS.get(log_path)
    if fmt is None or not fmt.startswith("zeek-"):
        raise UsageError(
            f"this is a Zeek {log_path!r} log; podium reads Zeek conn, dns, ssl and http logs "
            "(pass --format zeek-conn|zeek-dns|zeek-ssl|zeek-http to read it as one of those)"
        )
    set_separator = _unescape(header.get("#set_separator", "#set_separator\t,").split(separator, 1)[-1]) or ","
    return Detected(fmt, "zeek-tsv", fields, separator, set_separator)


def _by_content(lines: list[str], path: Path, forced: str | None) -> Detected | None:
    data = [line for line in lines if line.strip()][:_SNIFF_LINES]
    if not data:
        return Detected(forced, "lines") if forced and not forced.startswith("zeek-") else None
    if (forced in (None, "csv", "pihole") and _looks_like_csv_header(data[0])) or forced == "csv":
        return _csv(data[0], forced)
    votes: dict[str, int] = {}
    for line in data:
        kind = _zeek_json_kind(line) if line.lstrip().startswith("{") else _line_shape(line)
        if kind is not None:
            votes[kind] = votes.get(kind, 0) + 1
    best = forced or max(votes, key=votes.__getitem__, default=None)
    if best == "dnsmasq" and "pihole" in path.name.lower():
        best = "pihole"
    return None if best is None else Detected(best, "zeek-json" if best.startswith("zeek-") else "lines")


def _zeek_json_kind(line: str) -> str | None:
    try:
        record = json.loads(line)
    except ValueError:
        return None
    if not isinstance(record, dict):
        return None
    keys = record.keys()
    return next((kind for kind, telling in _ZEEK_JSON_KEYS if any(set(s) <= keys for s in telling)), None)


def _line_shape(line: str) -> str | None:
    return next((name for name, shape in _LINE_SHAPES.items() if shape.search(line)), None)


def _looks_like_csv_header(line: str) -> bool:
    if _line_shape(line) is not None or line.lstrip().startswith(("{", "#")):
        return False
    delimiter = _csv_delimiter(line)
    names = [name.strip().strip('"') for name in line.split(delimiter)]
    return len(names) >= 2 and all(re.fullmatch(r"[A-Za-z_][\w .\-/()]{0,63}", name) for name in names)


def _csv_delimiter(line: str) -> str:
    return max(_CSV_DELIMITERS, key=line.count)


def _csv(header_line: str, forced: str | None) -> Detected:
    delimiter = _csv_delimiter(header_line)
    names = tuple(name.strip().strip('"') for name in header_line.split(delimiter))
    pihole = forced in (None, "pihole") and set(PIHOLE_FTL_COLUMNS.values()) <= set(names)
    return Detected("pihole" if pihole else forced or "csv", "csv", names, delimiter)


def _unescape(text: str) -> str:
    return re.sub(r"\\x([0-9a-fA-F]{2})", lambda m: chr(int(m.group(1), 16)), text)
