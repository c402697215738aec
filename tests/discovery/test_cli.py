"""`podium discover LOG...` end to end through the real readers, on SQLite and PostgreSQL: tables, --json, --csv,
--html, a second run that counts nothing twice, and mistakes that end in one line with the fix."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

from typer.testing import CliRunner

from podium import Podium, Settings
from podium.cli import app
from podium.testing import key_for

runner = CliRunner()
SQUID = """\
1772442000.123    250 10.0.0.5 TCP_TUNNEL/200 5120 CONNECT chat.openai.com:443 ana HIER_DIRECT/104.18.32.47 -
1772442100.456    120 10.0.0.6 TCP_MISS/200 20480 GET http://claude.ai/api - HIER_DIRECT/1.2.3.4 text/html
1772442200.000     80 10.0.0.7 TCP_MISS/200 999 GET http://example.com/ - HIER_DIRECT/1.2.3.4 text/html
this is not a squid line
"""


def podium(settings: Settings, *args: str, key: str | None = None) -> object:
    """`podium …` as the test admin (made on first use), or with `key`."""
    if key is None:
        with Podium.connect(settings) as pod:
            key = key_for(pod, "admin@podium.test")
    base = ["--home", str(settings.home), "--database-url", settings.resolved_database_url, "--key", key]
    return runner.invoke(app, [*base, *args], terminal_width=160)


def test_discover_reads_a_log_once_and_reports_it_every_way(settings: Settings, tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    log.write_text(SQUID, encoding="utf-8")
    out = {kind: tmp_path / f"report.{kind}" for kind in ("json", "csv", "html")}
    first = podium(settings, "discover", str(log), *(arg for k, p in out.items() for arg in (f"--{k}", str(p))))
    assert first.exit_code == 0, first.output
    assert "AI services seen" in first.stdout and "openai-chatgpt" in first.stdout
    assert f"{log}:4: not a Squid native access.log line" in first.stdout
    document = json.loads(out["json"].read_text(encoding="utf-8"))
    assert sorted(document) == ["files", "findings", "services", "skipped_lines"]
    ana = next(f for f in document["findings"] if f["user"] == "ana")
    assert (ana["service"], ana["domain"], ana["requests"], ana["bytes_down"]) == (
        "openai-chatgpt",
        "openai.com",
        1,
        5120,
    )
    assert document["skipped_lines"] == 1 and document["files"][0]["already_ingested"] is False
    assert out["csv"].read_text(encoding="utf-8").startswith("user,department,service,domain,requests,")
    assert "<svg" in out["html"].read_text(encoding="utf-8")

    again = podium(settings, "discover", "scan", str(log), "--json", "-")  # scan by name; JSON to stdout
    assert again.exit_code == 0, again.output
    repeated = json.loads(again.stdout)  # stdout is the JSON alone: progress went to stderr
    assert repeated["findings"] == document["findings"] and repeated["skipped_lines"] == 0
    assert repeated["files"][0]["already_ingested"] is True

    shown = podium(settings, "discover", str(log), "--by", "department")
    assert "already ingested" in shown.stdout and "(none)" in shown.stdout


def test_a_log_and_its_gzipped_copy_are_one_log(settings: Settings, tmp_path: Path) -> None:
    """Rotation gzips yesterday's log: reading it again, compressed, counts nothing twice."""
    log, packed = tmp_path / "access.log", tmp_path / "access.log.1.gz"
    log.write_text(SQUID, encoding="utf-8")
    packed.write_bytes(gzip.compress(SQUID.encode()))
    first = json.loads(podium(settings, "discover", str(log), "--json", "-").stdout)
    again = json.loads(podium(settings, "discover", str(packed), "--json", "-").stdout)
    assert again["files"][0]["already_ingested"] is True
    assert again["findings"] == first["findings"] and sum(f["requests"] for f in again["findings"]) == 2


def test_discover_help_lists_the_scan_and_the_commands_beside_it() -> None:
    shown = runner.invoke(app, ["discover", "--help"], terminal_width=160)
    assert shown.exit_code == 0
    assert "LOG... | COMMAND [ARGS]..." in shown.output and "scan" in shown.output


def test_mistakes_end_in_one_line_with_the_fix(settings: Settings, tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    log.write_text(SQUID, encoding="utf-8")
    for args, said in (
        ([str(tmp_path / "missing.log")], "there is no such file. Give the paths of log files."),
        ([str(log), "--map", "host"], "give FIELD=COLUMN pairs separated by commas"),
        ([str(log), "--json", str(log)], "is both a log to read and where the JSON report would go"),
        ([str(log), "--users", str(tmp_path / "none.csv")], "cannot read --users"),
    ):
        result = podium(settings, "discover", *args)
        assert result.exit_code == 2, (args, result.output)
        assert said in result.stderr and result.stderr.count("error:") == 1, (args, result.stderr)
