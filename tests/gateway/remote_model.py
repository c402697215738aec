"""A priced remote model for gateway tests: `remote`, an OpenAI-shaped upstream on loopback declared in podium.toml
at the intermediate tier, and a project policy that lets people call it (they call the local tier by default)."""

from __future__ import annotations

from pathlib import Path

MODEL = "remote"
CONFIG = """
[models.remote]
tier = "intermediate"
base_url = "{base_url}"
model = "gpt-4o-test"
price = {{ input_per_mtok = 2.5, output_per_mtok = 10.0 }}

[routing]
breaker_failures = 1000  # the tests count every request; none may be skipped for an open breaker
"""
POLICY = """
@id("people-use-intermediate-models")
permit (principal is Person, action == Action::"model.call", resource is Model)
when { resource.rank <= 2 };
"""


def write_project(folder: Path, base_url: str) -> tuple[Path, Path]:
    """Write podium.toml (`remote` at `base_url`) and the policies folder into `folder`; return their paths."""
    config, policies = folder / "podium.toml", folder / "policies"
    config.write_text(CONFIG.format(base_url=base_url), encoding="utf-8")
    policies.mkdir()
    (policies / "people.cedar").write_text(POLICY, encoding="utf-8")
    return config, policies
