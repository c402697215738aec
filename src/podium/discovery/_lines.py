"""One-record-a-line logs read with one regular expression each: Squid's native access.log, BIND's query log,
dnsmasq's (and Pi-hole's pihole.log, the same format) query lines, and CEF events.

A line that carries no time of its own (BIND or CEF without one, syslog's year-less stamp) takes it from the
file: syslog's month and day with the file's year, or else the file's modification time.
"""

from __future__ import annotations

import time

from podium.discovery._records import Parse, epoch, sql_text

_SYSLOG_TS = r"([A-Z][a-z]{2} +\d{1,2} \d{2}:\d{2}:\d{2})"
_URL_HOST = r"^(?:[A-Za-z][A-Za-z0-9+.\-]*://)?(?:[^@/]*@)?(\[[^\]]*\]|[^:/?#\s]+)"

_SQUID = (
    r"^\s*(\d+(?:\.\d+)?)\s+(-?\d+)\s+(\S+)\s+([A-Za-z_]+)/(\d+)\s+(-?\d+)\s+(\S+)\s+(\S+)\s+(\S+)",
    ["ts", "elapsed", "client", "code", "status", "size", "method", "url", "user"],
)
_BIND = (
    r"^(?:(\d{2}-[A-Z][a-z]{2}-\d{4} \d{2}:\d{2}:\d{2}(?:\.\d+)?) )?(?:" + _SYSLOG_TS + r" )?.*?"
    r"client (?:@0x[0-9a-fA-F]+ )?(\S+)#\d+ (?:\([^)]*\))?: (?:view \S+: )?query: (\S+) (\S+) (\S+)",
    ["bind_ts", "syslog_ts", "client", "qname", "qclass", "qtype"],
)
_DNSMASQ = (
    r"^(?:" + _SYSLOG_TS + r" )?.*?((?:dnsmasq|pihole-FTL)(?:\[\d+\])?): (?:\d+ \S+/\d+ )?"
    r"(?:query\[([A-Za-z0-9]+)\] (\S+) from (\S+))?",
    ["syslog_ts", "tag", "qtype", "qname", "client"],
)
_CEF = (r"^(?:" + _SYSLOG_TS + r" )?.*?CEF:\d+\|(?:(?:[^|\\]|\\.)*\|){6}(.*)$", ["syslog_ts", "ext"])


def url_host(expr: str) -> str:
    """The host of a URL, of `host:port`, or of a bare host; brackets kept for an IPv6 literal."""
    return f"regexp_extract({expr}, {sql_text(_URL_HOST)}, 1)"


def line_parse(fmt: str, mtime: float) -> Parse:
    """The Parse of a one-record-a-line format."""
    if fmt == "squid":
        return _squid()
    if fmt == "bind-query":
        return _bind(mtime)
    if fmt in ("dnsmasq", "pihole"):
        return _dnsmasq(mtime)
    return _cef(mtime)


def _match(shape: tuple[str, list[str]]) -> str:
    pattern, names = shape
    return f"regexp_extract(line, {sql_text(pattern)}, [{', '.join(sql_text(n) for n in names)}]) AS r"


def _fallback_time(mtime: float) -> str:
    """Syslog's `Mon DD HH:MM:SS` in the year the file was written, else the file's modification time."""
    year = time.gmtime(mtime).tm_year
    syslog = f"epoch(try_strptime('{year} ' || r.syslog_ts, '%Y %b %d %H:%M:%S'))"
    return f"coalesce({syslog}, {mtime!r})"


def _squid() -> Parse:
    return Parse(
        role="flow",
        prelude=_match(_SQUID),
        fields={
            "ts": "TRY_CAST(nullif(r.ts, '') AS DOUBLE)",
            "source": "r.client",
            "user": "r.user",
            "host": url_host("r.url"),
            "down": "r.size",  # bytes Squid sent to the client; what the client sent is not in this format
        },
        checks=[("r.ts = ''", "not a Squid native access.log line")],
    )


def _bind(mtime: float) -> Parse:
    formats = "['%d-%b-%Y %H:%M:%S.%g', '%d-%b-%Y %H:%M:%S']"
    return Parse(
        role="lookup",
        prelude=_match(_BIND),
        fields={
            "ts": f"coalesce(epoch(try_strptime(nullif(r.bind_ts, ''), {formats})), {_fallback_time(mtime)})",
            "source": "r.client",
            "host": "r.qname",
        },
        checks=[("r.client = ''", "not a BIND query log line")],
    )


def _dnsmasq(mtime: float) -> Parse:
    return Parse(
        role="lookup",
        prelude=_match(_DNSMASQ),
        fields={"ts": _fallback_time(mtime), "source": "r.client", "host": "r.qname"},
        checks=[("r.tag = ''", "not a dnsmasq log line")],
    )


def _cef_value(key: str) -> str:
    pattern = r"(?:^|\s)" + key + r"=(.*?)(?:\s+[A-Za-z0-9_.\[\]\-]+=|\s*$)"
    raw = f"regexp_extract(r.ext, {sql_text(pattern)}, 1)"
    return f"replace(replace({raw}, '\\=', '='), '\\\\', '\\')"


def _cef(mtime: float) -> Parse:
    when = f"nullif(coalesce(nullif({_cef_value('rt')}, ''), {_cef_value('end')}), '')"
    stamp = (
        f"CASE WHEN regexp_full_match({when}, '[0-9]{{12,14}}') THEN CAST({when} AS DOUBLE) / 1000 "
        f"ELSE coalesce(epoch(try_strptime({when}, ['%b %d %Y %H:%M:%S.%g', '%b %d %Y %H:%M:%S'])), {epoch(when)}) END"
    )
    named = [_cef_value("dhost"), url_host(_cef_value("requestUrl")), _cef_value("dst")]
    host = "coalesce(" + ", ".join(f"nullif({value}, '')" for value in named) + ")"
    return Parse(
        role="flow",
        prelude=_match(_CEF),
        fields={
            "ts": f"CASE WHEN {when} IS NULL THEN {_fallback_time(mtime)} ELSE {stamp} END",
            "source": _cef_value("src"),
            "user": _cef_value("suser"),
            "host": host,
            "up": _cef_value("out"),  # the device's bytes out of the client (vendors' reading of CEF's out/in)
            "down": _cef_value("in"),
        },
        checks=[("r.ext = '' AND NOT regexp_matches(line, 'CEF:[0-9]+[|]')", "not a CEF event")],
    )
