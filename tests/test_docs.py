"""Every code example in the docs runs, and the README shows the same code as the example file."""

from __future__ import annotations

import contextlib
import io
import runpy
from pathlib import Path

import pytest

from podium import Settings

REPO = Path(__file__).resolve().parents[1]


def test_the_readme_quickstart_is_the_example_file() -> None:
    readme = (REPO / "README.md").read_text()
    example = (REPO / "docs/examples/quickstart.py").read_text()
    shown = readme.split("## In code", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    assert shown == example.split('"""', 2)[2].strip() + "\n", "README and docs/examples/quickstart.py disagree"


@pytest.mark.slow
def test_the_quickstart_runs(sqlite_settings: Settings) -> None:
    namespace = runpy.run_path(str(REPO / "docs/examples/quickstart.py"), run_name="quickstart")
    # Not capsys: DBOS keeps a log handler on the stdout of its first launch, which capsys closes after the test.
    with contextlib.redirect_stdout(io.StringIO()) as printed:
        namespace["main"](sqlite_settings)
    out = printed.getvalue()
    assert "LedgerTotals(calls_by_tier={'local': 1, 'tool': 1}" in out


def test_the_stage_shown_in_the_architecture_is_the_example_file() -> None:
    page = (REPO / "docs/architecture.md").read_text()
    example = (REPO / "docs/examples/add_a_stage.py").read_text()
    shown = page.split("### How to add a stage", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    stage = "class NoSecretsOut" + example.split("class NoSecretsOut", 1)[1].split("\n\n\n", 1)[0] + "\n"
    assert shown == stage, "docs/architecture.md and docs/examples/add_a_stage.py disagree"
    assert len(stage.strip().splitlines()) <= 10


def test_the_added_stage_refuses_and_is_audited(sqlite_settings: Settings) -> None:
    namespace = runpy.run_path(str(REPO / "docs/examples/add_a_stage.py"), run_name="add_a_stage")
    assert namespace["main"](sqlite_settings) == [
        "posted",
        "refused: tool 'post_note' of agent 'note-taker' would send an API key: remove it.",
        "audited: denied by stage no-secrets-out",
    ]
