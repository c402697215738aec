"""`podium route status`: whether each live router keeps its quality floor on the outcomes reported to it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

import podium
from podium import Podium, Settings
from podium.cli import app
from podium.cli._common import console
from podium.governance import ModelFloor, floor_status
from podium.models import RoutingSetting
from podium.store import tables
from tests._openai_server import FakeProvider
from tests.models.test_providers import agent, providers, routed_and_judged, routed_settings

__all__ = ["providers"]  # the fixture, used by name below
runner = CliRunner()


@pytest.fixture
def pod(settings: Settings) -> Iterator[Podium]:
    with podium.launch(settings, podium.App()) as launched:
        yield launched


def routed(pod: Podium, router: str, outcomes: list[tuple[str, int | None]], start: int = 0) -> None:
    """Routed requests of `router` as the route stage stores them: (model, success or None), oldest first."""
    rows = [
        {"id": f"{router}-{start + i}", "router": router, "run_id": None, "model": model, "features": "[]",
         "success": success, "at": float(start + i)}
        for i, (model, success) in enumerate(outcomes)
    ]  # fmt: skip
    with pod.engine.begin() as conn:
        conn.execute(tables.routed.insert(), rows)


def test_the_interval_is_wilsons(pod: Podium) -> None:
    """8 successes of 10 at a one-sided 97.5% (a two-sided 95% interval): 0.490 to 0.943, as published tables
    give it; at a floor of 0.8 that cannot tell either way."""
    routed(pod, "a:cheap|strong", [("cheap", 1)] * 8 + [("strong", 0)] * 2)
    (status,) = floor_status(pod.engine, RoutingSetting(floor=0.8, floor_confidence=0.975))
    assert (status.low, status.high) == (pytest.approx(0.4902, abs=1e-4), pytest.approx(0.9433, abs=1e-4))
    assert (status.quality, status.judged, status.verdict) == (0.8, 10, "unsure")
    assert "10 recent outcomes cannot tell yet" in status.advice()


def test_each_router_is_told_holding_below_or_not_yet_known_with_what_to_do(pod: Podium) -> None:
    routed(pod, "good:cheap|strong", [("cheap", 1)] * 170 + [("strong", 1)] * 20 + [("cheap", 0)] * 10)
    weak = [("small", int(i < 30)) for i in range(100)] + [("mid", int(i < 50)) for i in range(100)]
    routed(pod, "weak:small|mid", weak)  # neither model reaches 80%
    routed(pod, "starved:cheap|strong", [("cheap", 1)] * 150 + [("cheap", 0)] * 50)  # strong never tried lately
    routed(pod, "silent:cheap|strong", [("cheap", None)] * 5)
    statuses = {s.router: s for s in floor_status(pod.engine, RoutingSetting(floor=0.8))}
    assert {name: s.verdict for name, s in statuses.items()} == {
        "good:cheap|strong": "holding",
        "weak:small|mid": "below",
        "starved:cheap|strong": "below",
        "silent:cheap|strong": "no outcomes",
    }
    assert "No model reaches the floor on this work (the best is mid at 50%): lower routing.floor or add a" in (
        statuses["weak:small|mid"].advice()
    )
    assert "strong had no recent outcome: route work to it" in statuses["starved:cheap|strong"].advice()
    assert statuses["starved:cheap|strong"].models[1] == ModelFloor("strong", 0, 0, None)
    assert "No outcomes reported yet: report them (podium.route_outcome" in statuses["silent:cheap|strong"].advice()
    assert [(m.model, m.requests, m.judged, m.quality) for m in statuses["weak:small|mid"].models] == [
        ("small", 100, 100, 0.3),
        ("mid", 100, 100, 0.5),
    ]


def test_only_the_recent_window_of_outcomes_is_judged(pod: Podium) -> None:
    """A router that was failing and learnt: its old failures are history, its last `floor_window` outcomes hold."""
    routed(pod, "learnt:cheap|strong", [("cheap", 0)] * 300)
    routed(pod, "learnt:cheap|strong", [("strong", 1)] * 100, start=300)
    (status,) = floor_status(pod.engine, RoutingSetting(floor=0.8, floor_window=100))
    assert (status.requests, status.judged, status.quality, status.verdict) == (400, 100, 1.0, "holding")
    (everything,) = floor_status(pod.engine, RoutingSetting(floor=0.8, floor_window=400))
    assert (everything.quality, everything.verdict) == (0.25, "below")


def test_the_command_shows_each_router_and_fails_a_check_when_one_is_below(
    pod: Podium, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(console, "_width", 2000)  # a line each, not wrapped at 80 columns
    routed(pod, "good:cheap|strong", [("cheap", 1)] * 200)
    home = ["--home", str(pod.settings.home), "--database-url", pod.settings.resolved_database_url]
    shown = runner.invoke(app, [*home, "route", "status", "--check"])
    assert shown.exit_code == 0, shown.output
    assert "good:cheap|strong" in shown.stdout and "holding" in shown.stdout and "100% (99%-100%)" in shown.stdout
    routed(pod, "weak:small|mid", [("small", 0)] * 50)
    checked = runner.invoke(app, [*home, "route", "status", "--check"])
    assert checked.exit_code == 1 and "below" in checked.stdout
    assert "mid had no recent outcome: route work to it and report the outcomes before lowering routing.floor" in (
        checked.stdout
    )
    listed = json.loads(runner.invoke(app, [*home, "route", "status", "--json"]).stdout)
    assert [(s["router"], s["verdict"], s["judged"]) for s in listed] == [
        ("good:cheap|strong", "holding", 200),
        ("weak:small|mid", "below", 50),
    ]


def test_an_empty_home_says_how_to_route(pod: Podium) -> None:
    home = ["--home", str(pod.settings.home), "--database-url", pod.settings.resolved_database_url]
    shown = runner.invoke(app, [*home, "route", "status"])
    assert shown.exit_code == 0 and "No routed requests yet" in shown.stdout


def test_a_workflow_router_s_reported_outcomes_are_what_it_is_judged_on(
    tmp_path: Path, providers: tuple[FakeProvider, FakeProvider]
) -> None:
    """Through the real route stage: a verifier accepts only the strong model's answers, the router learns to pay
    for it, and the status counts exactly the outcomes the workflow reported, per model."""
    cheap, strong = providers
    with podium.launch(routed_settings(tmp_path, cheap, strong), podium.App(agents=[agent])) as pod:
        answers = [routed_and_judged.start(f"question {i} about my card").result() for i in range(30)]
        (status,) = floor_status(pod.engine, pod.config.routing)
    by_model = {m.model: (m.requests, m.quality) for m in status.models}
    strong_answers = sum(answer.startswith("strong") for answer in answers)
    assert status.router == "routed-asker:cheap|strong" and (status.requests, status.judged) == (30, 30)
    assert status.quality == pytest.approx(strong_answers / 30)
    assert by_model == {"cheap": (30 - strong_answers, 0.0), "strong": (strong_answers, 1.0)}
