"""Remote tiers at the wire level: real OpenAI-compatible HTTP servers on loopback that fail on purpose."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from pydantic_ai.models import override_allow_model_requests

import podium
from podium.errors import ConfigurationError
from podium.store import tables
from podium.testing import sign_in
from tests._openai_server import FakeProvider
from tests.review.test_review import waiting

agent = podium.Agent("routed-asker", owner="platform-lead@example.com", models=["cheap", "strong"])
LOCAL_OR_REMOTE = ["smollm2-135m", "strong"]


@podium.step(name="tests.routed_ask")
def routed_ask(prompt: str) -> str:
    return agent.run(prompt, model=["cheap", "strong"])


@podium.workflow(name="tests.routed")
def routed(prompt: str) -> str:
    return routed_ask(prompt)


@podium.workflow(name="tests.routed_and_judged")
def routed_and_judged(prompt: str) -> str:
    """A verifier that accepts only the strong model's answers: the router must learn to pay for it."""
    answer = routed_ask(prompt)
    podium.route_outcome(answer.startswith("strong"))
    return answer


def post(text: str) -> str:
    """Publish `text` (the side effect a person may have to approve first)."""
    return "posted" if podium.send_to_outbox("posts", "wall", text) else "posted before"


poster = podium.Agent("routed-poster", owner="comms-lead@example.com", models=["cheap", "strong"], tools=[post])


@podium.step(name="tests.routed_draft")
def routed_draft(prompt: str) -> str:
    return poster.run(prompt, model=["cheap", "strong"])


@podium.step(name="tests.routed_post")
def routed_post(text: str) -> None:
    poster.call_tool("post", text=text)


@podium.workflow(name="tests.routed_then_reviewed", exceptions=podium.ExceptionRules(confidence_below=0.5))
def routed_then_reviewed(prompt: str) -> str:
    """Every post waits for a person, whose decision is the outcome of the routed draft."""
    draft = routed_draft(prompt)
    podium.assess(confidence=0.0)
    try:
        routed_post(draft)
    except podium.ActionRejected:
        return "rejected"
    return "posted"


def write_config(
    path: Path,
    cheap: FakeProvider,
    strong: FakeProvider,
    extra: str = "",
    known_as: tuple[str, str] = ("cheap-model", "strong-model"),
) -> Path:
    path.write_text(
        f"""
[models.cheap]
tier = "intermediate"
base_url = "{cheap.base_url}"
model = "{known_as[0]}"
price = {{ input_per_mtok = 1.0, output_per_mtok = 1.0 }}
timeout_s = 0.5

[models.strong]
tier = "frontier"
base_url = "{strong.base_url}"
model = "{known_as[1]}"
price = "openai:gpt-4o"

[routing]
breaker_failures = 2
breaker_cooldown_s = 600
{extra}
"""
    )
    return path


def routed_settings(tmp_path: Path, cheap: FakeProvider, strong: FakeProvider) -> podium.Settings:
    return podium.Settings(home=tmp_path / "p", config=write_config(tmp_path / "podium.toml", cheap, strong))


@pytest.fixture
def providers() -> Iterator[tuple[FakeProvider, FakeProvider]]:
    cheap, strong = FakeProvider("cheap"), FakeProvider("strong")
    with cheap.running(), strong.running(), override_allow_model_requests(True):
        yield cheap, strong


def ledger(pod: podium.Podium) -> list[sa.Row[tuple[object, ...]]]:
    with pod.engine.connect() as conn:
        return list(conn.execute(sa.select(tables.ledger).order_by(tables.ledger.c.at)))


def audit(pod: podium.Podium) -> list[sa.Row[tuple[object, ...]]]:
    with pod.engine.connect() as conn:
        return list(conn.execute(sa.select(tables.audit_log).order_by(tables.audit_log.c.seq)))


