"""The router's shadow sample in governed workflows: the strongest model also answers a share of the requests a
weaker one served, paid and audited; an agreeing answer shares the served one's outcome, a disagreeing one is a
fact the run's exception rules can send to a person. Real OpenAI-compatible servers on loopback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa
from pydantic_ai.messages import ModelResponse, TextPart, ToolCallPart

import podium
from podium.governance import answers_agree, floor_status, in_shadow_sample, said
from podium.governance._routed import _said
from podium.store import tables
from podium.testing import sign_in
from tests._openai_server import FakeProvider
from tests.models.test_providers import (
    agent,
    audit,
    ledger,
    post,
    poster,
    providers,
    routed_ask,
    routed_draft,
    routed_post,
    write_config,
)
from tests.review.test_review import waiting

__all__ = ["providers"]  # the fixture, used by name below
FLAG = "shadow_disagreed"


@podium.workflow(name="tests.shadowed")
def shadowed(prompt: str, good: bool) -> tuple[str, bool]:
    """Ask, tell the router how the served answer did, and ask whether the shadow disagreed."""
    answer = routed_ask(prompt)
    podium.route_outcome(good)
    return answer, podium.route_disagreed()


@podium.workflow(name="tests.shadow_checked_post", exceptions=podium.ExceptionRules(compliance_flags={FLAG}))
def shadow_checked_post(prompt: str) -> str:
    """Post the routed draft alone, unless the strongest model would have answered otherwise."""
    draft = routed_draft(prompt)
    if podium.route_disagreed():
        podium.assess(flags={FLAG}, summary="the strongest model answered differently")
    try:
        routed_post(draft)
    except podium.ActionRejected:
        return "rejected"
    return "posted"


def shadowing(
    tmp_path: Path, cheap: FakeProvider, strong: FakeProvider, rate: float = 1.0, **more: object
) -> podium.Settings:
    tmp_path.mkdir(parents=True, exist_ok=True)
    config = write_config(tmp_path / "podium.toml", cheap, strong, f'shadow_rate = {rate}\nprior = "off"')
    return podium.Settings(home=tmp_path / "p", config=config, **more)  # type: ignore[arg-type]


def routed_rows(pod: podium.Podium) -> list[sa.Row[tuple[object, ...]]]:
    query = sa.select(tables.routed).order_by(tables.routed.c.at)
    with pod.engine.connect() as conn:
        return list(conn.execute(query))


def test_the_strongest_model_shadows_a_served_answer_paid_audited_and_unjudged_when_it_disagrees(
    tmp_path: Path, providers: tuple[FakeProvider, FakeProvider], settings: podium.Settings
) -> None:
    cheap, strong = providers
    on = shadowing(tmp_path, cheap, strong, database_url=settings.database_url)  # each database
    with podium.launch(on, podium.App(agents=[agent])) as pod:
        answer, disagreed = shadowed.start("where is my card?", good=False).result()
        rows = routed_rows(pod)
        calls = [(row.resource, row.cost_nano_usd > 0) for row in ledger(pod) if row.kind == "model"]
        entries = [json.loads(e.detail) for e in audit(pod) if e.action == "model.call"]
        (status,) = floor_status(pod.engine, pod.config.routing)
    assert answer == "cheap answers: where is my card?" and disagreed  # the cheapest served; strong said otherwise
    assert (cheap.completions, strong.completions) == (1, 1)
    assert calls == [("cheap", True), ("strong", True)]  # the shadow is paid for, in the ledger
    assert [e.get("route_shadow_of") for e in entries] == [None, "cheap"]
    served, shadow = rows
    assert (served.model, served.shadow_of, served.success) == ("cheap", None, 0)
    assert (shadow.model, shadow.shadow_of, shadow.agrees, shadow.success) == ("strong", served.id, 0, None)
    assert (status.requests, status.judged, status.shadows, status.agreement) == (1, 1, 1, 0.0)


def test_an_agreeing_shadow_shares_the_served_answers_outcome(
    tmp_path: Path, providers: tuple[FakeProvider, FakeProvider], settings: podium.Settings
) -> None:
    """Both answer the same label: the person's verdict on the served answer is the strong model's too."""
    cheap, strong = providers
    cheap.reply, strong.reply = "Intent: card_lost.", "intent: CARD_LOST"
    on = shadowing(tmp_path, cheap, strong, database_url=settings.database_url)
    with podium.launch(on, podium.App(agents=[agent])) as pod:
        assert shadowed.start("my card is gone", good=True).result() == ("Intent: card_lost.", False)
        rows = routed_rows(pod)
        (status,) = floor_status(pod.engine, pod.config.routing)
        credited = pod.route_outcome("no-such-run", True)
    assert [(row.model, row.agrees, row.success) for row in rows] == [("cheap", None, 1), ("strong", 1, 1)]
    assert (status.requests, status.shadows, status.agreement) == (1, 1, 1.0)
    assert credited == 0


def test_which_calls_are_shadowed_is_drawn_from_their_keys(
    tmp_path: Path, providers: tuple[FakeProvider, FakeProvider]
) -> None:
    """A step that runs again after a crash draws the same shadows, so its later calls keep their keys; and every
    process samples alike (not the first draws of a generator each one starts afresh)."""
    cheap, strong = providers
    with podium.launch(shadowing(tmp_path, cheap, strong, rate=0.5), podium.App(agents=[agent])) as pod:
        for i in range(12):
            shadowed.start(f"question {i}", good=True).result()
        rows = routed_rows(pod)
    served = [row.id for row in rows if row.shadow_of is None]
    assert sorted(row.shadow_of for row in rows if row.shadow_of is not None) == sorted(
        key for key in served if in_shadow_sample(key, 0.5)
    )
    assert 0 < strong.completions < 12


def test_a_shadow_a_policy_wants_a_person_for_is_skipped_and_the_answer_stands(
    tmp_path: Path, providers: tuple[FakeProvider, FakeProvider]
) -> None:
    """The shadow is never the first call of its step, so it cannot wait for a person: it is not made, the served
    answer stands, and the strongest model's circuit breaker is left as it was."""
    cheap, strong = providers
    policies = tmp_path / "policies"
    policies.mkdir()
    (policies / "strong.cedar").write_text(
        '@id("strong-needs-a-person")\n@exception("a person approves each call to the strong model")\n'
        'forbid (principal, action == Action::"model.call", resource is Model) when { resource.name == "strong" };\n'
    )
    with podium.launch(shadowing(tmp_path, cheap, strong, policies=policies), podium.App(agents=[agent])) as pod:
        assert shadowed.start("hello", good=True).result() == ("cheap answers: hello", False)
        assert [row.model for row in routed_rows(pod)] == ["cheap"]
        assert pod.breakers.get("strong").state == "closed"
    assert strong.completions == 0


