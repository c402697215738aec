"""A log read again after it grew, through the real readers, on SQLite and PostgreSQL: the live access.log read
one week and again the next (gzipped since, or given with its older copy) counts only its new lines, so the old
week's counts stay and the trend grows by the new week's use; a log that only starts like an ingested one is new
content, read whole; the same content plain or gzipped is one log."""

from __future__ import annotations

import datetime as dt
import gzip
from collections.abc import Iterator
from pathlib import Path

import pytest

from podium import Podium, Settings
from podium.discovery import Catalogue, LogFile, Service, read_logs
from podium.discovery._fingerprint import fingerprint
from podium.discovery._report import Report
from podium.discovery._scan import discover
from podium.discovery._store import stored_uses
from podium.policy import Identity
from podium.testing import sign_in

ADMIN = Identity("person", "admin@podium.test", "test")  # the test admin, as podium.testing names it
CATALOGUE = Catalogue(
    [
        Service("openai", "ChatGPT", "OpenAI", "chat", ("openai.com",), risk=62),
        Service("claude", "Claude", "Anthropic", "chat", ("claude.ai",), risk=41),
    ]
)
WEEK10, WEEK11, WEEK12 = "2026-03-02", "2026-03-09", "2026-03-16"


def squid(day: str, second: int, user: str, host: str) -> str:
    at = dt.datetime.fromisoformat(f"{day}T09:00:00+00:00").timestamp() + second
    return f"{at:.3f}    250 10.0.0.5 TCP_TUNNEL/200 100 CONNECT {host}:443 {user} HIER_DIRECT/104.18.32.47 -\n"


def use(day: str, count: int, user: str = "ana", host: str = "chat.openai.com") -> str:
    return "".join(squid(day, second, user, host) for second in range(count))


@pytest.fixture
def pod(settings: Settings) -> Iterator[Podium]:
    with Podium.connect(settings) as connected:
        sign_in(connected, "admin@podium.test")
        yield connected


def scan(pod: Podium, *paths: Path) -> Report:
    return discover(pod, list(paths), by=ADMIN, catalogue=CATALOGUE)


def per_day(pod: Podium) -> dict[tuple[str, str, str], int]:
    return {(u.user, u.service, u.day): u.use.requests for u in stored_uses(pod.engine)}


def test_a_log_that_grew_adds_only_its_new_lines_even_gzipped(pod: Podium, tmp_path: Path) -> None:
    week10 = use(WEEK10, 3) + use(WEEK10, 2, "bo", "claude.ai")
    live = tmp_path / "access.log"
    live.write_text(week10)
    first = scan(pod, live)
    assert per_day(pod) == {("ana", "openai", WEEK10): 3, ("bo", "claude", WEEK10): 2}
    assert first.files[0].lines == 5

    week11 = use(WEEK11, 4) + "this is not a squid line\n"
    rotated = tmp_path / "access.log.1.gz"
    rotated.write_bytes(gzip.compress((week10 + week11).encode()))  # the same log, grown, then gzipped
    later = scan(pod, rotated)
    assert [(f.lines, f.skipped, f.already_ingested) for f in later.files] == [(5, 1, False)]  # the new lines only
    assert per_day(pod) == {
        ("ana", "openai", WEEK10): 3,
        ("bo", "claude", WEEK10): 2,
        ("ana", "openai", WEEK11): 4,
    }
    openai = next(s for s in later.services if s.service.id == "openai")
    assert openai.weekly == {"2026-W10": 3, "2026-W11": 4}
    assert [(b.line, b.text) for b in later.bad_lines] == [(10, "this is not a squid line")]  # its line in the log

    again = scan(pod, live, rotated)  # both known now: nothing read, nothing added
    assert [f.already_ingested for f in again.files] == [True, True]
    week12 = use(WEEK12, 1, "bo", "claude.ai")
    live.write_text(week10 + week11 + week12)  # grown again: continues the longest ingested copy
    scan(pod, live)
    assert per_day(pod)[("bo", "claude", WEEK12)] == 1 and sum(per_day(pod).values()) == 10


