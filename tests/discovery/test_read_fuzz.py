"""Hostile input: 100,000 lines a format, a fifth of them broken in ways a log can be (invalid UTF-8, control
characters, garbage, lines over the size limit, masked times, negative and huge byte counts); the readers must
count every line, skip exactly the broken ones, name the first few by line number, and still find the AI use in
the rest. Then hypothesis throws arbitrary bytes at every format: no crash, never more skipped than read."""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from podium.discovery import read_logs
from podium.discovery._records import MAX_LINE_BYTES
from tests.discovery._samples import DATA, MASKED, ai_catalogue

LINES = 100_000
HOSTS = ["chat.openai.com", "claude.ai", "example.org", "openai.com.evil.net", "cdn.example.net", "notopenai.com"]
AI_HOSTS = {"chat.openai.com", "claude.ai"}
TS = 1_764_064_800


def _conn_header() -> list[str]:
    lines = (DATA / "zeek" / "opt.basic.conn.log").read_text().splitlines()
    return [line for line in lines if line.startswith("#") and not line.startswith("#close")]


def _with_field(line: str, index: int, value: str) -> str:
    fields = line.split("\t")
    fields[index] = value
    return "\t".join(fields)


# format -> (header lines, good line from (rng, host), format-specific breakages of a good line)
Good = Callable[[random.Random, str], str]
FORMATS: dict[str, tuple[list[str], Good, list[Callable[[str], str]]]] = {
    "zeek-conn": (
        _conn_header(),
        lambda r, h: "\t".join(
            [
                *(f"{TS + r.random():.6f}", f"C{r.getrandbits(48):x}", f"10.0.0.{r.randrange(250)}", "5000"),
                *("1.2.3.4", "443", "tcp", "ssl", "1.0", str(r.randrange(9999)), str(r.randrange(9999)), "SF"),
                *("T", "F", "0", "ShADadFf", "1", "2", "3", "4", "-", "6"),
            ]
        ),
        [
            lambda g: MASKED + g[g.index("\t") :],
            lambda g: _with_field(g, 9, "-7"),  # negative orig_bytes
            lambda g: _with_field(g, 10, "99999999999999999999"),  # resp_bytes beyond any count
            lambda g: g + "\textra",
        ],
    ),
    "zeek-dns": (
        [],
        lambda r, h: f'{{"ts":{TS + r.random()},"uid":"C1","id.orig_h":"10.0.0.{r.randrange(250)}","query":"{h}"}}',
        [lambda g: g.replace('"ts":', '"ts":"XXXXXXXXXX.XXXXXX","x":', 1), lambda g: g[:-1]],
    ),
    "zeek-ssl": (
        [],
        lambda r, h: (
            f'{{"ts":{TS + r.random()},"uid":"C{r.getrandbits(48):x}","id.orig_h":"10.0.0.{r.randrange(250)}",'
            f'"id.resp_h":"1.2.3.4","server_name":"{h}"}}'
        ),
        [lambda g: g.replace('"ts":', '"ts":"XXXXXXXXXX.XXXXXX","x":', 1), lambda g: g[:-1]],
    ),
    "zeek-http": (
        [],
        lambda r, h: (
            f'{{"ts":{TS + r.random()},"uid":"C{r.getrandbits(48):x}","id.orig_h":"10.0.0.{r.randrange(250)}",'
            f'"method":"POST","host":"{h}","uri":"/v1","request_body_len":{r.randrange(99)}}}'
        ),
        [lambda g: g.replace('"ts":', '"ts":"XXXXXXXXXX.XXXXXX","x":', 1), lambda g: "{" + g],
    ),
    "squid": (
        [],
        lambda r, h: (
            f"{TS + r.random():.3f} 12 10.0.0.{r.randrange(250)} TCP_TUNNEL/200 {r.randrange(99999)} "
            f"CONNECT {h}:443 - HIER_DIRECT/1.2.3.4 -"
        ),
        [lambda g: g.replace(" TCP_TUNNEL/200 ", " TCP_TUNNEL/200 -", 1), lambda g: "XXXXXXXXXX.XXX" + g[14:]],
    ),
    "bind-query": (
        [],
        lambda r, h: (
            f"25-Nov-2025 10:00:01.123 client @0x7f 10.0.0.{r.randrange(250)}#5353 ({h}): query: {h} IN A + (10.0.0.1)"
        ),
        [lambda g: g.replace(" query: ", " answer: ", 1)],
    ),
    "dnsmasq": (
        [],
        lambda r, h: f"Nov 25 10:00:00 dnsmasq[7]: query[A] {h} from 10.0.0.{r.randrange(250)}",
        [lambda g: g.replace("dnsmasq[7]", "named[7]", 1)],
    ),
    "pihole": (
        [],
        lambda r, h: f"Nov 25 10:00:00 pihole-FTL[7]: query[AAAA] {h} from 10.0.0.{r.randrange(250)}",
        [lambda g: g.replace("pihole-FTL[7]", "sshd[7]", 1)],
    ),
    "cef": (
        [],
        lambda r, h: f"CEF:0|Acme|Gate|1|1|web|3|src=10.0.0.{r.randrange(250)} dhost={h} out=1 in=2 rt=1764064800000",
        [lambda g: g.replace("out=1", "out=99999999999999999999", 1), lambda g: g.replace("rt=1", "rt=x", 1)],
    ),
    "csv": (
        ["ts,src,dst,sent,received"],
        lambda r, h: f"{TS + r.randrange(999)},10.0.0.{r.randrange(250)},{h},{r.randrange(99)},{r.randrange(99)}",
        [lambda g: "X" + g, lambda g: g.replace(",", ",-", 4)[: g.rindex(",") + 2] + "-1"],
    ),
}
MAPPING = {"time": "ts", "source": "src", "host": "dst", "bytes_up": "sent", "bytes_down": "received"}


