"""`podium demo` end to end, twice, in real processes: the second run sends nothing again."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from podium import Podium, Settings
from tests._openai_server import FakeProvider
from tests.conftest import IntentModelFile

pytestmark = pytest.mark.slow

PODIUM = Path(sys.executable).parent / "podium"


def demo(settings: Settings, tickets: int, config: Path | None = None) -> str:
    done = subprocess.run(
        [
            str(PODIUM),
            "--database-url",
            settings.resolved_database_url,
            "--home",
            str(settings.home),
            "demo",
            "--tickets",
            str(tickets),
            "--seed",
            "3",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        env={**os.environ, "COLUMNS": "120", **({"PODIUM_CONFIG": str(config)} if config else {})},
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def row(output: str, label: str) -> str:
    line = next(line for line in output.splitlines() if line.startswith(f"│ {label}"))
    return line.split("│")[2].strip()


def test_the_demo_twice_sends_each_reply_once(settings: Settings, intent_model_file: IntentModelFile) -> None:
    with Podium.connect(settings) as pod:
        pod.trained.adopt("intent-classifier", intent_model_file.path, intent_model_file.sha256)

    first = demo(settings, 8)
    assert row(first, "tickets") == "8"
    auto, waiting = int(row(first, "auto-resolved")), int(row(first, "waiting for a person"))
    assert auto + waiting == 8
    assert row(first, "failed") == "0"
    assert row(first, "audit log (Merkle tree, signed head)").startswith("verified")
    assert row(first, "replies in outbox") == f"{auto} (one per answered ticket)"
    # Drafts could only go to the local model: no stronger tier to compare with, and the row says so.
    assert row(first, "drafts on a stronger tier") == "none declared (podium.toml, docs/costs.md)"
    assert row(first, "model calls, local tier") == f"{8 + 8}" and row(first, "tool calls") == f"{auto}"

    with Podium.connect(settings) as pod:
        sent_before = [(m.idempotency_key, m.body) for m in pod.outbox.messages()]
        ledger_cost = pod.ledger.totals().cost_nano_usd
    assert len(sent_before) == auto
    # The CLI prints the ledger's total: the figure is the database's, to the printed precision.
    assert row(first, "cost, all tickets") == f"${ledger_cost / 1e9:.6f}"
    costs = subprocess.run(
        [str(PODIUM), "--database-url", settings.resolved_database_url, "costs"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        env={**os.environ, "COLUMNS": "250"},
    ).stdout
    assert f"{ledger_cost / 1e9:.6f}" in next(line for line in costs.splitlines() if "support_triage" in line)

    second = demo(settings, 8)
    assert row(second, "replies in outbox") == f"{auto} (one per answered ticket)"
    with Podium.connect(settings) as pod:
        assert [(m.idempotency_key, m.body) for m in pod.outbox.messages()] == sent_before
        assert pod.ledger.totals().cost_nano_usd == ledger_cost, "the second run paid for work again"
        assert pod.verify_audit().ok


def test_drafts_are_routed_and_costed_against_the_strongest_tier(
    sqlite_settings: Settings, intent_model_file: IntentModelFile, tmp_path: Path
) -> None:
    """A frontier tier on a real loopback OpenAI-compatible server joins the draft candidates: the router keeps
    drafts local (cheapest; it has no outcomes yet) and the report prices the same calls on the frontier model."""
    with Podium.connect(sqlite_settings) as pod:
        pod.trained.adopt("intent-classifier", intent_model_file.path, intent_model_file.sha256)
    frontier = FakeProvider("frontier-drafter")
    with frontier.running():
        config = tmp_path / "podium.toml"
        config.write_text(
            f'[models.frontier-drafter]\ntier = "frontier"\nbase_url = "{frontier.base_url}"\n'
            'model = "gpt-4o"\nprice = "openai:gpt-4o"\n'
        )
        output = demo(sqlite_settings, 4, config)
    assert frontier.completions == 0
    baseline = row(output, "cost, all tickets, every draft on frontier-drafter")
    cost = float(row(output, "cost, all tickets (ledger)").removeprefix("$"))
    baseline_usd, ratio = baseline.split(" ")
    assert float(baseline_usd.removeprefix("$")) > cost and float(ratio.strip("()x")) > 1
    assert row(output, "frontier-drafter's price (frontier tier)") == "$2.5 / $10 per M tokens in / out"
    assert "model calls, frontier tier" not in output
