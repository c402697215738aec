"""A conventional command line: help without Typer's artefacts, -h and --version, choices that completion offers,
one meaning per option, read commands that name their database and never make one, progress a log can see."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import typer.main
from typer.testing import CliRunner

from podium import Podium, Settings
from podium._version import __version__
from podium.cli import app
from podium.cli._common import ProgressLines, console, progress_bar
from podium.store import safe_url

runner = CliRunner()


def every_command() -> list[tuple[list[str], Any]]:
    found: list[tuple[list[str], Any]] = []

    def walk(command: Any, path: list[str]) -> None:
        found.append((path, command))
        for name, sub in getattr(command, "commands", {}).items():
            walk(sub, [*path, name])

    walk(typer.main.get_command(app), [])
    return found


def test_help_has_no_typer_artefacts_and_h_is_help() -> None:
    for path, command in every_command():
        shown = runner.invoke(app, [*path, "--help"], terminal_width=120)
        assert shown.exit_code == 0, (path, shown.output)
        for artefact in ("<bool>", "<list[", "<str>", "<int", "<float>", "<path>"):
            assert artefact not in shown.output, (path, artefact, shown.output)
        arguments = [p.name for p in command.params if p.param_type_name == "argument"]
        for name in arguments:
            assert f"{{{name}}}" not in shown.output, (path, shown.output)
            assert name.upper() in shown.output, (path, name, shown.output)
        assert runner.invoke(app, [*path, "-h"], terminal_width=120).output == shown.output, path


def test_version() -> None:
    shown = runner.invoke(app, ["--version"])
    assert (shown.exit_code, shown.output) == (0, f"podium {__version__}\n")


def test_choices_are_listed_for_help_and_completion() -> None:
    for args, text in ((["agents", "add"], "tier:TIER"), (["review", "list"], "team:NAME")):  # nothing dropped
        assert text in runner.invoke(app, [*args, "--help"], env={"COLUMNS": "200"}).output, args
    for args, choices in (
        (["costs"], "[workflow|run|agent|team]"),
        (["budgets", "set"], "[stop|review]"),
        (["agents", "add"], "[local|intermediate|frontier]"),
        (["runs", "list"], "[pending|enqueued|success|error|cancelled"),
        (["review", "list"], "[open|pending|held|approved|rejected|expired|all]"),
    ):
        assert choices in runner.invoke(app, [*args, "--help"], env={"COLUMNS": "200"}).output, args
    refused = runner.invoke(app, ["runs", "list", "--status", "SUCCESS", "--help"], terminal_width=200)
    assert refused.exit_code == 0  # one casing shown, either accepted


def test_an_option_means_one_thing_everywhere() -> None:
    """`--reason` filters requests by exception reason wherever it appears; why something was done is `--note`."""
    helps: dict[str, set[str]] = {"--reason": set(), "--note": set()}
    for path, command in every_command():
        for param in command.params:
            for option in helps.keys() & set(getattr(param, "opts", ())):
                helps[option].add(f"{' '.join(path)}: {param.help}")
    assert helps["--reason"], "no command filters by reason any more?"
    assert all("reason code" in h for h in helps["--reason"]), helps["--reason"]
    assert all(re.search(r"\bWhy\b", h) for h in helps["--note"]), helps["--note"]
    assert any(h.startswith("kill:") for h in helps["--note"]) and any(
        h.startswith("restore:") for h in helps["--note"]
    )


@pytest.mark.parametrize(
    "command",
    [
        ("runs", "list"),
        ("review", "list"),
        ("people", "list"),
        ("agents", "list"),
        ("audit", "list"),
        ("budgets", "list"),
        ("governance", "report"),
        ("keys", "list"),
        ("models", "list"),
        ("costs",),
        ("route", "status"),
    ],
)
def test_a_read_on_a_home_without_a_database_says_so_and_makes_none(tmp_path: Path, command: tuple[str, ...]) -> None:
    home = tmp_path / "nowhere"
    shown = runner.invoke(app, ["--home", str(home), *command])
    assert shown.exit_code == 2, shown.output
    where, error = shown.stderr.splitlines()
    assert where == f"home {home}, database sqlite:///{home}/podium.db"
    assert error.startswith("error: no podium database at ") and "podium init --admin EMAIL" in error
    assert not home.exists()


def test_a_read_names_its_home_and_database_on_stderr(settings: Settings) -> None:
    Podium.connect(settings).close()
    shown = runner.invoke(app, ["--home", str(settings.home), "--database-url", settings.resolved_database_url,
                                "runs", "list", "--json"])  # fmt: skip
    assert shown.exit_code == 0, shown.output
    assert shown.stdout == "[]\n"
    assert shown.stderr == f"home {settings.home}, database {safe_url(settings.resolved_database_url)}\n"


def test_long_work_prints_progress_lines_where_no_bar_is_seen() -> None:
    with console.capture() as captured:
        bar = progress_bar("Triaging tickets")
        assert isinstance(bar, ProgressLines)  # pytest's stdout is not a terminal
        with bar:
            task = bar.add_task("triage", total=40)
            for done in range(1, 41):
                bar.update(task, completed=done, total=40)
    lines = captured.get().splitlines()
    assert lines[0] == "Triaging tickets: 1/40 (0 s)" and lines[-1] == "Triaging tickets: 40/40 (0 s)"
    assert len(lines) <= 3  # at most one line every 5 s in between