def _broken(rng: random.Random, good: str, specific: list[Callable[[str], str]], long_lines: list[int]) -> bytes:
    kind = rng.randrange(5 + len(specific))
    if kind == 0:
        return good.encode()[:20] + b"\xff\xfe\xc3" + good.encode()[20:]
    if kind == 1:
        return good.encode().replace(b" ", b"\x01", 1).replace(b"\t", b"\x01", 1).replace(b",", b"\x01", 1)
    if kind == 2:
        return b"~" + bytes(rng.choice(b"abc \t{}|=:,\x00") for _ in range(rng.randrange(1, 80)))
    if kind == 3 and len(long_lines) < 3:
        long_lines.append(1)
        return b"~" + b"x" * (MAX_LINE_BYTES + 10)
    if kind in (3, 4):
        return b"~" + good.encode()[::-1]
    return specific[kind - 5](good).encode()


@pytest.mark.timeout(120)
@pytest.mark.parametrize("fmt", list(FORMATS))
def test_100000_lines_with_a_fifth_broken(tmp_path: Path, fmt: str) -> None:
    header, good_line, specific = FORMATS[fmt]
    rng = random.Random(fmt)
    rows: list[bytes] = [line.encode() for line in header]
    bad_numbers: list[int] = []
    ai_lines = 0
    long_lines: list[int] = []
    for _ in range(LINES):
        host = rng.choice(HOSTS)
        good = good_line(rng, host)
        if rng.random() < 0.2:
            rows.append(_broken(rng, good, specific, long_lines))
            bad_numbers.append(len(rows))
        else:
            rows.append(good.encode())
            ai_lines += host in AI_HOSTS
    path = tmp_path / f"fuzz.{fmt}"
    path.write_bytes(b"\n".join(rows) + b"\n")

    reading = read_logs([path], ai_catalogue(), format=fmt, mapping=MAPPING, threads=2)

    assert (reading.files[0].lines, reading.files[0].skipped) == (LINES, len(bad_numbers))
    assert [b.line for b in reading.bad_lines] == bad_numbers[:5]
    assert all(len(b.text) <= 200 for b in reading.bad_lines)
    if fmt != "zeek-conn":  # a conn log alone names no hosts
        assert sum(s.requests for s in reading.sightings) == ai_lines
        assert {s.host for s in reading.sightings} == AI_HOSTS


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(fmt=st.sampled_from(list(FORMATS)), lines=st.lists(st.binary(max_size=300), min_size=1, max_size=40))
def test_arbitrary_bytes_never_crash_a_reader(tmp_path: Path, fmt: str, lines: list[bytes]) -> None:
    header, good_line, _ = FORMATS[fmt]
    path = tmp_path / "arbitrary.log"
    good = good_line(random.Random(0), "chat.openai.com").encode()
    path.write_bytes(b"\n".join([*(h.encode() for h in header), good, *lines]) + b"\n")

    reading = read_logs([path], ai_catalogue(), format=fmt, mapping=MAPPING)

    (logfile,) = reading.files
    assert 0 <= logfile.skipped <= logfile.lines
    assert all(b.line >= 1 and len(b.text) <= 200 for b in reading.bad_lines)


def test_a_quoted_newline_in_a_short_row_of_a_csv_export_is_read(tmp_path: Path) -> None:
    """Found by the property above: DuckDB's parallel CSV scanner refused a quoted newline in a row that had to
    be padded, and the whole file with it."""
    path = tmp_path / "export.csv"
    path.write_text(f'ts,src,dst,sent,received\n{TS},10.0.0.5,chat.openai.com,1,2\n"a\nb",x\n', encoding="utf-8")
    reading = read_logs([path], ai_catalogue(), format="csv", mapping=MAPPING)
    assert [s.host for s in reading.sightings] == ["chat.openai.com"] and reading.files[0].skipped == 1
