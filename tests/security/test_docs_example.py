"""The example docs/security.md shows runs as the page says."""

from __future__ import annotations

import runpy
from pathlib import Path

from podium import Settings

EXAMPLE = Path(__file__).parents[2] / "docs/examples/information_flow.py"


def test_the_information_flow_example_runs_as_shown(sqlite_settings: Settings) -> None:
    said = runpy.run_path(str(EXAMPLE), run_name="information_flow")["main"](sqlite_settings)
    assert said == [
        "sent",
        "stopped: tool 'send_email' of agent 'assistant' needs a person's approval "
        "(policy:untrusted-data-drives-no-action), which only a workflow run can wait for: make the call in a "
        "workflow's step.",
        "audited: denied, untrusted body, to",
    ]