def test_the_router_sends_work_to_the_cheaper_tier_with_its_reasons(
    tmp_path: Path, providers: tuple[FakeProvider, FakeProvider]
) -> None:
    cheap, strong = providers
    settings = routed_settings(tmp_path, cheap, strong)
    with podium.launch(settings, podium.App(agents=[agent])) as pod:
        assert routed.start("hello").result() == "cheap answers: hello"
        (row,) = ledger(pod)
        assert (row.resource, row.tier, row.input_tokens, row.output_tokens) == ("cheap", "intermediate", 12, 5)
        assert row.cost_nano_usd == 17_000  # 17 tokens at $1 per million
        entry = next(e for e in audit(pod) if e.action == "model.call")
        assert '"route":"cheap"' in entry.detail and "route_estimates" in entry.detail and "route_floor" in entry.detail


def test_a_provider_that_returns_5xx_falls_back_opens_its_breaker_and_its_waste_is_in_the_ledger(
    tmp_path: Path, providers: tuple[FakeProvider, FakeProvider]
) -> None:
    cheap, strong = providers
    cheap.mode = "error"
    settings = routed_settings(tmp_path, cheap, strong)
    with podium.launch(settings, podium.App(agents=[agent])) as pod:
        for prompt in ("one", "two"):
            assert routed.start(prompt).result() == f"strong answers: {prompt}"
        assert cheap.completions == 2 and pod.breakers.get("cheap").state == "open"
        assert routed.start("three").result() == "strong answers: three"
        assert cheap.completions == 2  # the open breaker kept the third request away from it
        rows = ledger(pod)
        assert [(r.resource, r.wasted) for r in rows] == [
            ("cheap", 1), ("strong", 0), ("cheap", 1), ("strong", 0), ("strong", 0)
        ]  # fmt: skip
        assert all(r.wall_seconds > 0 for r in rows)
        entries = audit(pod)
        failed = [e for e in entries if e.decision == "failed"]
        assert len(failed) == 2 and all("503" in e.detail or "overloaded" in e.detail for e in failed)
        assert [e.resource for e in entries if e.action == "breaker.open"] == ["cheap"]
        # the router still prefers the cheap tier (a provider outage says nothing of the task); the breaker skips it
        assert sum('"route_fallback_from":"cheap"' in e.detail for e in entries if e.decision == "allowed") == 3
        assert pod.verify_audit().ok


def test_a_provider_that_times_out_falls_back_and_the_wait_is_counted_as_waste(
    tmp_path: Path, providers: tuple[FakeProvider, FakeProvider]
) -> None:
    cheap, strong = providers
    cheap.mode = "hang"
    settings = routed_settings(tmp_path, cheap, strong)
    with podium.launch(settings, podium.App(agents=[agent])) as pod:
        assert routed.start("slow").result() == "strong answers: slow"
        wasted = [r for r in ledger(pod) if r.wasted]
        assert [r.resource for r in wasted] == ["cheap"] and wasted[0].wall_seconds >= 0.5


def test_a_request_the_provider_rejects_is_raised_not_retried_elsewhere(
    tmp_path: Path, providers: tuple[FakeProvider, FakeProvider]
) -> None:
    cheap, strong = providers
    cheap.mode = "reject"  # 400: the request's fault, not the provider's
    settings = routed_settings(tmp_path, cheap, strong)
    with podium.launch(settings, podium.App(agents=[agent])) as pod:
        for _ in range(3):
            with pytest.raises(Exception, match="prompt too long"):
                routed.options(run_id=f"rejected-{_}").start("x" * 10).result()
        assert strong.completions == 0 and pod.breakers.get("cheap").state == "closed"


def test_the_router_learns_from_reported_outcomes_to_pay_for_the_tier_that_succeeds(
    tmp_path: Path, providers: tuple[FakeProvider, FakeProvider]
) -> None:
    cheap, strong = providers
    settings = routed_settings(tmp_path, cheap, strong)
    with podium.launch(settings, podium.App(agents=[agent])):
        answers = [routed_and_judged.start(f"question {i} about my card").result() for i in range(30)]
    assert answers[0].startswith("cheap")  # no outcomes yet: the cheapest
    assert all(answer.startswith("strong") for answer in answers[-10:]), answers
    with podium.launch(settings, podium.App(agents=[agent])) as pod:  # a new process starts from what was learnt
        assert routed_and_judged.start("question 99 about my card").result().startswith("strong")
        with pod.engine.connect() as conn:
            stored = conn.execute(sa.select(tables.routed.c.model, tables.routed.c.success)).all()
    assert len(stored) == 31 and all(row.success == (row.model == "strong") for row in stored)


