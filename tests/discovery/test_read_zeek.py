"""The Zeek readers on Zeek's own test-suite logs (opt.basic: one trace, consistent uids across conn, http and
dns), with wikimedia.org turned into openai.com in the copies: bytes come exactly from conn records, hosts from
http's Host or, for a conn without one, from the DNS answer its client got; a flow seen in several logs counts
once; DNS alone gives visits without bytes; TSV, JSON and gzip agree."""

from __future__ import annotations

from pathlib import Path

import pytest

from podium.discovery import Reading, read_logs
from tests.discovery._samples import DAY_START, ai_catalogue, as_json, gzipped, zeek_copy

AI = {"wikimedia.org": "openai.com"}
CLIENT = "141.142.220.118"
# conn uids whose http record names an (injected) openai.com host, and the one conn with no http record whose
# address (208.80.152.2) was in the DNS answer for meta.wikimedia.org that the client got before it
HTTP_UIDS = {"CiyBAq1bBLNaTiTAc", "C3eiCBGOLw3VtHfOj", "CwjjYJ2WqgTbAqiHl6", "Ck51lg1bScffFj34Ri"}
HTTP_UIDS |= {"CykQaM33ztNt0csB9a", "CtxTCR2Yer0FR1tIBg", "CLNN1k2QMum1aexUK7", "CUM0KZ3MLUfNB0cl11"}
DNS_UID = "CtPZjS20MLrsMUOJi2"


def _trace(folder: Path) -> list[Path]:
    """dns first in time, then conn, then http: every DNS answer precedes the connections that use it."""
    return [
        zeek_copy("opt.basic.dns.log", folder, start=DAY_START, replace=AI),
        zeek_copy("opt.basic.conn.log", folder, start=DAY_START + 100, replace=AI),
        zeek_copy("opt.basic.http.log", folder, start=DAY_START + 200, replace=AI),
    ]


def _conn_bytes(conn: Path, uids: set[str]) -> tuple[int, int]:
    """orig_bytes and resp_bytes summed over `uids`, read straight from the conn log's columns."""
    up = down = 0
    for line in conn.read_text().splitlines():
        fields = line.split("\t")
        if not line.startswith("#") and fields[1] in uids:
            up, down = up + int(fields[9]), down + int(fields[10])
    return up, down


def _by_host(reading: Reading) -> dict[str, tuple[int, int | None, int | None]]:
    return {s.host: (s.requests, s.bytes_up, s.bytes_down) for s in reading.sightings}


@pytest.mark.parametrize("variant", ["tsv", "json", "tsv.gz", "json.gz"])
def test_conn_http_dns_reconcile_to_exact_bytes_per_flow(tmp_path: Path, variant: str) -> None:
    paths = _trace(tmp_path)
    if variant.startswith("json"):
        paths = [as_json(p) for p in paths]
    if variant.endswith(".gz"):
        paths = [gzipped(p) for p in paths]

    reading = read_logs(paths, ai_catalogue(), threads=2 if variant.endswith(".gz") else 1)

    assert {s.service for s in reading.sightings} == {"openai"}
    assert {s.source for s in reading.sightings} == {CLIENT}
    up, down = _conn_bytes(tmp_path / "opt.basic.conn.log", HTTP_UIDS | {DNS_UID})
    assert sum(s.requests for s in reading.sightings) == len(HTTP_UIDS | {DNS_UID})  # one flow, one request
    assert sum(s.bytes_up or 0 for s in reading.sightings) == up
    assert sum(s.bytes_down or 0 for s in reading.sightings) == down
    meta = _by_host(reading)["meta.openai.com"]
    assert meta[1:] == _conn_bytes(tmp_path / "opt.basic.conn.log", {"CiyBAq1bBLNaTiTAc", DNS_UID})
    assert "upload.openai.com.ncsa.uiuc.edu" not in _by_host(reading)  # a look-alike is not OpenAI
    assert [f.format for f in reading.files] == ["zeek-dns", "zeek-conn", "zeek-http"]
    assert [(f.lines, f.skipped) for f in reading.files] == [(34, 0), (34, 0), (14, 0)]
    assert all(s.day == "2025-12-01" for s in reading.sightings)


