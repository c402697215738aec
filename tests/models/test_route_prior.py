"""The router's prior: per-model heads over sentence embeddings, learnt from public outcomes and shipped as JSON."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from podium.models._route_prior import GENERIC, PRIOR_FILE, PriorScorer, RoutePrior, fit_head, model_key
from podium.models._router import Features, Router, RouteTier, Task


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("together:mistralai/Mixtral-8x7B-Instruct-v0.1", "mixtral-8x7b-instruct-v0.1"),
        ("mixtral-8x7b-instruct-v0.1_score", "mixtral-8x7b-instruct-v0.1"),
        ("llama-3.1-8b-instruct_score", "llama-3.1-8b"),
        ("meta/llama-3.1-8b-instruct", "llama-3.1-8b"),
        ("gemma-2-9b-it", "gemma-2-9b"),
        ("openai:gpt-4-1106-preview", "gpt-4-1106-preview"),
    ],
)
def test_a_model_is_known_by_its_name_whatever_its_provider_or_column(name: str, key: str) -> None:
    assert model_key(name) == key


def test_a_head_recovers_the_log_odds_it_was_fitted_on_soft_labels_included() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4000, 3))
    truth = np.array([1.5, -2.0, 0.0, 0.3])  # weights, then the bias
    p = 1 / (1 + np.exp(-(x @ truth[:3] + truth[3])))
    hard = fit_head(x, (rng.random(4000) < p).astype(float), l2=0.1)
    soft = fit_head(x, p, l2=0.1)
    np.testing.assert_allclose(hard, truth, atol=0.2)
    np.testing.assert_allclose(soft, truth, atol=0.02)


def test_it_round_trips_as_plain_json(tmp_path: Path) -> None:
    prior = RoutePrior("emb", {GENERIC: np.array([0.5, -1.0]), "gpt-4": np.array([0.25, 2.0])}, ("mmlu",))
    prior.save(tmp_path / "prior.json")
    assert json.loads((tmp_path / "prior.json").read_text())["heads"]["gpt-4"] == [0.25, 2.0]
    again = RoutePrior.load(tmp_path / "prior.json")
    assert again.log_odds(np.array([1.0]), ["openai:gpt-4", "unseen"]) == {"openai:gpt-4": 2.25, "unseen": -0.5}
    assert again.knows("openai:GPT-4") and not again.knows("unseen")


def test_a_prior_without_a_generic_head_or_on_other_embeddings_is_refused() -> None:
    with pytest.raises(ValueError, match="generic head"):
        RoutePrior("emb", {"gpt-4": np.zeros(2)}, ())

    class Other:
        name, dimensions = "other-model", 1

        def embed(self, texts: object) -> np.ndarray:
            raise AssertionError

    with pytest.raises(ValueError, match="rebuild it"):
        PriorScorer(RoutePrior("emb", {GENERIC: np.zeros(2)}, ()), Other())


class Words:
    """A two-dimensional "embedding" for the router tests: is the text about mathematics, is it chit-chat."""

    name, dimensions = "words", 2

    def embed(self, texts: list[str]) -> np.ndarray:
        return np.array([[float("integral" in t), float("hello" in t)] for t in texts], dtype=np.float32)


def test_the_router_starts_from_the_prior_and_its_outcomes_correct_it() -> None:
    heads = {GENERIC: np.zeros(3), "small": np.array([-4.0, 2.0, 1.0]), "large": np.array([2.0, 1.0, 1.0])}
    scorer = PriorScorer(RoutePrior("words", heads, ("test",)), Words())
    tiers = [RouteTier("small", 0.01), RouteTier("large", 1.0)]
    router = Router(tiers, floor=0.8, shadow_rate=0.0, prior=scorer)
    maths, chat = Task("solve this integral"), Task("hello there")
    # before any outcome: the prior's estimates, so mathematics goes to the large model and chit-chat does not
    assert router.decide(maths).tier == "large" and router.decide(chat).tier == "small"
    assert router.decide(maths).estimates["small"] == pytest.approx(1 / (1 + np.exp(3.0)), abs=1e-6)
    assert Router(tiers, floor=0.8, shadow_rate=0.0).decide(maths).estimates["small"] == 0.5  # no prior: blank
    # where this organisation's work differs (the small model does its mathematics well), outcomes win
    for _ in range(1000):
        router.learn(maths, "small", True)
    assert router.decide(maths).estimates["small"] > 0.8
    assert router.features(maths).prior == {"small": -3.0, "large": 3.0}
    assert router.decide(maths).explain()["route_prior"] == "public outcomes (words)"


@pytest.mark.skipif(not PRIOR_FILE.exists(), reason="no route prior built")
def test_the_shipped_prior_knows_what_the_public_outcomes_say_of_the_models_on_a_multiple_choice_question() -> None:
    pytest.importorskip("onnxruntime", reason="the embeddings extra is not installed: pip install 'podium[embeddings]'")
    from podium.models import embedder

    prior = RoutePrior.load()
    assert prior.knows("gpt-4-1106-preview") and prior.knows("meta/llama-3.2-3b-instruct")
    question = "Which gas do plants absorb from the air? A. oxygen B. carbon dioxide C. nitrogen D. helium"
    models = ["gpt-4-1106-preview", "mixtral-8x7b-instruct-v0.1", "llama-3.2-3b-instruct", "llama3-chatqa-1.5-70b"]
    odds = PriorScorer(prior, embedder()).log_odds(question, models)
    # GPT-4 beats Mixtral beats a 3B model; ChatQA, which fails multiple-choice answer formats, comes last
    assert sorted(odds, key=odds.__getitem__, reverse=True) == models


def test_features_are_stored_with_the_prior_they_were_decided_on_and_old_rows_still_read() -> None:
    router = Router(
        [RouteTier("small", 0.01), RouteTier("large", 1.0)],
        prior=PriorScorer(
            RoutePrior("words", {GENERIC: np.zeros(3), "small": np.array([-4.0, 2.0, 1.0])}, ()), Words()
        ),
    )
    features = router.features(Task("solve this integral", "maths"))
    again = Features.from_stored(features.stored())
    assert again.prior == {"small": -3.0, "large": 0.0}
    np.testing.assert_array_equal(again.indices, features.indices)
    assert "integral" not in features.stored()  # hashed, never the text
    old = Features.from_stored(json.dumps(features.indices.tolist()))
    assert old.prior == {} and (old.indices == features.indices).all()


def test_a_decision_carries_the_features_it_was_made_on_so_learning_from_it_embeds_nothing_again() -> None:
    class Counting(Words):
        def __init__(self) -> None:
            self.texts: list[str] = []

        def embed(self, texts: list[str]) -> np.ndarray:
            self.texts += texts
            return super().embed(texts)

    counting = Counting()
    heads = {GENERIC: np.zeros(3), "small": np.array([-4.0, 2.0, 1.0])}
    router = Router(
        [RouteTier("small", 0.01), RouteTier("large", 1.0)], prior=PriorScorer(RoutePrior("words", heads, ()), counting)
    )
    decision = router.decide(Task("solve this integral"))
    router.learn(decision.features, decision.tier, True)
    assert counting.texts == ["solve this integral"]  # embedded once, for the decision
    assert decision.features.prior == {"small": -3.0, "large": 0.0}
    assert decision.explain()["route_features"] == "bias group= length=0"