@pytest.mark.parametrize(
    ("extra", "agent_models", "message"),
    [
        ("", ["cheap", "nonesuch"], "lists model 'nonesuch', which is not configured"),
        ('tiers = ["local", "intermediate", "frontier", "frontier"]\n[models.bad]\ntier = "frontier"\n'
         'base_url = "http://127.0.0.1:9/v1"\nmodel = "m"\nprice = { input_per_mtok = -1, output_per_mtok = 1 }',
         ["cheap"], "models.bad.price"),
        ('[models.gone]\ntier = "frontier"\nbase_url = "http://127.0.0.1:9/v1"\nmodel = "m"\n'
         'price = { input_per_mtok = 1, output_per_mtok = 1 }', ["cheap"], "models.gone.base_url"),
        ('[models.odd]\ntier = "frontier"\nbase_url = "http://127.0.0.1:9/v1"\nmodel = "m"\n'
         'price = "openai:no-such-model"', ["cheap"], "models.odd.price: genai-prices has no price"),
        ("floor_window = -1", ["cheap"], "routing.floor_window: Input should be greater than or equal to 0"),
        ("floor_confidence = 1.0", ["cheap"], "routing.floor_confidence: Input should be less than 1"),
        ('prior = "sometimes"', ["cheap"], "routing.prior: Input should be 'auto', 'on' or 'off'"),
    ],
)  # fmt: skip
def test_bad_configuration_names_the_setting_to_fix(
    tmp_path: Path, providers: tuple[FakeProvider, FakeProvider], extra: str, agent_models: list[str], message: str
) -> None:
    cheap, strong = providers
    config = write_config(tmp_path / "podium.toml", cheap, strong, extra)
    settings = podium.Settings(home=tmp_path / "p", config=config)
    asker = podium.Agent("config-check", owner="platform-lead@example.com", models=agent_models)
    with pytest.raises(ConfigurationError, match=message.replace(".", r"\.").replace("(", r"\(")):
        podium.launch(settings, podium.App(agents=[asker])).close()


def test_a_floor_window_in_podium_toml_makes_the_router_aim_above_the_floor_and_say_so(
    tmp_path: Path, providers: tuple[FakeProvider, FakeProvider]
) -> None:
    cheap, strong = providers
    config = write_config(tmp_path / "podium.toml", cheap, strong, "floor = 0.8\nfloor_window = 100")
    with podium.launch(podium.Settings(home=tmp_path / "p", config=config), podium.App(agents=[agent])) as pod:
        routed.start("hello").result()
        entry = next(e for e in audit(pod) if e.action == "model.call")
        assert '"route_floor":"0.80"' in entry.detail and '"route_aim":"0.866"' in entry.detail  # 0.8 + 1.645 x 0.04


@pytest.mark.parametrize("prior", ["auto", "off"])
def test_the_router_starts_from_what_public_outcomes_say_of_the_models_unless_told_not_to(
    tmp_path: Path, providers: tuple[FakeProvider, FakeProvider], prior: str
) -> None:
    """The models' names at their providers are ones the shipped prior knows: its estimates differ from the blank
    50% before any outcome, the audit entry says where they came from, and the stored request keeps them."""
    pytest.importorskip("onnxruntime", reason="the embeddings extra is not installed: pip install 'podium[embeddings]'")
    cheap, strong = providers
    known_as = ("mixtral-8x7b-instruct-v0.1", "gpt-4-1106-preview")
    config = write_config(tmp_path / "podium.toml", cheap, strong, f'prior = "{prior}"', known_as)
    with podium.launch(podium.Settings(home=tmp_path / "p", config=config), podium.App(agents=[agent])) as pod:
        routed.start("Which gas do plants absorb? A. oxygen B. carbon dioxide C. helium D. neon").result()
        detail = json.loads(next(e for e in audit(pod) if e.action == "model.call").detail)
        with pod.engine.connect() as conn:
            stored = json.loads(conn.execute(sa.select(tables.routed.c.features)).scalar_one())
    if prior == "off":
        assert "route_prior" not in detail and detail["route_estimates"] == "cheap 0.50, strong 0.50"
        assert isinstance(stored, list)
    else:
        assert detail["route_prior"] == "public outcomes (all-MiniLM-L6-v2-int8)"
        assert detail["route_estimates"] != "cheap 0.50, strong 0.50"
        assert set(stored["prior"]) == {"cheap", "strong"} and stored["prior"]["strong"] > stored["prior"]["cheap"]


