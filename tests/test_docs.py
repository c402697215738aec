"""Every code example in the docs runs, and the README shows the same code as the example file."""

from __future__ import annotations

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
def test_the_quickstart_runs(sqlite_settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    namespace = runpy.run_path(str(REPO / "docs/examples/quickstart.py"), run_name="quickstart")
    namespace["main"](sqlite_settings)
    out = capsys.readouterr().out
    assert "LedgerTotals(calls_by_tier={'local': 1, 'tool': 1}" in out
