"""Read network logs with DuckDB and hand on what they say about catalogued AI services.

Every file is scanned once, streaming (gzipped or not), under a memory limit with a spill directory. The scan
keeps only the records that can matter, grouped: rows whose host shares its last two labels with a catalogue
rule, and the conn and ssl/http records that reconciliation needs; everything else collapses into one counting
row per file. Reconciliation and the exact catalogue match then run on those few rows, in SQL:

- a Zeek conn record is one flow, with its bytes; its host is its uid's ssl server name or http Host, else
  the latest DNS answer for its address that the same client got before it;
- ssl/http records without a conn record are flows without bytes;
- proxy, firewall and CEF records are flows with their own bytes;
- DNS lookups count as visits (no bytes) only where no flow of that client to that host that day was seen,
  so a flow seen in conn, ssl, http and dns is one request.
"""

from __future__ import annotations

import dataclasses
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb

from podium.discovery._catalogue import Catalogue, normalise_host
from podium.discovery._delimited import csv_columns, csv_line, csv_parse
from podium.discovery._evidence import BadLine, Fingerprint, LogFile, Reading, Sighting
from podium.discovery._fingerprint import fingerprint
from podium.discovery._formats import Detected, detect, is_gzipped
from podium.discovery._lines import line_parse
from podium.discovery._records import (
    MAX_LINE_BYTES,
    ROLES,
    Parse,
    checked,
    day_of,
    near_key,
    rule_key,
    sql_text,
)
from podium.discovery._zeek import zeek_parse
from podium.errors import InputDataError

BAD_LINES_PER_FILE = 5
_TEXT_LIMIT = 200
_GROUP_KEYS = {
    "lookup": ("source", "host", "day", "answers"),
    "named": ("uid", "source", "dest", "host"),
    "conn": ("uid", "source", "dest"),
    "flow": ("source", "user", "host", "day"),
}
_EVIDENCE_TABLE = """CREATE TEMP TABLE ev (
    file_id INTEGER, role VARCHAR, keep BOOLEAN, uid VARCHAR, source VARCHAR, "user" VARCHAR, dest VARCHAR,
    host VARCHAR, day DATE, answers VARCHAR[], n BIGINT, nbad BIGINT, ts_min DOUBLE, ts_max DOUBLE,
    up BIGINT, down BIGINT)"""


@dataclass(frozen=True)
class _Plan:
    file_id: int
    path: Path
    detected: Detected
    parse: Parse
    gzipped: bool
    skip: int = 0  # the first lines, read by an earlier ingest of this log before it grew


def read_logs(
    paths: Sequence[Path],
    catalogue: Catalogue,
    *,
    format: str | None = None,  # the CLI's --format
    mapping: Mapping[str, str] | None = None,
    threads: int = 1,
    memory_limit_mb: int = 256,
    progress: Callable[[int], None] | None = None,
    fingerprints: Mapping[Path, Fingerprint] | None = None,
) -> Reading:
    """Detect, read and reconcile `paths`; sightings of `catalogue`'s services, per file counts, first bad lines.

    `progress`, when given, is called after each file with the number of lines read so far; `fingerprints` are the
    files' when the caller has them already (each file is otherwise fingerprinted here, and read whole); of a
    log that continues an earlier ingest, only the lines after those it read are read.
    """
    plans = _plans(paths, format, mapping)
    files: list[LogFile] = []
    bad_lines: list[BadLine] = []
    with tempfile.TemporaryDirectory(prefix="podium-discovery-") as spill:
        connection = _engine(threads, memory_limit_mb, spill)
        try:
            _load_rules(connection, catalogue)
            read_so_far = 0
            for plan in sorted(plans, key=lambda p: (ROLES.index(p.parse.role), p.file_id)):
                _prepare(connection, plan.parse.role)
                known = (fingerprints or {}).get(plan.path) or fingerprint(plan.path)
                logfile, first_bad = _read_file(connection, dataclasses.replace(plan, skip=known.skip_lines), known)
                files.append(logfile)
                bad_lines.extend(first_bad)
                read_so_far += logfile.lines
                if progress is not None:
                    progress(read_so_far)
            sightings = _resolvable(_reconcile(connection), catalogue)
        finally:
            connection.close()
    files.sort(key=lambda f: [p.path for p in plans].index(f.path))
    return Reading(sightings=sightings, files=files, bad_lines=bad_lines)


def _plans(paths: Sequence[Path], forced: str | None, mapping: Mapping[str, str] | None) -> list[_Plan]:
    """Every file detected (and its mapping checked) before any is read, so a mistake costs nothing."""
    plans: list[_Plan] = []
    for file_id, path in enumerate(dict.fromkeys(Path(p) for p in paths)):
        detected = detect(path, forced)
        plans.append(_Plan(file_id, path, detected, _parse(detected, path, mapping), is_gzipped(path)))
    return plans


