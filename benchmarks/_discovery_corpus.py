"""A labelled synthetic corpus of network logs for shadow-AI discovery, the same for the same seed.

    python -m benchmarks._discovery_corpus [--seed 7] [--zeek-lines 40000] [--squid-lines 20000] ...

One set of Zeek flows written as conn, dns, ssl and http logs (consistent uids; TSV with its #fields header and
JSON; plain and gzipped), a Squid access.log (CONNECT tunnels, user names), one set of DNS queries written as a BIND
querylog and a dnsmasq log, a --users CSV (address, person, department, valid_from, valid_to), and the ground
truth: which person used which catalogue service, with the exact bytes each way from the conn and proxy records.

Zeek flows are TLS (the SNI in ssl.log), plain HTTP (the Host in http.log), connections seen only in conn.log
(found through the DNS answer their client looked up just before), and DNS lookups with no connection after them
(visits: no bytes). Every host has an address of its own, so an answer names one host. Hosts are catalogue hosts,
generated and real non-AI sites, CDN hosts, near misses and look-alikes (benchmarks/_discovery_population.py).

DuckDB writes the lines (randomness is a hash of the row number and the seed), so a 10-million-line conn log takes
about a minute a format. Corpora are cached under ~/.cache/podium/bench-discovery/, keyed by everything they depend on.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import datetime as dt
import hashlib
import json
import os
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb

from benchmarks._discovery_population import KINDS, Population, population
from podium.discovery import Catalogue

GENERATOR_VERSION = 1
CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "podium" / "bench-discovery"
START = dt.datetime(2026, 11, 16, tzinfo=dt.UTC)
RESOLVER = ("10.0.0.53", "fd00::53")
HOST_SHARE = {"ai": 0.05, "lookalike": 0.02, "near": 0.03, "cdn": 0.10}  # the rest: benign sites
FLOW_SHARE = {"tls": 0.55, "http": 0.12, "bare": 0.11}  # the rest: DNS lookups with no connection after them
LOOKUP_SHARE = 0.25  # TLS and HTTP flows whose DNS lookup is logged just before them (bare flows: all)
CONN_LINES_PER_ROW = 1 + FLOW_SHARE["bare"] + LOOKUP_SHARE * (FLOW_SHARE["tls"] + FLOW_SHARE["http"])
FAMILY = {"zeek-tsv": "zeek", "zeek-tsv-gz": "zeek", "zeek-json": "zeek", "zeek-json-gz": "zeek",
          "squid": "squid", "bind": "dns", "dnsmasq": "dns"}  # fmt: skip


@dataclass(frozen=True)
class Spec:
    seed: int = 7
    zeek_lines: int = 40_000  # conn.log lines, about: rows are drawn so that flows plus their lookups come near it
    squid_lines: int = 20_000
    dns_queries: int = 20_000  # the same queries in the BIND and dnsmasq logs (dnsmasq writes 3-4 lines a query)
    days: int = 3
    seats: int = 300
    benign_domains: int = 10_000
    zeek_logs: tuple[str, ...] = ("conn", "dns", "ssl", "http")
    zeek_formats: tuple[str, ...] = ("tsv", "json")
    zeek_compression: tuple[str, ...] = ("plain", "gz")
    proxy_and_dns: bool = True  # the Squid and DNS-server logs too


@dataclass(frozen=True)
class Usage:
    requests: int  # flows or proxy requests; DNS lookups where there are no flows
    bytes_up: int | None  # None: no record of this pair carries bytes
    bytes_down: int | None


@dataclass(frozen=True)
class Lease:
    address: str
    person: str
    department: str
    valid_from: float
    valid_to: float


@dataclass(frozen=True)
class Corpus:
    folder: Path
    files: dict[str, list[Path]]  # "zeek-tsv", "zeek-json-gz", "squid", "bind", "dnsmasq", ... -> files
    lines: dict[str, int]  # data lines per file (relative path), headers not counted
    truth: dict[str, dict[tuple[str, str], Usage]]  # "zeek" | "squid" | "dns" -> (person, service) -> usage
    non_ai_hosts: dict[str, frozenset[str]]  # family -> every non-AI host its logs name
    ai_hosts: dict[str, str]  # host -> service
    leases: list[Lease]
    users_csv: Path
    dropped_hosts: list[str]  # non-AI candidates the catalogue matched, left out of the corpus

    def person_at(self, address: str, at: float) -> str | None:
        return next((lease.person for lease in self.leases if lease.address == address and
                     lease.valid_from <= at < lease.valid_to), None)  # fmt: skip


def corpus(catalogue: Catalogue, spec: Spec = Spec(), *, cache: Path = CACHE) -> Corpus:
    """The corpus for `spec` and `catalogue`, generated once and then read from the cache."""
    rules = sorted((rule.value, rule.service, rule.exact) for rule in catalogue.rules())
    key = hashlib.sha256(
        json.dumps([GENERATOR_VERSION, duckdb.__version__, dataclasses.asdict(spec), rules]).encode()
    ).hexdigest()[:12]
    folder = cache / f"seed{spec.seed}-{spec.zeek_lines}-{key}"
    if not (folder / "corpus.json").exists():
        building = folder.with_name(f"{folder.name}.building-{os.getpid()}")
        shutil.rmtree(building, ignore_errors=True)
        building.mkdir(parents=True)
        try:
            _generate(catalogue, spec, building)
        except BaseException:
            shutil.rmtree(building, ignore_errors=True)
            raise
        try:
            building.rename(folder)
        except OSError:  # another process finished the same corpus first
            shutil.rmtree(building, ignore_errors=True)
    return _load(folder)


def _generate(catalogue: Catalogue, spec: Spec, folder: Path) -> None:
    people = population(catalogue, seed=spec.seed, seats=spec.seats, days=spec.days, benign_domains=spec.benign_domains)
    con = _connect(people, spec)
    end = START + dt.timedelta(days=spec.days)
    rows = max(1, round(spec.zeek_lines / CONN_LINES_PER_ROW))
    con.execute(f"CREATE VIEW zeek AS {_zeek_rows(people, spec, rows)}")
    files: dict[str, list[str]] = {}
    lines: dict[str, int] = {}
    for fmt in spec.zeek_formats:
        for compression in spec.zeek_compression:
            name = f"zeek-{fmt}" + ("-gz" if compression == "gz" else "")
            for log in spec.zeek_logs:
                path = f"{name}/{log}.log" + (".gz" if compression == "gz" else "")
                headers = len(ZEEK_HEADER) + 5 if fmt == "tsv" else 0  # #path, #open, #fields, #types, #close
                lines[path] = _write(con, folder / path, _zeek_log(log, fmt, rows, spec.days), "zeek", headers)
                files.setdefault(name, []).append(path)
    truth = {"zeek": _truth(con, "zeek", flows="flow <> 'dns'", up="up", down="down")}
    hosts = {"zeek": _non_ai(con, "zeek")}
    if spec.proxy_and_dns:
        con.execute(f"CREATE VIEW squid AS {_squid_rows(people, spec)}")
        lines["squid/access.log"] = _write(con, folder / "squid/access.log", SQUID_LINE, "squid")
        files["squid"] = ["squid/access.log"]
        truth["squid"] = _truth(con, "squid", flows="TRUE", up="NULL", down="bytes")
        hosts["squid"] = _non_ai(con, "squid")
        con.execute(f"CREATE VIEW queries AS {_dns_rows(people, spec)}")
        lines["dns/query.log"] = _write(con, folder / "dns/query.log", BIND_LINE, "queries")
        lines["dns/dnsmasq.log"] = _write(con, folder / "dns/dnsmasq.log", DNSMASQ_LINES, "queries")
        files["bind"], files["dnsmasq"] = ["dns/query.log"], ["dns/dnsmasq.log"]
        truth["dns"] = _truth(con, "queries", flows="FALSE", up="NULL", down="NULL")
        hosts["dns"] = _non_ai(con, "queries")
    for path in lines:  # written when their period ended: a log without years (dnsmasq) dates itself by this
        os.utime(folder / path, (end.timestamp(), end.timestamp()))
    leases = _leases(people, end)
    with (folder / "users.csv").open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(("address", "person", "department", "valid_from", "valid_to"))
        for lease in leases:
            writer.writerow((lease.address, lease.person, lease.department, *(
                dt.datetime.fromtimestamp(moment, dt.UTC).date().isoformat()
                for moment in (lease.valid_from, lease.valid_to))))  # fmt: skip
    record = {
        "files": files,
        "lines": lines,
        "truth": {
            family: [[*pair, *dataclasses.astuple(use)] for pair, use in sorted(found.items())]
            for family, found in truth.items()
        },
        "non_ai_hosts": {family: sorted(found) for family, found in hosts.items()},
        "ai_hosts": {host.name: host.service for host in people.hosts if host.kind == "ai"},
        "leases": [dataclasses.astuple(lease) for lease in leases],
        "dropped_hosts": people.dropped,
        "spec": dataclasses.asdict(spec),
    }
    (folder / "corpus.json").write_text(json.dumps(record, indent=1) + "\n")
    con.close()


def _load(folder: Path) -> Corpus:
    record = json.loads((folder / "corpus.json").read_text())
    return Corpus(
        folder=folder,
        files={name: [folder / path for path in paths] for name, paths in record["files"].items()},
        lines=record["lines"],
        truth={
            family: {(person, service): Usage(*use) for person, service, *use in found}
            for family, found in record["truth"].items()
        },
        non_ai_hosts={family: frozenset(found) for family, found in record["non_ai_hosts"].items()},
        ai_hosts=record["ai_hosts"],
        leases=[Lease(*lease) for lease in record["leases"]],
        users_csv=folder / "users.csv",
        dropped_hosts=record["dropped_hosts"],
    )


def _leases(people: Population, end: dt.datetime) -> list[Lease]:
    start, stop = START.timestamp(), end.timestamp()
    leases = []
    for seat in people.seats:
        switch = start + seat.switch_day * 86400
        leases.append(Lease(seat.address, seat.person_a, seat.department_a, start, switch))
        if switch < stop:
            leases.append(Lease(seat.address, seat.person_b, seat.department_b, switch, stop))
    return leases


def _connect(people: Population, spec: Spec) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute("SET memory_limit = '1GB'")
    # Rows stream out in time order only while the joins keep the row numbers on their probe side: left to itself,
    # the optimiser swapped the sides of a join (dnsmasq's long expression) and wrote the rows in host order.
    con.execute("SET disabled_optimizers = 'join_order,build_side_probe_side'")
    con.execute(f"CREATE MACRO rnd(i, salt) AS hash(i::BIGINT, salt::BIGINT, {int(spec.seed)}::BIGINT)")
    con.execute("CREATE MACRO unit(i, salt) AS (rnd(i, salt) % 1000000007)::DOUBLE / 1000000007")
    hosts = people.hosts
    con.execute(
        """CREATE TABLE hosts AS SELECT id, name, kind, service,
             concat_ws('.', 23, 64 + id // 62500, id // 250 % 250, id % 250 + 1) AS ip4,
             format('2001:db8:{:x}:{:x}::1', id // 65536, id % 65536) AS ip6,
             CASE WHEN unit(id, 40) >= 0.3 THEN NULL WHEN kind = 'ai' THEN name || '.cdn.cloudflare.net'
                  ELSE name || '.edgekey.net' END AS cname
           FROM (SELECT generate_subscripts($1, 1) - 1 AS id, unnest($1) AS name, unnest($2) AS kind,
                        unnest($3) AS service)""",
        [[h.name for h in hosts], [h.kind for h in hosts], [h.service for h in hosts]],
    )
    seats = people.seats
    con.execute(
        """CREATE TABLE seats AS SELECT generate_subscripts($1, 1) - 1 AS id, unnest($1) AS address,
             unnest($2) AS person_a, unnest($3) AS person_b, unnest($4) AS switch_day""",
        [[s.address for s in seats], [s.person_a for s in seats], [s.person_b for s in seats],
         [s.switch_day for s in seats]],
    )  # fmt: skip
    return con


def _pick_host(people: Population, row: str, salt: int) -> str:
    """SQL for a host id: row n < hosts takes host n (every host appears), later rows draw by HOST_SHARE."""
    counts = {kind: sum(1 for host in people.hosts if host.kind == kind) for kind in KINDS}
    cases, offset, edge = [], 0, 0.0
    for kind in KINDS:
        if counts[kind] and kind in HOST_SHARE:
            edge += HOST_SHARE[kind]
            cases.append(f"WHEN unit({row}, {salt}) < {edge} THEN {offset} + rnd({row}, {salt + 1}) % {counts[kind]}")
        offset += counts[kind]
    benign = offset - counts["benign"]
    return (f"CASE WHEN {row} < {len(people.hosts)} THEN {row} {' '.join(cases)} "
            f"ELSE {benign} + rnd({row}, {salt + 1}) % {counts['benign']} END")  # fmt: skip


def _rows(people: Population, spec: Spec, count: int, salt: int, columns: str) -> str:
    """Rows in time order, each with a host and a seat (and the person who held the seat that day)."""
    step = spec.days * 86400 / count
    start = START.timestamp()
    return f"""
      SELECT r.i, r.ts, h.name, h.kind, h.service, h.cname, s.address, s.address LIKE '%:%' AS v6,
        CASE WHEN v6 THEN h.ip6 ELSE h.ip4 END AS ip,
        CASE WHEN v6 THEN '{RESOLVER[1]}' ELSE '{RESOLVER[0]}' END AS resolver,
        CASE WHEN floor((r.ts - {start}) / 86400) < s.switch_day THEN s.person_a ELSE s.person_b END AS person,
        {columns}
      FROM (SELECT i, {start} + (i + 0.3 + 0.6 * unit(i, {salt})) * {step} AS ts,
                   {_pick_host(people, "i", salt + 1)} AS host_id, rnd(i, {salt + 3}) % {len(people.seats)} AS seat_id
            FROM range({count}) t(i)) r
      JOIN hosts h ON h.id = r.host_id JOIN seats s ON s.id = r.seat_id"""


def _zeek_rows(people: Population, spec: Spec, rows: int) -> str:
    tls, http, bare = FLOW_SHARE["tls"], FLOW_SHARE["http"], FLOW_SHARE["bare"]
    step = spec.days * 86400 / rows
    flows = f"""CASE WHEN unit(i, 5) < {tls} THEN 'tls' WHEN unit(i, 5) < {tls + http} THEN 'http'
                     WHEN unit(i, 5) < {tls + http + bare} THEN 'bare' ELSE 'dns' END"""
    columns = f"""
        {START.timestamp()} + (i + 0.1) * {step} AS lookup_ts,
        300 + rnd(i, 6) % 250000 AS up, 800 + rnd(i, 7) % 3000000 AS down,
        kind <> 'ai' AND unit(i, 8) < 0.02 AS unanswered,
        'C' || to_hex(rnd(i, 9)) AS uid, 'C' || to_hex(rnd(i, 10)) AS lookup_uid"""
    return f"""SELECT *, flow IN ('bare', 'dns') OR unit(i, 11) < {LOOKUP_SHARE} AS lookup
               FROM (SELECT *, {flows} AS flow FROM ({_rows(people, spec, rows, 1, columns)}))"""


def _squid_rows(people: Population, spec: Spec) -> str:
    columns = """
        CASE WHEN unit(i, 25) < 0.72 THEN 'CONNECT' WHEN unit(i, 25) < 0.95 THEN 'GET' ELSE 'POST' END AS method,
        kind <> 'ai' AND unit(i, 26) < 0.02 AS denied,
        unit(i, 27) < 0.2 AS hit,
        CASE WHEN unit(i, 28) < 0.7 THEN person ELSE '-' END AS login"""
    return f"""SELECT *, CASE WHEN denied THEN 3900 + rnd(i, 29) % 200 ELSE 500 + rnd(i, 30) % 2000000 END AS bytes
               FROM ({_rows(people, spec, spec.squid_lines, 21, columns)})"""


def _dns_rows(people: Population, spec: Spec) -> str:
    columns = "CASE WHEN v6 THEN 'AAAA' ELSE 'A' END AS qtype, unit(i, 35) < 0.4 AS cached"
    return _rows(people, spec, spec.dns_queries, 31, columns)


# Zeek's columns (as Zeek 7 writes them) with the SQL of each over the `zeek` view; NULL is an unset field.
CONN = {
    "ts": ("time", "format('{:.6f}', ts)"),
    "uid": ("string", "uid"),
    "id.orig_h": ("addr", "address"),
    "id.orig_p": ("port", "(1024 + rnd(i, 12) % 64000)::VARCHAR"),
    "id.resp_h": ("addr", "ip"),
    "id.resp_p": ("port", "CASE flow WHEN 'http' THEN '80' ELSE '443' END"),
    "proto": ("enum", "'tcp'"),
    "service": ("string", "CASE flow WHEN 'tls' THEN 'ssl' WHEN 'http' THEN 'http' END"),
    "duration": ("interval", "format('{:.6f}', 0.05 + unit(i, 13) * 30)"),
    "orig_bytes": ("count", "CASE WHEN NOT unanswered THEN up::VARCHAR END"),
    "resp_bytes": ("count", "CASE WHEN NOT unanswered THEN down::VARCHAR END"),
    "conn_state": ("string", "CASE WHEN unanswered THEN 'S0' ELSE 'SF' END"),
    "local_orig": ("bool", "'T'"),
    "local_resp": ("bool", "'F'"),
    "missed_bytes": ("count", "'0'"),
    "history": ("string", "CASE WHEN unanswered THEN 'S' ELSE 'ShADadFf' END"),
    "orig_pkts": ("count", "CASE WHEN unanswered THEN '1' ELSE (up // 1400 + 4)::VARCHAR END"),
    "orig_ip_bytes": ("count", "CASE WHEN unanswered THEN '60' ELSE (up + (up // 1400 + 4) * 52)::VARCHAR END"),
    "resp_pkts": ("count", "CASE WHEN unanswered THEN '0' ELSE (down // 1400 + 3)::VARCHAR END"),
    "resp_ip_bytes": ("count", "CASE WHEN unanswered THEN '0' ELSE (down + (down // 1400 + 3) * 52)::VARCHAR END"),
    "tunnel_parents": ("set[string]", "NULL"),
    "ip_proto": ("count", "'6'"),
}
LOOKUP_CONN = {  # the DNS query's own flow, to the resolver
    **CONN,
    "ts": ("time", "format('{:.6f}', lookup_ts)"),
    "uid": ("string", "lookup_uid"),
    "id.orig_p": ("port", "(1024 + rnd(i, 14) % 64000)::VARCHAR"),
    "id.resp_h": ("addr", "resolver"),
    "id.resp_p": ("port", "'53'"),
    "proto": ("enum", "'udp'"),
    "service": ("string", "'dns'"),
    "duration": ("interval", "format('{:.6f}', 0.001 + unit(i, 15) * 0.05)"),
    "orig_bytes": ("count", "(length(name) + 18)::VARCHAR"),
    "resp_bytes": ("count", "(2 * length(name) + 40)::VARCHAR"),
    "conn_state": ("string", "'SF'"),
    "local_resp": ("bool", "'T'"),
    "history": ("string", "'Dd'"),
    "orig_pkts": ("count", "'1'"),
    "orig_ip_bytes": ("count", "(length(name) + 46)::VARCHAR"),
    "resp_pkts": ("count", "'1'"),
    "resp_ip_bytes": ("count", "(2 * length(name) + 68)::VARCHAR"),
    "ip_proto": ("count", "'17'"),
}
DNS = {
    **{key: LOOKUP_CONN[key] for key in ("ts", "uid", "id.orig_h", "id.orig_p", "id.resp_h", "id.resp_p", "proto")},
    "trans_id": ("count", "(rnd(i, 16) % 65536)::VARCHAR"),
    "rtt": ("interval", "format('{:.6f}', 0.001 + unit(i, 15) * 0.04)"),
    "query": ("string", "name"),
    "qclass": ("count", "'1'"),
    "qclass_name": ("string", "'C_INTERNET'"),
    "qtype": ("count", "CASE WHEN v6 THEN '28' ELSE '1' END"),
    "qtype_name": ("string", "CASE WHEN v6 THEN 'AAAA' ELSE 'A' END"),
    "rcode": ("count", "'0'"),
    "rcode_name": ("string", "'NOERROR'"),
    "AA": ("bool", "'F'"),
    "TC": ("bool", "'F'"),
    "RD": ("bool", "'T'"),
    "RA": ("bool", "'T'"),
    "Z": ("count", "'0'"),
    "answers": ("vector[string]", "concat_ws(',', cname, ip)"),
    "TTLs": ("vector[interval]", "CASE WHEN cname IS NULL THEN '300.000000' ELSE '3600.000000,300.000000' END"),
    "rejected": ("bool", "'F'"),
    "opcode": ("count", "'0'"),
    "opcode_name": ("string", "'query'"),
}
AFTER_CONN = "format('{:.6f}', ts + 0.0002)"
SSL = {
    "ts": ("time", AFTER_CONN),
    **{key: CONN[key] for key in ("uid", "id.orig_h", "id.orig_p", "id.resp_h", "id.resp_p")},
    "version": ("string", "'TLSv13'"),
    "cipher": ("string", "'TLS_AES_128_GCM_SHA256'"),
    "curve": ("string", "'x25519'"),
    "server_name": ("string", "name"),
    "resumed": ("bool", "CASE WHEN unit(i, 17) < 0.3 THEN 'T' ELSE 'F' END"),
    "last_alert": ("string", "NULL"),
    "next_protocol": ("string", "'h2'"),
    "established": ("bool", "'T'"),
    "ssl_history": ("string", "'CsiI'"),
    "cert_chain_fps": ("vector[string]", "NULL"),
    "client_cert_chain_fps": ("vector[string]", "NULL"),
    "sni_matches_cert": ("bool", "NULL"),
    "validation_status": ("string", "NULL"),
}
HTTP = {
    "ts": ("time", AFTER_CONN),
    **{key: CONN[key] for key in ("uid", "id.orig_h", "id.orig_p", "id.resp_h", "id.resp_p")},
    "trans_depth": ("count", "'1'"),
    "method": ("string", "CASE WHEN unit(i, 18) < 0.2 THEN 'POST' ELSE 'GET' END"),
    "host": ("string", "name"),
    "uri": ("string", "'/v1/' || to_hex(rnd(i, 19) % 65536) || '?q=' || (rnd(i, 20) % 1000)::VARCHAR"),
    "referrer": ("string", "NULL"),
    "version": ("string", "'1.1'"),
    "user_agent": ("string", "'Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0'"),
    "origin": ("string", "NULL"),
    "request_body_len": ("count", "CASE WHEN unit(i, 18) < 0.2 THEN (up - 300)::VARCHAR ELSE '0' END"),
    "response_body_len": ("count", "(down - 800)::VARCHAR"),
    "status_code": ("count", "'200'"),
    "status_msg": ("string", "'OK'"),
    "info_code": ("count", "NULL"),
    "info_msg": ("string", "NULL"),
    "tags": ("set[enum]", "NULL"),
    "username": ("string", "NULL"),
    "password": ("string", "NULL"),
    "proxied": ("set[string]", "NULL"),
    "orig_fuids": ("vector[string]", "NULL"),
    "orig_filenames": ("vector[string]", "NULL"),
    "orig_mime_types": ("vector[string]", "NULL"),
    "resp_fuids": ("vector[string]", "'F' || to_hex(rnd(i, 21))"),
    "resp_filenames": ("vector[string]", "NULL"),
    "resp_mime_types": ("vector[string]", "'application/json'"),
}
SQUID_LINE = """[format('{:.3f} {:>6} {} {} {} {} {} {} {} {}', ts, rnd(i, 31) % 60000, address,
    CASE WHEN denied THEN 'TCP_DENIED/403' WHEN method = 'CONNECT' THEN 'TCP_TUNNEL/200'
         WHEN hit THEN 'TCP_HIT/200' ELSE 'TCP_MISS/200' END,
    bytes, method,
    CASE WHEN method = 'CONNECT' THEN name || ':443' ELSE 'http://' || name || '/p/' || to_hex(rnd(i, 32) % 4096) END,
    login,
    CASE WHEN denied OR (hit AND method <> 'CONNECT') THEN 'HIER_NONE/-' ELSE 'HIER_DIRECT/' || ip END,
    CASE WHEN method = 'CONNECT' THEN '-' WHEN method = 'POST' THEN 'application/json' ELSE 'text/html' END)]"""
BIND_LINE = """[strftime(to_timestamp(ts), '%d-%b-%Y %H:%M:%S.%g') || ' queries: info: client @0x'
    || lower(to_hex(rnd(i, 36) % 281474976710656)) || ' ' || address || '#' || (1024 + rnd(i, 37) % 64000)::VARCHAR
    || ' (' || name || '): query: ' || name || ' IN ' || qtype || ' +E(0)K (' || resolver || ')']"""
DNSMASQ_STAMP = """strftime(to_timestamp(ts), '%b ') || lpad(day(to_timestamp(ts))::VARCHAR, 2, ' ')
    || strftime(to_timestamp(ts), ' %H:%M:%S') || ' dnsmasq[812]: '"""
DNSMASQ_LINES = f"""[{DNSMASQ_STAMP} || 'query[' || qtype || '] ' || name || ' from ' || address,
    {DNSMASQ_STAMP} || CASE WHEN cached THEN 'cached ' || name || ' is ' || coalesce(cname, ip)
                            ELSE 'forwarded ' || name || ' to 9.9.9.9' END]
    || CASE WHEN cached AND cname IS NULL THEN []
            WHEN cached THEN [{DNSMASQ_STAMP} || 'cached ' || cname || ' is ' || ip]
            WHEN cname IS NULL THEN [{DNSMASQ_STAMP} || 'reply ' || name || ' is ' || ip]
            ELSE [{DNSMASQ_STAMP} || 'reply ' || name || ' is <CNAME>',
                  {DNSMASQ_STAMP} || 'reply ' || cname || ' is ' || ip] END"""
ZEEK_LOGS: dict[str, list[tuple[Mapping[str, tuple[str, str]], str]]] = {
    "conn": [(LOOKUP_CONN, "lookup"), (CONN, "flow <> 'dns'")],
    "dns": [(DNS, "lookup")],
    "ssl": [(SSL, "flow = 'tls'")],
    "http": [(HTTP, "flow = 'http'")],
}
ZEEK_HEADER = ("#separator \\x09", "#set_separator\t,", "#empty_field\t(empty)", "#unset_field\t-")
NUMBER_TYPES = {"time", "interval", "count", "port", "int", "double"}


def _zeek_log(log: str, fmt: str, rows: int, days: int) -> str:
    """SQL for a list of the lines one row of the `zeek` view puts in `log` (header and #close at the ends)."""
    parts = [f"CASE WHEN {when} THEN [{_zeek_line(fields, fmt)}] ELSE []::VARCHAR[] END"
             for fields, when in ZEEK_LOGS[log]]  # fmt: skip
    if fmt == "tsv":
        fields = ZEEK_LOGS[log][0][0]
        stamp = "%Y-%m-%d-%H-%M-%S"
        header = [*ZEEK_HEADER, f"#path\t{log}", f"#open\t{START.strftime(stamp)}", "#fields\t" + "\t".join(fields),
                  "#types\t" + "\t".join(kind for kind, _ in fields.values())]  # fmt: skip
        close = f"#close\t{(START + dt.timedelta(days=days)).strftime(stamp)}"
        parts.insert(0, f"CASE WHEN i = 0 THEN {_sql_list(header)} ELSE []::VARCHAR[] END")
        parts.append(f"CASE WHEN i = {rows - 1} THEN {_sql_list([close])} ELSE []::VARCHAR[] END")
    return " || ".join(parts)


def _zeek_line(fields: Mapping[str, tuple[str, str]], fmt: str) -> str:
    if fmt == "tsv":
        return "concat_ws(chr(9), " + ", ".join(f"coalesce({sql}, '-')" for _, sql in fields.values()) + ")"
    members = []
    for name, (kind, sql) in fields.items():
        if sql == "NULL":
            continue  # Zeek leaves unset fields out of its JSON
        if kind in NUMBER_TYPES or kind.startswith("vector[interval"):
            value = sql if kind in NUMBER_TYPES else f"'[' || {sql} || ']'"
        elif kind == "bool":
            value = f"CASE {sql} WHEN 'T' THEN 'true' ELSE 'false' END"
        elif kind.startswith(("set[", "vector[")):
            value = f"""'["' || replace({sql}, ',', '","') || '"]'"""
        else:
            value = f"""'"' || {sql} || '"'"""
        members.append(f"""CASE WHEN ({sql}) IS NOT NULL THEN '"{name}":' || {value} END""")
    return "'{' || concat_ws(',', " + ", ".join(members) + ") || '}'"


def _sql_list(texts: Sequence[str]) -> str:
    return "[" + ", ".join("'" + text.replace("'", "''") + "'" for text in texts) + "]::VARCHAR[]"


def _write(con: duckdb.DuckDBPyConnection, path: Path, lines: str, view: str, headers: int = 0) -> int:
    """Write the lines (SQL for a list per row of `view`) to `path`, gzipped if it ends in .gz; data lines written.

    DuckDB's own gzip ran at ~9 MB/s here; it writes into a pipe instead and `gzip -6 -n` (gzip's default level,
    as log rotation uses it; no name or time inside, so the bytes are the same each time) compresses on the other
    core."""
    path.parent.mkdir(parents=True, exist_ok=True)
    copy = f"""COPY (SELECT unnest({lines}) AS line FROM {view}) TO '$PATH'
               (FORMAT CSV, HEADER false, QUOTE '', ESCAPE '', DELIMITER '\x01', USE_TMP_FILE false)"""
    if path.suffix != ".gz":
        written = con.execute(copy.replace("$PATH", str(path))).fetchone()
    else:
        pipe = path.with_name(path.name + ".pipe")
        pipe.unlink(missing_ok=True)
        os.mkfifo(pipe)
        try:
            with path.open("wb") as out:  # the shell opens the pipe, so neither side blocks the other here
                gzip = subprocess.Popen(["sh", "-c", 'exec gzip -6 -n -c < "$0"', str(pipe)], stdout=out)
                try:
                    written = con.execute(copy.replace("$PATH", str(pipe))).fetchone()
                finally:
                    if gzip.wait() != 0:
                        raise RuntimeError(f"gzip failed writing {path}")
        finally:
            pipe.unlink(missing_ok=True)
    return int(written[0]) - headers if written else 0


def _truth(
    con: duckdb.DuckDBPyConnection, view: str, *, flows: str, up: str, down: str
) -> dict[tuple[str, str], Usage]:
    found = con.execute(
        f"""SELECT person, service, count(*) FILTER ({flows}), count(*),
                   sum({up}) FILTER ({flows}), sum({down}) FILTER ({flows})
            FROM {view} WHERE kind = 'ai' GROUP BY ALL"""
    ).fetchall()
    return {
        (person, service): Usage(
            requests=flow_count or rows,
            bytes_up=None if sent is None else int(sent),
            bytes_down=None if got is None else int(got),
        )
        for person, service, flow_count, rows, sent, got in found
    }


def _non_ai(con: duckdb.DuckDBPyConnection, view: str) -> frozenset[str]:
    return frozenset(name for (name,) in con.execute(f"SELECT DISTINCT name FROM {view} WHERE kind <> 'ai'").fetchall())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for field in dataclasses.fields(Spec):
        if field.type in ("int", int):
            parser.add_argument(f"--{field.name.replace('_', '-')}", type=int, default=field.default)
    args = parser.parse_args()
    spec = Spec(**{field.name: getattr(args, field.name) for field in dataclasses.fields(Spec) if field.type == "int"})
    made = corpus(Catalogue.load(), spec)
    print(made.folder)
    for path, count in made.lines.items():
        print(f"{count:>12,}  {path}")
    for family, found in made.truth.items():
        print(f"{family}: {len(found)} (person, service) pairs, {len(made.non_ai_hosts[family])} non-AI hosts")


if __name__ == "__main__":
    main()
