"""The one record shape every log format is mapped to inside DuckDB, and the SQL that checks it.

Each format contributes a `Parse`: SQL expressions over one raw line (or one CSV row) that give the record's
time, client, host, connection id and byte counts as text. The shared checks here turn that text into values
and decide, for every line, either a reason it is bad or nothing; so a masked Zeek timestamp, a negative byte
count or a control character is judged the same way in every format.
"""

from __future__ import annotations

from dataclasses import dataclass, field

MAX_LINE_BYTES = 1024 * 1024
"""Longer lines are bad lines (DuckDB rejects them without holding them): no log line is a megabyte long."""

MAX_BYTES = 10**15  # one record claiming more than a petabyte is corrupt, not traffic
LATEST_EPOCH = 253402300799  # 9999-12-31T23:59:59Z

ROLES = ("lookup", "named", "conn", "flow")
"""How a format's records take part in reconciliation: a DNS `lookup` (host, maybe answers), a `named` flow
(Zeek ssl/http: host by connection uid), a `conn` (bytes by uid, host found elsewhere), a self-contained `flow`
(proxy, firewall, CEF: host and bytes on the line). Files are read in this order, each filtered by the last."""


@dataclass(frozen=True)
class Parse:
    """How one format's rows become records: `fields` are SQL text over the row (missing ones are NULL)."""

    role: str
    prelude: str  # extra columns computed once per row (a split or a regex match), e.g. "string_split(line, ...) AS f"
    fields: dict[str, str]  # ts (DOUBLE), source, user, dest, uid, host, up, down (VARCHAR), answers (VARCHAR[])
    checks: list[tuple[str, str]] = field(default_factory=list)  # (SQL condition that makes a line bad, reason)
    where: str = "line IS NOT NULL AND trim(line) <> ''"  # rows that are data lines at all


def sql_text(value: str) -> str:
    """`value` as a SQL string literal."""
    return "'" + value.replace("'", "''") + "'"


def unset(expr: str) -> str:
    """NULL for Zeek's and the proxies' unset markers (values arrive trimmed: split on tabs, matched by \\S+)."""
    return f"CASE WHEN {expr} IN ('-', '', '(empty)') THEN NULL ELSE {expr} END"


def epoch(expr: str) -> str:
    """Seconds since the epoch from a number or an ISO 8601 time (UTC when it names no zone), else NULL."""
    return f"coalesce(TRY_CAST({expr} AS DOUBLE), epoch(TRY_CAST({expr} AS TIMESTAMPTZ)))"


def strptime_epoch(expr: str, pattern: str) -> str:
    return f"epoch(try_strptime({expr}, {sql_text(pattern)}))"


def count_of(expr: str) -> str:
    return f"TRY_CAST(TRY_CAST({expr} AS UBIGINT) AS BIGINT)"


def near_key(expr: str) -> str:
    """The host's last two labels: the key the catalogue's rules are bucketed by (see `rule_key`)."""
    return f"regexp_extract({expr}, '(?:^|\\.)([^.]*\\.?[^.]*)$', 1)"


def rule_key(value: str) -> str:
    """The same key in Python, for the rules table."""
    return ".".join(value.split(".")[-2:])


def host_of(expr: str) -> str:
    """Lower case, no trailing dot, no port; NULL when unset or longer than a DNS name can be."""
    cleaned = f"rtrim(lower({unset(expr)}), '.')"
    return f"CASE WHEN length({cleaned}) BETWEEN 1 AND 253 THEN {cleaned} END"


def day_of(ts: str) -> str:
    return f"CAST(make_timestamp(CAST({ts} * 1000000 AS BIGINT)) AS DATE)"


def checked(parse: Parse, rows: str, *, numbered: bool = False) -> str:
    """SELECT of records (ts, source, user, dest, uid, host, up, down, answers, line, reason) from `rows`,
    with `rows`' row number `rn` first when `numbered`."""
    f = {name: parse.fields.get(name, "NULL") for name in ("ts", "source", "user", "dest", "uid", "host")}
    up, down = parse.fields.get("up", "NULL"), parse.fields.get("down", "NULL")
    answers = parse.fields.get("answers", "CAST(NULL AS VARCHAR[])")
    values = f"""
        SELECT line, extra, {f["ts"]} AS ts, {unset(f["source"])} AS source, {unset(f["user"])} AS "user",
               {unset(f["dest"])} AS dest, {unset(f["uid"])} AS uid, {host_of(f["host"])} AS host,
               {unset(up)} AS up_text, {unset(down)} AS down_text, {answers} AS answers, * EXCLUDE (line, extra)
        FROM (SELECT *, {parse.prelude} FROM {rows} WHERE {parse.where})"""
    typed = f"""
        SELECT *, {count_of("up_text")} AS up, {count_of("down_text")} AS down FROM ({values})"""
    reasons = [*parse.checks, *_common_checks()]
    cases = " ".join(f"WHEN {condition} THEN {sql_text(reason)}" for condition, reason in reasons)
    return f"""
        SELECT {"rn, " if numbered else ""}ts, source, "user", dest, uid, host, up, down, answers, line,
               CASE {cases} END AS reason
        FROM ({typed})"""


def _common_checks() -> list[tuple[str, str]]:
    return [
        ("extra IS NOT NULL", "a control character (\\x01) inside the line"),
        (f"ts IS NULL OR NOT (ts BETWEEN 0 AND {LATEST_EPOCH})", "the time is not a valid timestamp"),
        ("source IS NULL AND (host IS NOT NULL OR uid IS NOT NULL)", "no client address"),
        (f"up_text IS NOT NULL AND (up IS NULL OR up >= {MAX_BYTES})", "bytes sent is not a plausible count"),
        (f"down_text IS NOT NULL AND (down IS NULL OR down >= {MAX_BYTES})", "bytes received is not a plausible count"),
    ]