def _parse(detected: Detected, path: Path, mapping: Mapping[str, str] | None) -> Parse:
    if detected.format.startswith("zeek-"):
        return zeek_parse(detected)
    if detected.layout == "csv":
        return csv_parse(detected, mapping, str(path))
    return line_parse(detected.format, path.stat().st_mtime)


def _engine(threads: int, memory_limit_mb: int, spill: str) -> duckdb.DuckDBPyConnection:
    connection = duckdb.connect(
        ":memory:",
        config={
            "threads": max(1, threads),
            "memory_limit": f"{max(64, memory_limit_mb)}MB",
            "temp_directory": spill,
            "preserve_insertion_order": False,
            "autoinstall_known_extensions": False,
        },
    )
    connection.execute("SET TimeZone = 'UTC'")
    connection.execute("SET enable_progress_bar = false")
    connection.execute(_EVIDENCE_TABLE)
    return connection


def _load_rules(connection: duckdb.DuckDBPyConnection, catalogue: Catalogue) -> None:
    connection.execute("CREATE TEMP TABLE rules (key VARCHAR, value VARCHAR, service VARCHAR, exact BOOLEAN)")
    rows = []
    for rule in catalogue.rules():
        value = rule.value.strip().strip(".").lower()
        if value:
            rows.append((rule_key(value), value, rule.service, rule.exact))
    if rows:
        connection.executemany("INSERT INTO rules VALUES (?, ?, ?, ?)", rows)
    connection.execute("CREATE TEMP TABLE rule_keys AS SELECT DISTINCT key FROM rules")


def _prepare(connection: duckdb.DuckDBPyConnection, role: str) -> None:
    """Before the first ssl/http (then conn) file: what the earlier files say is worth keeping of it."""
    if role == "named":
        connection.execute(
            "CREATE TEMP TABLE IF NOT EXISTS answer_pairs AS SELECT DISTINCT source || ' ' || addr AS pair "
            "FROM (SELECT source, unnest(answers) AS addr FROM ev WHERE role = 'lookup' AND keep)"
        )
    if role == "conn":
        _prepare(connection, "named")
        connection.execute(
            "CREATE TEMP TABLE IF NOT EXISTS named_uids AS "
            "SELECT DISTINCT uid FROM ev WHERE role = 'named' AND keep AND uid IS NOT NULL"
        )


def _keep(connection: duckdb.DuckDBPyConnection, role: str) -> str:
    near = f"(host IS NOT NULL AND {near_key('host')} IN (SELECT key FROM rule_keys))"
    pair = "source || ' ' || dest IN (SELECT pair FROM answer_pairs)"
    if role in ("lookup", "flow"):
        return near
    has_pairs = _count(connection, "answer_pairs") > 0
    if role == "named":
        return f"({near} OR {pair})" if has_pairs else near
    conditions = [pair] if has_pairs else []
    if _count(connection, "named_uids") > 0:
        conditions.append("uid IN (SELECT uid FROM named_uids)")
    return "(" + " OR ".join(conditions) + ")" if conditions else "FALSE"


def _count(connection: duckdb.DuckDBPyConnection, table: str) -> int:
    row = connection.execute(f"SELECT count(*) FROM {table}").fetchone()
    return int(row[0]) if row else 0


def _rows(plan: _Plan, *, numbered: bool) -> str:
    """The file as rows of DuckDB's CSV reader: one raw line a row, or a delimited export's columns."""
    common = (
        f"compression={sql_text('gzip' if plan.gzipped else 'none')}, auto_detect=false, strict_mode=false, "
        f"null_padding=true, max_line_size={MAX_LINE_BYTES}, skip={plan.skip}, "
    )
    if numbered:
        common += "ignore_errors=true"
    else:
        common += f"store_rejects=true, rejects_table='rejects_{plan.file_id}', rejects_scan='scans_{plan.file_id}'"
    number = "row_number() OVER () AS rn, " if numbered else ""
    if plan.detected.layout == "csv":
        reader = (
            # a log read from its middle: its header is among the lines skipped
            f"read_csv($path, columns={csv_columns(plan.detected)}, header={str(plan.skip == 0).lower()}, "
            # parallel=false: DuckDB's parallel scanner refuses a quoted newline in a padded row (found by fuzzing)
            f"delim={sql_text(plan.detected.separator)}, quote='\"', escape='\"', parallel=false, {common})"
        )
        return f"(SELECT {number}*, {csv_line(plan.detected)} AS line, NULL AS extra FROM {reader})"
    reader = (
        "read_csv($path, columns={'line': 'VARCHAR', 'extra': 'VARCHAR'}, header=false, delim=chr(1), "
        f"quote='', escape='', {common})"
    )
    return f"(SELECT {number}line, extra FROM {reader})"


