"""The CLI over a database with real runs in it."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from podium import Podium, Settings
from podium.cli import app
from podium.store import tables
from podium.testing import TEST_ADMIN, key_for
from tests import _apps
from tests._people import operator_key

runner = CliRunner()


@pytest.fixture
def with_runs(sqlite_settings: Settings) -> Settings:
    with _apps.launch(sqlite_settings):
        _apps.ask_then_note.options(run_id="cli-run").start("tester", "hello").result()
    return sqlite_settings


def invoke(settings: Settings, *args: str) -> str:
    result = runner.invoke(app, ["--home", str(settings.home), *args], terminal_width=200)
    assert result.exit_code == 0, result.output
    return result.output


def test_help_lists_every_command_group() -> None:
    output = runner.invoke(app, ["--help"], terminal_width=200).output
    for group in ("demo", "runs", "review", "agents", "policy", "audit", "kill", "restore", "governance", "models"):
        assert group in output


def test_runs_list_and_show(with_runs: Settings) -> None:
    assert "cli-run" in invoke(with_runs, "runs", "list")
    shown = invoke(with_runs, "runs", "show", "cli-run")
    assert "success" in shown and "tests.ask" in shown and "tests.use" in shown and "result: 'queued'" in shown


def test_agents_list_suspend_resume(with_runs: Settings) -> None:
    listed = invoke(with_runs, "agents", "list")
    assert "tester" in listed and "qa-lead@example.com" in listed
    with Podium.connect(with_runs) as pod:
        key = operator_key(pod, "ciso")
    assert "tester: suspended" in invoke(with_runs, "--key", key, "agents", "suspend", "tester")
    assert "tester: active" in invoke(with_runs, "--key", key, "agents", "resume", "tester")


def test_audit_verify_passes_then_fails_after_an_edit(with_runs: Settings) -> None:
    assert "audit log verified" in invoke(with_runs, "audit", "verify")
    engine = sa.create_engine(with_runs.resolved_database_url)
    with engine.begin() as conn:
        conn.execute(tables.audit_log.update().where(tables.audit_log.c.seq == 1).values(actor="agent:someone-else"))
    engine.dispose()
    result = runner.invoke(app, ["--home", str(with_runs.home), "audit", "verify"], terminal_width=200)
    assert result.exit_code == 1
    assert "entry 1 was altered" in result.output


def test_models_list_checks_the_packaged_model(sqlite_settings: Settings) -> None:
    Podium.connect(sqlite_settings).close()  # a home with a database: a read command never makes one
    output = invoke(sqlite_settings, "models", "list")
    assert "smollm2-135m" in output and "sha256 ok" in output


def test_agents_add_with_a_tier_ceiling_that_is_not_a_tier_is_one_error_line(sqlite_settings: Settings) -> None:
    with Podium.connect(sqlite_settings) as pod:
        key = key_for(pod, TEST_ADMIN)
    args = ["agents", "add", "bot", "--owner", "ops@example.com", "--tier-ceiling", "galactic"]
    result = runner.invoke(app, ["--home", str(sqlite_settings.home), "--key", key, *args], terminal_width=200)
    assert result.exit_code == 2, result.output
    (line,) = result.output.splitlines()  # a choice: the command line names the tiers, as completion offers them
    assert line.startswith("error: ") and "'galactic' is not one of 'local', 'intermediate', 'frontier'" in line