local_or_remote_asker = podium.Agent("local-or-remote", owner="platform-lead@example.com", models=LOCAL_OR_REMOTE)


@podium.step(name="tests.local_or_remote_ask")
def local_or_remote_ask(prompt: str) -> str:
    return local_or_remote_asker.run(prompt, model=LOCAL_OR_REMOTE)


@podium.workflow(name="tests.local_or_remote")
def local_or_remote(prompt: str) -> str:
    return local_or_remote_ask(prompt)


def test_a_local_model_that_has_been_slow_is_costed_at_its_compute_and_loses_to_a_cheaper_remote_call(
    tmp_path: Path, providers: tuple[FakeProvider, FakeProvider]
) -> None:
    """The ledger says the local model took 2 s of CPU a token (at $0.085 an hour: ~$0.05 a 1,000-token request);
    gpt-4o's list price for the same request is less, so the router sends it there."""
    cheap, strong = providers
    with podium.launch(routed_settings(tmp_path, cheap, strong), podium.App(agents=[local_or_remote_asker])) as pod:
        with pod.engine.begin() as conn:
            conn.execute(
                sa.insert(tables.ledger).values(
                    call_key="an earlier call", agent="someone", kind="model", resource="smollm2-135m", tier="local",
                    input_tokens=40, output_tokens=10, compute_seconds=100.0, cost_nano_usd=2_361, at=0.0,
                )
            )  # fmt: skip
        assert local_or_remote.start("hello").result() == "strong answers: hello"
        entry = next(e for e in audit(pod) if e.action == "model.call")
        costs = dict(pair.rsplit(" ", 1) for pair in json.loads(entry.detail)["route_costs"].split(", "))
        assert float(costs["smollm2-135m"]) > 2 * float(costs["strong"]) > 0


def test_a_routing_tier_with_no_model_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "podium.toml"
    config.write_text('[routing]\ntiers = ["local", "intermediate"]\n')
    with pytest.raises(ConfigurationError, match="routing.tiers lists 'intermediate', but no model has tier"):
        podium.connect(podium.Settings(home=tmp_path / "p", config=config)).close()


def test_a_tier_that_is_not_a_tier_is_one_error_line_naming_the_tiers(tmp_path: Path) -> None:
    config = tmp_path / "podium.toml"
    config.write_text('[routing]\ntiers = ["local", "galactic"]\n')
    with pytest.raises(ConfigurationError) as refused:
        podium.connect(podium.Settings(home=tmp_path / "p", config=config)).close()
    assert "\n" not in str(refused.value)
    assert "routing.tiers.1: Input should be 'local', 'intermediate' or 'frontier'" in str(refused.value)


def test_a_reviewers_decision_is_the_outcome_the_router_learns_from(
    tmp_path: Path, providers: tuple[FakeProvider, FakeProvider]
) -> None:
    cheap, strong = providers
    with podium.launch(routed_settings(tmp_path, cheap, strong), podium.App(agents=[poster], tools=[post])) as pod:
        for decide, expected in ((pod.reviews.reject, "rejected"), (pod.reviews.approve, "posted")):
            run = routed_then_reviewed.start("announce the new card")
            decide(waiting(pod, run.id).id, by=sign_in(pod, "comms-lead@example.com"))
            assert run.result() == expected
            with pod.engine.connect() as conn:
                judged = conn.execute(
                    sa.select(tables.routed.c.success).where(tables.routed.c.run_id == run.id)
                ).scalar_one()
            assert judged == (expected == "posted"), "approved unchanged: a success; rejected: a failure"