def test_zeek_json_with_iso_8601_times(tmp_path: Path) -> None:
    ssl = as_json(zeek_copy("x509-known-certs.ssl.log", tmp_path, start=DAY_START + 3600))
    text = ssl.read_text().replace(f'"ts": {DAY_START + 3600 + 4}', '"ts": "2025-12-01T02:00:04.000000+01:00"')
    assert text.count('"ts": "2025-') == 1
    ssl.write_text(text)
    reading = read_logs([ssl], ai_catalogue())
    (sighting,) = reading.sightings
    assert sighting.first_seen == DAY_START + 3600 + 4  # 02:00:04+01:00 is 01:00:04Z
    assert (sighting.requests, reading.files[0].skipped) == (4, 0)


def test_dns_alone_gives_visits_without_bytes(tmp_path: Path) -> None:
    dns = zeek_copy("opt.basic.dns.log", tmp_path, start=DAY_START, replace=AI)
    lookups = [line.split("\t")[9] for line in dns.read_text().splitlines() if not line.startswith("#")]

    reading = read_logs([dns], ai_catalogue())

    visits = _by_host(reading)
    expected = {h for h in lookups if h.endswith(".openai.com")}
    assert set(visits) == expected
    for host, (requests, up, down) in visits.items():
        assert (requests, up, down) == (lookups.count(host), None, None)


def test_http_without_conn_counts_flows_by_uid_without_bytes(tmp_path: Path) -> None:
    http = zeek_copy("opt.basic.http.log", tmp_path, start=DAY_START, replace=AI)
    reading = read_logs([http], ai_catalogue())
    assert sum(s.requests for s in reading.sightings) == len(HTTP_UIDS)  # 14 records, 8 connections
    assert {(s.bytes_up, s.bytes_down) for s in reading.sightings} == {(None, None)}


def test_ssl_server_name_is_the_host_and_an_exact_host_rule_matches(tmp_path: Path) -> None:
    ssl = zeek_copy("x509-known-certs.ssl.log", tmp_path, start=DAY_START)
    reading = read_logs([gzipped(ssl)], ai_catalogue())
    assert [(s.service, s.host, s.requests) for s in reading.sightings] == [("gemini", "www.google.com", 4)]


def test_a_conn_whose_own_sni_names_another_host_does_not_take_a_dns_answer(tmp_path: Path) -> None:
    """A shared (CDN) address: the client resolved an AI host to it, but this connection's SNI says otherwise."""
    dns, conn, http = _trace(tmp_path)
    header = [line for line in (tmp_path / "opt.basic.http.log").read_text().splitlines() if line[:1] == "#"]
    fields = next(line for line in header if line.startswith("#fields")).split("\t")[1:]
    row = dict.fromkeys(fields, "-") | {"ts": f"{DAY_START + 150:.6f}", "uid": DNS_UID, "host": "example.org"}
    row |= {"id.orig_h": CLIENT, "id.resp_h": "208.80.152.2"}
    other = tmp_path / "other.http.log"
    other.write_text("\n".join([*header, "\t".join(row[f] for f in fields)]) + "\n")

    reading = read_logs([dns, conn, http, other], ai_catalogue())

    meta = [(s.requests, s.bytes_up, s.bytes_down) for s in reading.sightings if s.host == "meta.openai.com"]
    assert meta == [(1, *_conn_bytes(conn, {"CiyBAq1bBLNaTiTAc"}))]  # its http record's flow only
    up, down = _conn_bytes(conn, HTTP_UIDS)
    assert sum(s.bytes_up or 0 for s in reading.sightings) == up  # without the shared address's connection
    assert sum(s.bytes_down or 0 for s in reading.sightings) == down


def test_masked_timestamps_are_bad_lines_with_their_line_numbers(tmp_path: Path) -> None:
    original = Path(__file__).parent / "data" / "zeek" / "opt.basic.conn.log"
    reading = read_logs([original], ai_catalogue())
    first_data_line = next(i for i, line in enumerate(original.read_text().splitlines(), 1) if line[0] != "#")
    assert (reading.files[0].lines, reading.files[0].skipped) == (34, 34)
    assert [b.line for b in reading.bad_lines] == list(range(first_data_line, first_data_line + 5))
    assert {b.reason for b in reading.bad_lines} == {"the time is not a valid timestamp"}
    assert reading.bad_lines[0].text.startswith("XXXXXXXXXX.XXXXXX\tCHhAvVGS1DHFjwGM9")
    assert reading.files[0].sha256 == __import__("hashlib").sha256(original.read_bytes()).hexdigest()
