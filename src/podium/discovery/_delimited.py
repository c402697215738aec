"""CSV and TSV exports of other proxies and firewalls, read through a column mapping (`--map host=dst,...`).

The mapping names which header column holds each thing podium needs; the time may be epoch seconds, epoch
milliseconds or ISO 8601, the host a bare host, `host:port` or a URL.
"""

from __future__ import annotations

from collections.abc import Mapping

from podium.discovery._formats import PIHOLE_FTL_COLUMNS, Detected
from podium.discovery._lines import url_host
from podium.discovery._records import Parse, epoch, sql_text
from podium.errors import UsageError

MAPPABLE = ("host", "source", "time", "user", "bytes_up", "bytes_down")
REQUIRED = ("host", "source", "time")
_EXAMPLE = "--map host=dst,source=src,time=ts,user=uid,bytes_up=sent,bytes_down=received"


def csv_parse(detected: Detected, mapping: Mapping[str, str] | None, path: str) -> Parse:
    """The Parse of a delimited export, or a UsageError that shows its header and how to map it. A Pi-hole
    query export needs no mapping, and its rows are DNS lookups rather than flows."""
    if detected.format == "pihole":
        mapping = mapping or PIHOLE_FTL_COLUMNS
    header = ", ".join(detected.fields)
    if not mapping:
        raise UsageError(
            f"{path} is a CSV export with the columns {header}; say which column is which, e.g. {_EXAMPLE}"
        )
    unknown = sorted(set(mapping) - set(MAPPABLE))
    if unknown:
        raise UsageError(f"--map names {', '.join(unknown)}, which podium does not use; map {', '.join(MAPPABLE)}")
    missing = [key for key in REQUIRED if key not in mapping]
    if missing:
        raise UsageError(f"--map must name the {', '.join(missing)} column of {path} (its columns: {header})")
    absent = sorted({column for column in mapping.values() if column not in detected.fields})
    if absent:
        raise UsageError(f"{path} has no column {', '.join(absent)}; its columns are {header}")

    def column(key: str) -> str:
        return f"trim({_quoted(mapping[key])})" if key in mapping else "NULL"

    when = column("time")
    number = f"TRY_CAST({when} AS DOUBLE)"
    return Parse(
        role="lookup" if detected.format == "pihole" else "flow",
        prelude="NULL AS r",
        fields={
            "ts": f"CASE WHEN {number} >= 1e11 THEN {number} / 1000 ELSE {epoch(when)} END",  # 1e11: milliseconds
            "source": column("source"),
            "user": column("user"),
            "host": url_host(column("host")),
            "up": column("bytes_up"),
            "down": column("bytes_down"),
        },
    )


def csv_columns(detected: Detected) -> str:
    """DuckDB's `columns=` struct for the export: every column read as text."""
    return "{" + ", ".join(f"{sql_text(name)}: 'VARCHAR'" for name in detected.fields) + "}"


def csv_line(detected: Detected) -> str:
    """The row put back together, to show a bad row as the file had it (near enough: quotes are gone)."""
    joined = ", ".join(_quoted(name) for name in detected.fields)
    return f"concat_ws({sql_text(detected.separator)}, {joined})"


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'
