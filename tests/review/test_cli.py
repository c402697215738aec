"""The review queue from the command line: filters, a request shown whole, decisions, bad input, the metrics."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from typer.testing import CliRunner

import podium
from podium import Podium, Settings
from podium.cli import app
from podium.cli._common import console
from podium.testing import TEST_ADMIN, key_for
from tests.review import _app
from tests.review._app import LEAD
from tests.review.test_review import waiting

runner = CliRunner()


@pytest.fixture
def pod(sqlite_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[Podium]:
    monkeypatch.setattr(console, "_width", 250)  # whole ids in the tables (undone to "as wide as the terminal")
    with podium.launch(sqlite_settings, _app.app) as launched:
        _app.tamper["extra_usd"] = 0.0
        yield launched


def cli(pod: Podium, *args: str, key: str = "") -> tuple[int, str]:
    """Run `podium ARGS` on `pod`'s database, acting with `key` if given."""
    result = runner.invoke(
        app, ["--database-url", pod.settings.resolved_database_url, *(("--key", key) if key else ()), *args]
    )
    return result.exit_code, result.output + (str(result.exception) if result.exception else "")


def test_a_person_works_the_queue_from_the_cli(pod: Podium) -> None:
    admin = key_for(pod, TEST_ADMIN)
    assert cli(pod, "people", "add", "bob", "--team", "refunds", "--rate", "75", key=admin)[0] == 0
    bob = key_for(pod, "bob")
    big = _app.refund_flow.start("c-20", 640.0, note="broken blender")
    unsure = _app.refund_flow.start("c-21", 12.0, confidence=0.2)
    request, other = waiting(pod, big.id), waiting(pod, unsure.id)

    code, output = cli(pod, "review", "list", "--reason", "high_value")
    assert code == 0 and request.id in output and other.id not in output
    code, output = cli(pod, "review", "list", "--min-value", "100", "--waiting-on", "team:refunds")
    assert code == 0 and "$640.00" in output and other.id not in output

    code, output = cli(pod, "review", "show", request.id)
    assert code == 0
    for shown in ("high_value", "amount_usd", "640.0", request.action_digest, "team:refunds", LEAD, "then reject"):
        assert shown in output, shown

    code, output = cli(pod, "review", "edit", request.id, "--set", "amount_usd=many", key=bob)
    assert code != 0 and "amount_usd: expected number, got str 'many'" in output
    code, output = cli(pod, "review", "approve", request.id, key=key_for(pod, "mallory"))
    assert code != 0 and "may not review.decide" in output
    code, output = cli(pod, "review", "approve", key=bob)
    assert code != 0 and "name the requests to decide" in output

    assert cli(pod, "review", "claim", request.id, key=bob)[0] == 0
    code, output = cli(
        pod, "review", "edit", request.id, "--set", "amount_usd=320", "--minutes", "4",
        "--note", "half: item was used", "--digest", request.action_digest[:12], key=bob,
    )  # fmt: skip
    assert code == 0, output
    assert big.result() == "paid"
    code, output = cli(pod, "review", "reject", "--reason", "low_confidence", "--label", "refund", key=bob)
    assert code == 0 and f"{other.id}: rejected by bob" in output
    assert unsure.result() == "not paid: rejected"

    code, output = cli(pod, "review", "stats")
    assert code == 0
    for shown in ("exception rate", "100.0%", "judgment yield", "100%", "high_value", "low_confidence"):
        assert shown in output, shown