def call(tool: str, **args: object) -> ModelResponse:
    return ModelResponse(parts=[ToolCallPart(tool, dict(args))])


def text(content: str) -> ModelResponse:
    return ModelResponse(parts=[TextPart(content)])


@pytest.mark.parametrize(
    ("served", "shadow", "agrees"),
    [
        (call("refund", amount=5, to="a"), call("refund", to="a", amount=5), True),
        (call("refund", amount=5), call("delete_account", amount=5), False),
        (call("refund", amount=5), call("refund", amount=50), False),
        (text('{"intent": "card_lost", "n": NaN}'), text('{"n": NaN, "intent": "card_lost"}'), True),
        (text("Yes."), text("yes"), True),
        (text("Your card is blocked."), text("I have blocked your card."), False),
        (text(""), text("anything"), None),
    ],
)
def test_answers_agree_on_their_tool_calls_and_their_text(
    served: ModelResponse, shadow: ModelResponse, agrees: bool | None
) -> None:
    """Two tool-call turns are compared by the calls, not taken as two empty texts that agree."""
    assert answers_agree(_said(served), _said(shadow)) is agrees


def test_tool_arguments_agree_whether_sent_as_json_text_or_as_a_mapping() -> None:
    """A provider's wire form (the gateway sees arguments as JSON text) compares as the parsed calls do."""
    assert said("", [("refund", '{"to": "a", "amount": 5}')]) == said("", [("refund", {"amount": 5, "to": "a"})])
    assert said("", [("refund", "{not json")]) != said("", [("refund", {})])


def test_a_shadow_that_fails_changes_nothing_for_the_request(
    tmp_path: Path, providers: tuple[FakeProvider, FakeProvider]
) -> None:
    cheap, strong = providers
    strong.mode = "error"
    with podium.launch(shadowing(tmp_path, cheap, strong), podium.App(agents=[agent])) as pod:
        answer, disagreed = shadowed.start("hello", good=True).result()
        rows = routed_rows(pod)
    assert answer == "cheap answers: hello" and not disagreed
    assert strong.completions == 1 and [row.model for row in rows] == ["cheap"]


def test_no_shadow_without_a_shadow_rate_or_when_the_strongest_served(
    tmp_path: Path, providers: tuple[FakeProvider, FakeProvider]
) -> None:
    cheap, strong = providers
    with podium.launch(shadowing(tmp_path, cheap, strong, rate=0.0), podium.App(agents=[agent])):
        shadowed.start("hello", good=True).result()
    assert strong.completions == 0
    cheap.mode = "error"  # the request falls back to the strongest: nothing stronger to ask
    with podium.launch(shadowing(tmp_path / "2", cheap, strong), podium.App(agents=[agent])) as pod:
        assert shadowed.start("hello", good=True).result() == ("strong answers: hello", False)
        assert [row.model for row in routed_rows(pod)] == ["strong"]
    assert strong.completions == 1


@pytest.mark.parametrize(("agree", "ended"), [(True, "posted"), (False, "rejected")])
def test_a_disagreement_sends_the_action_to_a_person_through_the_exception_rules(
    tmp_path: Path, providers: tuple[FakeProvider, FakeProvider], agree: bool, ended: str
) -> None:
    cheap, strong = providers
    if agree:
        cheap.reply = strong.reply = "Your card is blocked."
    with podium.launch(shadowing(tmp_path, cheap, strong), podium.App(agents=[poster], tools=[post])) as pod:
        run = shadow_checked_post.start("block my card")
        if agree:
            assert run.result() == ended and strong.completions == 1  # shadowed, agreed: no person
            return
        if not agree:
            request = waiting(pod, run.id)
            assert request.reasons == (f"compliance:{FLAG}",)
            pod.reviews.reject(request.id, by=sign_in(pod, "comms-lead@example.com"), rationale="check the draft")
        assert run.result() == ended
