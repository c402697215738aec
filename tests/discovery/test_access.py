"""Who may read logs into the findings and read them back: what is stored is which person used which AI service,
so `podium discover LOG...` (Cedar `discovery.scan`) and the migration KPI (`discovery.read`) are an admin's, by
default; a refusal stores nothing and is audited, and each scan is one audit entry naming its files by digest,
never their lines."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner, Result

from podium import Podium, Settings
from podium.cli import app
from podium.discovery import migration
from podium.errors import ActionDenied
from podium.store import tables
from podium.testing import TEST_ADMIN, key_for, sign_in

runner = CliRunner()
SQUID = "1772442000.123 250 10.0.0.5 TCP_TUNNEL/200 5120 CONNECT chat.openai.com:443 ana HIER_DIRECT/1.2.3.4 -\n"
PAT = "pat@example.com"


def podium(settings: Settings, *args: str, key: str | None) -> Result:
    base = ["--home", str(settings.home), "--database-url", settings.resolved_database_url]
    return runner.invoke(app, [*base, *(["--key", key] if key else []), *args], terminal_width=160)


def audited(pod: Podium, action: str) -> list[tuple[str, str, dict[str, str]]]:
    log = tables.audit_log
    query = sa.select(log.c.actor, log.c.decision, log.c.detail).where(log.c.action == action).order_by(log.c.seq)
    with pod.engine.connect() as conn:
        return [(str(a), str(d), json.loads(detail)) for a, d, detail in conn.execute(query)]


def stored_runs(pod: Podium) -> int:
    with pod.engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(tables.discovery_runs)).scalar_one())


@pytest.fixture
def keys(sqlite_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> dict[str, str | None]:
    monkeypatch.delenv("PODIUM_KEY", raising=False)  # "none" is no key at all
    with Podium.connect(sqlite_settings) as pod:
        return {"none": None, "person": key_for(pod, PAT, teams=["sales"]), "admin": key_for(pod, TEST_ADMIN)}


def test_only_an_admin_scans_and_each_scan_is_one_audit_entry_without_the_logs_lines(
    sqlite_settings: Settings, keys: dict[str, str | None], tmp_path: Path
) -> None:
    log = tmp_path / "access.log"
    log.write_text(SQUID, encoding="utf-8")
    refused = {kind: podium(sqlite_settings, "discover", str(log), key=keys[kind]) for kind in ("none", "person")}
    assert refused["none"].exit_code == 1 and "no key" in refused["none"].stderr
    assert refused["person"].exit_code == 1 and "may not discovery.scan" in refused["person"].stderr
    with Podium.connect(sqlite_settings) as pod:
        assert stored_runs(pod) == 0
        assert [(a, d) for a, d, _ in audited(pod, "discovery.scan")] == [(f"person:{PAT}", "denied")]

    done = podium(sqlite_settings, "discover", str(log), key=keys["admin"])
    assert done.exit_code == 0, done.output
    with Podium.connect(sqlite_settings) as pod:
        (actor, decision, detail) = audited(pod, "discovery.scan")[-1]
        assert (actor, decision, stored_runs(pod)) == (f"person:{TEST_ADMIN}", "allowed", 1)
        assert len(audited(pod, "discovery.scan")) == 2, "one entry for the run, beside the refusal"
        assert json.loads(detail["files"]) == {str(log): hashlib.sha256(SQUID.encode()).hexdigest()}
        assert detail["run"] and not any(word in json.dumps(detail) for word in ("TCP_TUNNEL", "chat.openai", "ana"))


def test_only_an_admin_reads_the_kpi_and_a_refusal_is_audited(
    sqlite_settings: Settings, keys: dict[str, str | None]
) -> None:
    assert podium(sqlite_settings, "discover", "kpi", key=keys["none"]).exit_code == 1
    refused = podium(sqlite_settings, "discover", "kpi", key=keys["person"])
    assert refused.exit_code == 1 and "may not discovery.read" in refused.stderr
    shown = podium(sqlite_settings, "discover", "kpi", key=keys["admin"])
    assert shown.exit_code == 0 and "Nothing sanctioned" in shown.stdout, shown.output
    with Podium.connect(sqlite_settings) as pod:
        with pytest.raises(ActionDenied, match="may not discovery.read"):
            migration(pod, by=sign_in(pod, PAT))
        assert [(a, d) for a, d, _ in audited(pod, "discovery.read")] == [(f"person:{PAT}", "denied")] * 2