def test_a_short_log_given_with_its_grown_copy_is_counted_once(pod: Podium, tmp_path: Path) -> None:
    noon, midnight = tmp_path / "noon.log.gz", tmp_path / "midnight.log"
    noon.write_bytes(gzip.compress(use(WEEK10, 2).encode()))
    midnight.write_text(use(WEEK10, 2) + use(WEEK11, 5))
    report = scan(pod, midnight, noon)
    assert [(f.path, f.lines) for f in report.files] == [(str(midnight), 5), (str(noon), 2)]
    assert per_day(pod) == {("ana", "openai", WEEK10): 2, ("ana", "openai", WEEK11): 5}


@pytest.mark.parametrize("lines", [3, 2_000], ids=["under 64 KiB", "over 64 KiB"])
def test_a_log_that_only_starts_like_an_ingested_one_is_read_whole(pod: Podium, tmp_path: Path, lines: int) -> None:
    """Same first lines (and, over 64 KiB, the same head digest), different later content: not a continuation."""
    first, other = tmp_path / "a.log", tmp_path / "b.log"
    first.write_text(use(WEEK10, lines) + use(WEEK10, 1, "bo", "claude.ai"))
    other.write_text(use(WEEK10, lines) + use(WEEK10, 1, "cy", "claude.ai") + use(WEEK11, 1))
    scan(pod, first)
    report = scan(pod, other)
    assert report.files[0].lines == lines + 2
    assert per_day(pod) == {
        ("ana", "openai", WEEK10): 2 * lines,  # b.log's own lines, counted as its own
        ("bo", "claude", WEEK10): 1,
        ("cy", "claude", WEEK10): 1,
        ("ana", "openai", WEEK11): 1,
    }


def test_lines_are_counted_as_the_reader_ends_them(tmp_path: Path) -> None:
    """CR, LF and CRLF each end one line, across chunk and prefix boundaries; a cut last line is skipped whole."""
    log = tmp_path / "mixed.log"
    earlier = tmp_path / "earlier.log"
    cases = {b"a\r\nb\rc\n": 3, b"a\r": 1, b"a\nhalf a li": 2, b"": 0}
    for start, lines in cases.items():
        earlier.write_bytes(start)
        log.write_bytes(start + b"\nne\r\nd\n")
        before = fingerprint(earlier)
        known = LogFile(earlier, "squid", before.sha256, 0, 0, size=before.size, head_sha256=before.head_sha256)
        assert fingerprint(log, [known]).skip_lines == lines, start


def test_a_csv_export_that_grew_is_read_from_its_new_rows_with_its_header(tmp_path: Path) -> None:
    header = "ts,src,uid,dst,sent,received\n"
    old = "1764064800,10.2.0.1,bob,chat.openai.com,100,2000\nnot a time,10.2.0.3,eve,chat.openai.com,1,1\n"
    new = "1764151200,10.2.0.1,bob,chat.openai.com,7,8\nnot a time either,10.2.0.3,eve,claude.ai,1,1\n"
    earlier, export = tmp_path / "day1.csv", tmp_path / "day2.csv"
    earlier.write_text(header + old)
    export.write_text(header + old + new)
    before = fingerprint(earlier)
    known = LogFile(earlier, "csv", before.sha256, 0, 0, size=before.size, head_sha256=before.head_sha256)
    grown = fingerprint(export, [known])
    assert grown.skip_lines == 3  # the header and the rows read before
    mapping = {"time": "ts", "source": "src", "user": "uid", "host": "dst", "bytes_up": "sent"}
    reading = read_logs([export], CATALOGUE, mapping=mapping | {"bytes_down": "received"}, fingerprints={export: grown})
    assert [(s.user, s.service, s.requests, s.bytes_up, s.day) for s in reading.sightings] == [
        ("bob", "openai", 1, 7, "2025-11-26")
    ]
    assert [(f.lines, f.skipped, f.sha256) for f in reading.files] == [(2, 1, grown.sha256)]
    assert [b.line for b in reading.bad_lines] == [5]  # its line in the whole export
