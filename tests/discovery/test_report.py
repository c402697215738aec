"""A discovery run end to end below the readers, on SQLite and PostgreSQL: hand-built readings stand in for
`read_logs`. Re-ingesting a file changes nothing, a later week adds to the trend, DNS-only use has no bytes, the
JSON is exactly the documented shape, and the HTML is self-contained with every string from a log escaped."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import pytest
import sqlalchemy as sa

from podium import Podium, Settings
from podium.discovery import BadLine, Catalogue, Fingerprint, LogFile, Reading, Service, Sighting
from podium.discovery._html import render_html
from podium.discovery._report import FINDING_FIELDS
from podium.discovery._scan import discover
from podium.policy import Identity
from podium.store import tables
from podium.testing import sign_in

ADMIN = Identity("person", "admin@podium.test", "test")  # the test admin, as podium.testing names it
CATALOGUE = Catalogue(
    [
        Service("openai", "ChatGPT", "OpenAI", "chat", ("openai.com", "chatgpt.com"), risk=62),
        Service("claude", "Claude", "Anthropic", "chat", ("claude.ai",), risk=41),
        Service("copilot", "GitHub Copilot", "GitHub", "code", ("githubcopilot.com",), risk=30, sanctioned=True),
    ]
)
HOSTILE_HOST = "<script>alert(1)</script>.openai.com"
HOSTILE_USER = '<img src=x onerror="alert(2)">'


def at(moment: str) -> float:
    return dt.datetime.fromisoformat(moment).replace(tzinfo=dt.UTC).timestamp()


def seen(source: str, user: str | None, service: str, host: str, moment: str, requests: int, up: int | None,
         down: int | None) -> Sighting:  # fmt: skip
    return Sighting(source, user, service, host, moment[:10], requests, up, down, at(moment), at(moment) + 3600)


class FakeReader:
    """Stands in for `read_logs`: each path gives the sightings written for it here, and reading is counted."""

    def __init__(self, sightings: Mapping[str, list[Sighting]]) -> None:
        self.sightings = sightings
        self.read: list[str] = []

    def __call__(
        self,
        paths: Sequence[Path],
        catalogue: Catalogue,
        *,
        format: str | None = None,
        mapping: Mapping[str, str] | None = None,
        fingerprints: Mapping[Path, Fingerprint] | None = None,
    ) -> Reading:
        files, found = [], []
        for path in paths:
            self.read.append(path.name)
            found += self.sightings[path.name]
            files.append(LogFile(path, "squid", (fingerprints or {})[path].sha256, lines=100, skipped=2))
        bad = [BadLine(str(paths[0]), 7, "not a squid line", "\x1b[31m<b>garbage</b>")]
        return Reading(found, files, bad)


@pytest.fixture
def pod(settings: Settings) -> Iterator[Podium]:
    with Podium.connect(settings) as connected:
        sign_in(connected, "admin@podium.test")  # made as `podium init` makes one
        yield connected


@pytest.fixture
def logs(tmp_path: Path) -> dict[str, Path]:
    paths = {}
    for name in ("week10.log", "week11.log"):
        paths[name] = tmp_path / name
        paths[name].write_text(f"the bytes of {name}\n", encoding="utf-8")
    return paths


READER = {
    "week10.log": [
        seen("10.0.0.5", "ana@example.com", "openai", "chat.openai.com", "2026-03-02T09:00", 3, 1_000, 50_000),
        seen("10.0.0.5", "ana@example.com", "openai", "api.openai.com", "2026-03-03T10:00", 2, 500, None),
        seen("10.0.0.6", None, "claude", "claude.ai", "2026-03-04T11:00", 5, None, None),  # DNS only: visits
        seen("10.0.0.7", HOSTILE_USER, "openai", HOSTILE_HOST, "2026-03-04T12:00", 1, 7, 9),
    ],
    "week11.log": [
        seen("10.0.0.5", "ana@example.com", "openai", "chat.openai.com", "2026-03-10T09:00", 4, 100, 200),
        seen("10.0.0.8", "bo@example.com", "copilot", "api.githubcopilot.com", "2026-03-11T09:00", 9, 90, 900),
    ],
}


def stored_rows(pod: Podium) -> int:
    with pod.engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(tables.discovery_sightings)).scalar_one())


def test_reingesting_changes_nothing_and_a_later_week_adds_to_the_trend(pod: Podium, logs: dict[str, Path]) -> None:
    reader = FakeReader(READER)
    first = discover(pod, [logs["week10.log"]], by=ADMIN, read=reader, catalogue=CATALOGUE)
    assert {s.service.id for s in first.new_services} == {"openai", "claude"}
    openai = next(s for s in first.services if s.service.id == "openai")
    assert (openai.requests, openai.bytes_up, openai.bytes_down, openai.weekly) == (6, 1_507, 50_009, {"2026-W10": 6})
    assert (openai.users, openai.active_days) == (2, 3)
    claude = next(f for f in first.findings if f.service == "claude")
    assert (claude.user, claude.requests, claude.bytes_up, claude.bytes_down) == ("10.0.0.6", 5, None, None)
    rows = stored_rows(pod)

    again = discover(pod, [logs["week10.log"]], by=ADMIN, read=reader, catalogue=CATALOGUE)
    assert reader.read == ["week10.log"]  # known by its sha256: not read again
    assert stored_rows(pod) == rows
    assert again.findings == first.findings and [f.already_ingested for f in again.files] == [True]
    assert (again.skipped_lines, again.new_services) == (0, [])  # nothing new since the last run

    later = discover(pod, [logs["week10.log"], logs["week11.log"]], by=ADMIN, read=reader, catalogue=CATALOGUE)
    assert reader.read == ["week10.log", "week11.log"]
    assert [(f.path, f.already_ingested) for f in later.files] == [
        (str(logs["week11.log"]), False),
        (str(logs["week10.log"]), True),
    ]
    openai = next(s for s in later.services if s.service.id == "openai")
    assert openai.weekly == {"2026-W10": 6, "2026-W11": 4}
    assert [s.service.id for s in later.new_services] == ["copilot"]
    ana = next(f for f in later.findings if f.user == "ana@example.com")
    assert (ana.domain, ana.requests, ana.active_days) == ("openai.com", 9, 3)
    assert (ana.bytes_up, ana.bytes_down) == (1_600, 50_200)
    assert ana.first_seen == at("2026-03-02T09:00") and ana.last_seen == at("2026-03-10T10:00")


def test_the_json_is_exactly_the_documented_shape(pod: Podium, logs: dict[str, Path]) -> None:
    report = discover(pod, list(logs.values()), by=ADMIN, read=FakeReader(READER), catalogue=CATALOGUE)
    document = json.loads(json.dumps(report.as_json()))
    assert sorted(document) == ["files", "findings", "services", "skipped_lines"]
    assert document["skipped_lines"] == 4
    for finding in document["findings"]:
        assert list(finding) == list(FINDING_FIELDS)
        assert isinstance(finding["user"], str) and isinstance(finding["requests"], int)
        assert finding["department"] is None or isinstance(finding["department"], str)
        assert isinstance(finding["sanctioned"], bool) and 0 <= finding["risk"] <= 100
        for when in ("first_seen", "last_seen"):
            assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", finding[when])
    claude = next(f for f in document["findings"] if f["service"] == "claude")
    assert (claude["bytes_up"], claude["bytes_down"]) == (None, None)  # null, never 0
    copilot = next(f for f in document["findings"] if f["service"] == "copilot")
    assert (copilot["domain"], copilot["sanctioned"], copilot["risk"]) == ("githubcopilot.com", True, 30)
    assert [f["service"] for f in document["services"]][:1] == ["openai"]  # the most requests first
    assert {"path", "format", "sha256", "lines", "skipped", "already_ingested"} == set(document["files"][0])

    table = list(csv.reader(io.StringIO(report.findings_csv())))
    assert table[0] == list(FINDING_FIELDS) and len(table) == len(report.findings) + 1
    assert table[1][:7] == ["bo@example.com", "", "copilot", "githubcopilot.com", "9", "90", "900"]
    claude_row = next(row for row in table if row[2] == "claude")
    assert claude_row[5:7] == ["", ""]  # unknown bytes: empty cells, not 0


def test_the_html_is_self_contained_and_shows_log_strings_literally(pod: Podium, logs: dict[str, Path]) -> None:
    report = discover(pod, list(logs.values()), by=ADMIN, read=FakeReader(READER), catalogue=CATALOGUE)
    page = render_html(report)
    assert page.count("<svg") == 3  # requests per service, weekly trend, risk against use
    assert "<script" not in page and "javascript:" not in page
    assert not re.search(r"<[^>]*\b(src|href)\s*=", page)  # no tag fetches anything
    assert "@import" not in page and "url(" not in page
    for address in re.findall(r"https?://[^\s\"'<>]*", page):
        assert address.startswith(("http://www.w3.org/2000/svg", "http://www.w3.org/1999/xlink")), address
    assert "&lt;script&gt;alert(1)&lt;/script&gt;.openai.com" in page
    assert "&lt;img src=x onerror=&quot;alert(2)&quot;&gt;" in page
    assert "\\x1b[31m&lt;b&gt;garbage&lt;/b&gt;" in page and "week10.log:7: not a squid line" in page
    assert "already ingested" not in page.split("<h2>Files</h2>")[1].split("</table>")[0]


def test_the_csv_shows_control_characters_as_escapes_and_quotes_formulas(pod: Podium, tmp_path: Path) -> None:
    log = tmp_path / "terminal.log"
    log.write_text("a log whose users would act on a terminal or a spreadsheet\n", encoding="utf-8")
    users = {"10.0.0.1": "\x1b]0;owned\x07\x1b[31mred", "10.0.0.2": '=HYPERLINK("http://x")', "10.0.0.3": "x\u202ey"}
    reader = FakeReader(
        {log.name: [seen(a, u, "openai", "chat.openai.com", "2026-03-02T09:00", 1, 1, 1) for a, u in users.items()]}
    )
    report = discover(pod, [log], by=ADMIN, read=reader, catalogue=CATALOGUE)

    text = report.findings_csv()
    assert all(c.isprintable() or c == "\n" for c in text)  # `cat` of the file acts on nothing
    cells = {row[0] for row in csv.reader(io.StringIO(text))}
    assert {"\\x1b]0;owned\\x07\\x1b[31mred", '\'=HYPERLINK("http://x")', "x\\u202ey"} <= cells