def _read_file(connection: duckdb.DuckDBPyConnection, plan: _Plan, known: Fingerprint) -> tuple[LogFile, list[BadLine]]:
    role = plan.parse.role
    keys = _GROUP_KEYS[role]
    columns = []
    for name in ("uid", "source", "user", "dest", "host", "day", "answers"):
        expr = day_of("ts") if name == "day" else f'"{name}"'
        columns.append(f"CASE WHEN keep THEN {expr} END" if name in keys else "NULL")
    query = f"""
        INSERT INTO ev
        SELECT {plan.file_id}, {sql_text(role)}, keep, {", ".join(columns)},
               count(*), count_if(reason IS NOT NULL), min(ts), max(ts), sum(up), sum(down)
        FROM (SELECT *, reason IS NULL AND {_keep(connection, role)} AS keep
              FROM ({checked(plan.parse, _rows(plan, numbered=False))}))
        GROUP BY ALL"""
    path = str(plan.path)
    try:
        connection.execute(query, {"path": path})
    except duckdb.Error as error:
        reason = str(error).splitlines()[0][:300]
        raise InputDataError(
            f"cannot read {path} to its end ({reason}); if it is gzipped, check it with `gzip -t`"
        ) from error
    lines, bad = _stats(connection, plan)
    rejected = _count(connection, f"rejects_{plan.file_id}")
    logfile = LogFile(
        plan.path, plan.detected.format, known.sha256, lines + rejected, bad + rejected, known.size, known.head_sha256
    )
    first_bad = _first_bad_lines(connection, plan) if logfile.skipped else []
    return logfile, first_bad


def _stats(connection: duckdb.DuckDBPyConnection, plan: _Plan) -> tuple[int, int]:
    row = connection.execute(
        "SELECT coalesce(sum(n), 0), coalesce(sum(nbad), 0) FROM ev WHERE file_id = ?", [plan.file_id]
    ).fetchone()
    return (int(row[0]), int(row[1])) if row else (0, 0)


def _first_bad_lines(connection: duckdb.DuckDBPyConnection, plan: _Plan) -> list[BadLine]:
    """The first few bad lines with their line numbers: the rejected ones DuckDB recorded, and the ones the
    checks refused, found by a second scan in file order that stops at the few it needs."""
    rejects = connection.execute(
        f"SELECT line, error_type, left(csv_line, {_TEXT_LIMIT}) FROM rejects_{plan.file_id} "
        f"ORDER BY line LIMIT {BAD_LINES_PER_FILE}"
    ).fetchall()
    found = [BadLine(str(plan.path), int(line), _reject_reason(kind), text or "") for line, kind, text in rejects]
    threads = connection.execute("SELECT current_setting('threads')").fetchone()
    connection.execute("SET threads = 1")  # file order: the first bad lines are the first in the file
    connection.execute("SET preserve_insertion_order = true")
    try:
        records = checked(plan.parse, _rows(plan, numbered=True), numbered=True)
        refused = connection.execute(
            f"SELECT rn, reason, left(line, {_TEXT_LIMIT}) FROM ({records}) "
            f"WHERE reason IS NOT NULL LIMIT {BAD_LINES_PER_FILE}",
            {"path": str(plan.path)},
        ).fetchall()
        if refused:
            rejected = [
                int(r[0])
                for r in connection.execute(
                    f"SELECT DISTINCT line FROM rejects_{plan.file_id} WHERE line <= ? ORDER BY line",
                    [int(refused[-1][0]) + _count(connection, f"rejects_{plan.file_id}")],
                ).fetchall()
            ]
            # the lines skipped (a CSV's header among them) or the header line are not rows
            offset = plan.skip or (1 if plan.detected.layout == "csv" else 0)
            for number, reason, text in refused:
                line = _physical_line(int(number) + offset, rejected)
                found.append(BadLine(str(plan.path), line, str(reason), text or ""))
    finally:
        connection.execute("SET threads = ?", [int(threads[0]) if threads else 1])
        connection.execute("SET preserve_insertion_order = false")
    return sorted(found, key=lambda b: b.line)[:BAD_LINES_PER_FILE]


def _physical_line(row: int, rejected: list[int]) -> int:
    """The file's line number of the `row`th row DuckDB produced, given the lines it rejected (sorted)."""
    line = row
    for skipped in rejected:
        if skipped <= line:
            line += 1
        else:
            break
    return line


