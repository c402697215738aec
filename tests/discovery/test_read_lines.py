"""The one-record-a-line readers (Squid, BIND, dnsmasq, Pi-hole, CEF), CSV exports through a column mapping, and
format detection with its refusals."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from podium.discovery import FORMATS, read_logs
from podium.errors import UsageError
from tests.discovery._samples import DATA, ai_catalogue, gzipped


def _write(folder: Path, name: str, lines: list[str]) -> Path:
    path = folder / name
    path.write_text("\n".join(lines) + "\n")
    return path


def test_squid_access_log_bytes_go_down_and_users_are_kept(tmp_path: Path) -> None:
    text = (DATA / "squid" / "access.log").read_text().replace("example.com", "chatgpt.com")
    squid = _write(tmp_path, "access.log", text.splitlines())
    expected: dict[tuple[str, str | None], int] = {}
    for fields in (line.split() for line in text.splitlines()):
        if "chatgpt.com" in fields[6]:
            key = (fields[2], None if fields[7] == "-" else fields[7])
            expected[key] = expected.get(key, 0) + int(fields[4])

    reading = read_logs([gzipped(squid)], ai_catalogue())

    assert reading.files[0].format == "squid"
    found: dict[tuple[str, str | None], int] = {}
    for s in reading.sightings:
        found[(s.source, s.user)] = found.get((s.source, s.user), 0) + (s.bytes_down or 0)
        assert s.bytes_up is None  # Squid's native format does not say what the client sent
    assert found == expected
    assert ("10.10.10.10", "user@domain.com") in found  # the CONNECT tunnel to secure.chatgpt.com:443
    assert (reading.files[0].lines, reading.files[0].skipped) == (8, 0)


def test_bind_query_log_with_and_without_timestamps(tmp_path: Path) -> None:
    bind = _write(
        tmp_path,
        "query.log",
        [
            "25-Nov-2025 10:00:01.123 client @0x7f1c2c0a8b70 10.0.0.5#53211 (chat.openai.com): "
            "query: chat.openai.com IN A +E(0)K (10.0.0.1)",
            "client @0x7f1c2c0a8b70 10.0.0.5#53212 (claude.ai): view internal: query: claude.ai IN AAAA + (10.0.0.1)",
            "25-Nov-2025 10:00:03.000 client 10.0.0.6#4000 (example.org): query: example.org IN A + (10.0.0.1)",
            "this is not a query line",
        ],
    )
    os.utime(bind, (1_764_064_800, 1_764_064_800))  # 2025-11-25T10:00:00Z: the time of the line without one

    reading = read_logs([bind], ai_catalogue())

    assert reading.files[0].format == "bind-query"
    got = {(s.source, s.service, s.host, s.day, s.requests, s.bytes_up) for s in reading.sightings}
    assert got == {
        ("10.0.0.5", "openai", "chat.openai.com", "2025-11-25", 1, None),
        ("10.0.0.5", "claude", "claude.ai", "2025-11-25", 1, None),
    }
    assert min(s.first_seen for s in reading.sightings) == pytest.approx(1_764_064_800)
    assert (reading.files[0].lines, reading.files[0].skipped) == (4, 1)
    assert [(b.line, b.reason) for b in reading.bad_lines] == [(4, "not a BIND query log line")]


@pytest.mark.parametrize(("name", "fmt"), [("dnsmasq.log", "dnsmasq"), ("pihole.log", "pihole")])
def test_dnsmasq_and_pihole_query_lines_count_and_the_rest_is_not_bad(tmp_path: Path, name: str, fmt: str) -> None:
    log = _write(
        tmp_path,
        name,
        [
            "Nov 25 10:00:00 dnsmasq[812]: query[A] chat.openai.com from 192.168.1.20",
            "Nov 25 10:00:00 dnsmasq[812]: forwarded chat.openai.com to 1.1.1.1",
            "Nov 25 10:00:00 dnsmasq[812]: reply chat.openai.com is 104.18.32.47",
            "Nov 25 10:00:05 dnsmasq[812]: query[AAAA] chat.openai.com from 192.168.1.20",
            "Nov 26 09:00:00 dnsmasq[812]: query[A] api.anthropic.com from 192.168.1.21",
            "Nov 26 09:00:01 dnsmasq[812]: query[A] openai.com.evil.net from 192.168.1.21",
        ],
    )
    os.utime(log, (1_764_547_200, 1_764_547_200))  # 2025-12-01: the year the syslog stamps lack

    reading = read_logs([log], ai_catalogue())

    assert reading.files[0].format == fmt
    got = {(s.source, s.service, s.day, s.requests) for s in reading.sightings}
    assert got == {("192.168.1.20", "openai", "2025-11-25", 2), ("192.168.1.21", "claude", "2025-11-26", 1)}
    assert (reading.files[0].lines, reading.files[0].skipped) == (6, 0)


def test_pihole_query_database_export_needs_no_mapping_and_counts_lookups(tmp_path: Path) -> None:
    export = _write(
        tmp_path,
        "queries.csv",
        [
            "id,timestamp,type,status,domain,client,forward,additional_info,reply_type,reply_time,dnssec",
            "1,1764064800,1,2,chat.openai.com,192.168.1.20,1.1.1.1,,4,0.012,0",
            "2,1764064805,2,3,chat.openai.com,192.168.1.20,,,4,0.0,0",
            "3,1764064806,1,2,example.org,192.168.1.20,1.1.1.1,,4,0.010,0",
        ],
    )
    reading = read_logs([export], ai_catalogue())
    assert reading.files[0].format == "pihole"
    got = [(s.source, s.service, s.requests, s.bytes_up, s.bytes_down) for s in reading.sightings]
    assert got == [("192.168.1.20", "openai", 2, None, None)]


def test_cef_events_with_escapes_and_bytes_both_ways(tmp_path: Path) -> None:
    cef = _write(
        tmp_path,
        "firewall.cef",
        [
            "Nov 25 10:00:00 fw01 CEF:0|Acme|Gate\\|Way|1.0|100|Allowed web|3|src=10.1.1.5 suser=alice "
            "dhost=chat.openai.com out=1200 in=34000 rt=1764064800000 msg=a \\= b with spaces",
            "CEF:0|Acme|Gate|1.0|100|Allowed web|3|src=10.1.1.5 suser=alice "
            "requestUrl=https://claude.ai/api?x\\=1 out=10 in=20 rt=Nov 25 2025 10:05:00",
            "CEF:0|Acme|Gate|1.0|100|Allowed web|3|src=10.1.1.6 dst=93.184.216.34 out=5 in=6 rt=1764064800000",
            "CEF:0|Acme|Gate|1.0|100|Allowed web|3|src=10.1.1.7 dhost=chat.openai.com out=-5 rt=1764064800000",
        ],
    )
    reading = read_logs([cef], ai_catalogue())

    assert reading.files[0].format == "cef"
    got = {(s.source, s.user, s.service, s.host, s.bytes_up, s.bytes_down) for s in reading.sightings}
    assert got == {
        ("10.1.1.5", "alice", "openai", "chat.openai.com", 1200, 34000),
        ("10.1.1.5", "alice", "claude", "claude.ai", 10, 20),
    }
    assert {s.day for s in reading.sightings} == {"2025-11-25"}
    assert [(b.line, b.reason) for b in reading.bad_lines] == [(4, "bytes sent is not a plausible count")]


MAPPING = {"host": "dst", "user": "uid", "bytes_up": "sent", "bytes_down": "received", "time": "ts", "source": "src"}


def test_csv_export_through_a_mapping_epoch_and_iso_times(tmp_path: Path) -> None:
    export = _write(
        tmp_path,
        "proxy.csv",
        [
            "ts,src,uid,dst,sent,received,action",
            "1764064800,10.2.0.1,bob,chat.openai.com,100,2000,allow",
            '2025-11-25T13:00:00+02:00,10.2.0.1,bob,"https://chat.openai.com/c/1",50,70,allow',
            "1764064800123,10.2.0.2,,claude.ai:443,1,2,allow",
            "not a time,10.2.0.3,eve,chat.openai.com,1,1,allow",
            "1764064800,10.2.0.4,eve,example.org,1,1,allow",
        ],
    )
    reading = read_logs([export], ai_catalogue(), mapping=MAPPING)

    got = {(s.source, s.user, s.service, s.requests, s.bytes_up, s.bytes_down, s.day) for s in reading.sightings}
    assert got == {
        ("10.2.0.1", "bob", "openai", 2, 150, 2070, "2025-11-25"),
        ("10.2.0.2", None, "claude", 1, 1, 2, "2025-11-25"),
    }
    openai = next(s for s in reading.sightings if s.service == "openai")
    assert openai.last_seen - openai.first_seen == pytest.approx(3600)  # 13:00+02:00 is 11:00Z, an hour after 10:00Z
    assert [(b.line, b.reason) for b in reading.bad_lines] == [(5, "the time is not a valid timestamp")]


def test_csv_without_a_mapping_shows_its_header_and_an_example(tmp_path: Path) -> None:
    export = _write(tmp_path, "fw.tsv", ["time\tclient\tdestination", "1\t2\t3"])
    with pytest.raises(UsageError, match=r"time, client, destination.*--map host="):
        read_logs([export], ai_catalogue())
    with pytest.raises(UsageError, match="has no column dst"):
        read_logs([export], ai_catalogue(), mapping={"host": "dst", "source": "client", "time": "time"})
    with pytest.raises(UsageError, match="must name the source"):
        read_logs([export], ai_catalogue(), mapping={"host": "destination", "time": "time"})


def test_an_unknown_format_is_refused_with_the_list_and_format_can_force_one(tmp_path: Path) -> None:
    junk = tmp_path / "mystery.log"
    junk.write_bytes(b"\x00\x01\x02 binary \xff\xfe nothing known here\n" * 10)
    with pytest.raises(UsageError, match="--format") as refused:
        read_logs([junk], ai_catalogue())
    assert all(name in str(refused.value) for name in FORMATS)
    with pytest.raises(UsageError, match="unknown log format 'syslog'"):
        read_logs([junk], ai_catalogue(), format="syslog")
    fake_gzip = tmp_path / "fake.gz"
    fake_gzip.write_bytes(b"\x1f\x8bnot really gzip")
    with pytest.raises(UsageError, match="does not decompress"):
        read_logs([fake_gzip], ai_catalogue())
    forced = read_logs([junk], ai_catalogue(), format="squid")
    assert (forced.files[0].format, forced.files[0].lines, forced.files[0].skipped) == ("squid", 10, 10)


def test_a_host_no_resolver_would_look_up_matches_nothing_even_under_a_catalogue_domain(tmp_path: Path) -> None:
    hostile = ["x<svg>.openai.com", "=1+1.openai.com", "a" * 64 + ".openai.com", "a..openai.com", "-x-.openai.com",
               "x\u202eevil.openai.com", "x_y.openai.com\x7f"]  # fmt: skip
    lines = [
        f"1764064800.{i:03d} 5 10.0.0.{i} TCP_TUNNEL/200 1000 CONNECT {host}:443 - HIER_DIRECT/1.2.3.4 -"
        for i, host in enumerate([*hostile, "Chat.OpenAI.com."])
    ]

    reading = read_logs([_write(tmp_path, "access.log", lines)], ai_catalogue())

    assert [(s.source, s.service, s.host) for s in reading.sightings] == [("10.0.0.7", "openai", "chat.openai.com")]