def _reject_reason(kind: str) -> str:
    return {
        "INVALID ENCODING": "not valid UTF-8",
        "LINE SIZE OVER MAXIMUM": f"longer than {MAX_LINE_BYTES} bytes",
    }.get(kind, kind.lower())


def _resolvable(sightings: list[Sighting], catalogue: Catalogue) -> list[Sighting]:
    """The sightings whose host a resolver would look up, matched again as `Catalogue.match` does: the SQL join
    only compares suffixes, so `x<svg>.openai.com` or a 100-character label would otherwise count (and be shown)."""
    kept = []
    for sighting in sightings:
        name, service = normalise_host(sighting.host), catalogue.match(sighting.host)
        if name is not None and service is not None:
            kept.append(dataclasses.replace(sighting, host=name, service=service.id))
    return kept


def _reconcile(connection: duckdb.DuckDBPyConnection) -> list[Sighting]:
    day = day_of("ts_min")
    query = f"""
        WITH
        lookups AS (SELECT * FROM ev WHERE role = 'lookup' AND keep),
        named AS (
            SELECT uid, arg_min(host, ts_min) FILTER (WHERE host IS NOT NULL) AS host, min(ts_min) AS ts,
                   arg_min(source, ts_min) AS source
            FROM ev WHERE role = 'named' AND keep AND uid IS NOT NULL GROUP BY uid),
        conns AS (
            SELECT uid, source, dest, min(ts_min) AS ts_min, max(ts_max) AS ts_max, sum(n) AS n,
                   sum(up) AS up, sum(down) AS down
            FROM ev WHERE role = 'conn' AND keep GROUP BY uid, source, dest),
        answers AS (SELECT source, unnest(answers) AS addr, ts_min AS ts, host FROM lookups),
        conns_named AS (SELECT c.*, nm.host AS named_host FROM conns c LEFT JOIN named nm ON nm.uid = c.uid),
        from_conns AS (
            SELECT c.source, NULL AS "user", coalesce(c.named_host, a.host) AS host, c.ts_min, c.ts_max, c.n,
                   c.up, c.down
            FROM conns_named c ASOF LEFT JOIN answers a
              ON a.source = c.source AND a.addr = c.dest AND c.ts_min >= a.ts),
        named_only AS (
            SELECT source, NULL AS "user", host, ts AS ts_min, ts AS ts_max, 1 AS n, NULL AS up, NULL AS down
            FROM named WHERE host IS NOT NULL AND NOT EXISTS (SELECT 1 FROM conns c WHERE c.uid = named.uid)),
        flows AS (SELECT source, "user", host, ts_min, ts_max, n, up, down FROM ev WHERE role = 'flow' AND keep),
        seen AS (SELECT * FROM from_conns UNION ALL SELECT * FROM named_only UNION ALL SELECT * FROM flows),
        visits AS (
            SELECT l.source, NULL AS "user", l.host, l.ts_min, l.ts_max, l.n, NULL AS up, NULL AS down
            FROM lookups l
            WHERE NOT EXISTS (
                SELECT 1 FROM seen s
                WHERE s.source = l.source AND s.host = l.host AND {day_of("s.ts_min")} = l.day)),
        evidence AS (
            SELECT *, {day} AS day FROM (SELECT * FROM seen UNION ALL SELECT * FROM visits) WHERE host IS NOT NULL),
        grouped AS (
            SELECT source, "user", host, day, sum(n) AS requests, sum(up) AS up, sum(down) AS down,
                   min(ts_min) AS first_seen, max(ts_max) AS last_seen
            FROM evidence GROUP BY source, "user", host, day),
        matched AS (
            SELECT g.*, r.service, row_number() OVER (
                PARTITION BY g.source, g."user", g.host, g.day ORDER BY r.exact DESC, length(r.value) DESC) AS rank
            FROM grouped g JOIN rules r
              ON r.key = {near_key("g.host")}
             AND (g.host = r.value OR (NOT r.exact AND ends_with(g.host, '.' || r.value))))
        SELECT source, "user", service, host, CAST(day AS VARCHAR), requests, up, down, first_seen, last_seen
        FROM matched WHERE rank = 1
        ORDER BY day, source, "user" NULLS FIRST, service, host"""
    return [
        Sighting(
            source=str(source),
            user=None if user is None else str(user),
            service=str(service),
            host=str(host),
            day=str(day_text),
            requests=int(requests),
            bytes_up=None if up is None else int(up),
            bytes_down=None if down is None else int(down),
            first_seen=float(first),
            last_seen=float(last),
        )
        for source, user, service, host, day_text, requests, up, down, first, last in connection.execute(
            query
        ).fetchall()
    ]
