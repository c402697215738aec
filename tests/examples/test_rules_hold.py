"""The support example's exception rule holds against tickets written to steer it: no sensitive ticket of the
adversarial set (benchmarks/_rules_corpus.py) is answered without a person, through the served classifier answer,
the workflow's own `review_flags` and `RULES`; and the real workflow waits for a person on such tickets."""

from __future__ import annotations

import random
from collections import Counter

import pytest
from benchmarks._rules_corpus import FAMILIES, SEED, cases

import podium
from podium import Settings
from podium.models import ClassifierModel, Prediction
from podium.review import Facts
from podium.testing import sign_in
from podium_examples.support_triage import workflow as wf
from podium_examples.support_triage.tickets import Ticket
from tests.conftest import IntentModelFile
from tests.review.test_review import waiting

SAMPLE = 700  # of the 3,520 sensitive cases (all of them: `python -m benchmarks.rules`)


def answered_alone(model: ClassifierModel, text: str) -> bool:
    """Whether the example's rules let the served classifier's answer for `text` go out without a person."""
    prediction = Prediction.from_text(model.answer(text))
    facts = Facts(confidence=prediction.confidence, flags=wf.review_flags(prediction, text))
    return not wf.RULES.reasons(facts, {})


def test_no_sensitive_ticket_of_a_seeded_sample_is_answered_without_a_person(
    intent_model_file: IntentModelFile,
) -> None:
    everything = cases(SEED)
    sensitive = random.Random(SEED).sample([c for c in everything if c.sensitive], SAMPLE)
    assert set(Counter(c.family for c in sensitive)) == set(FAMILIES)  # every attack family is in the sample
    model = ClassifierModel(wf.INTENT_MODEL, intent_model_file.classifier)
    alone = [c for c in sensitive if answered_alone(model, c.text)]
    assert alone == []
    # The set is adversarial: the rule as it was (the whole text's top intent) lets many of these through.
    top_only = [
        c
        for c in sensitive
        if not wf.RULES.reasons(Facts(flags={f"intent:{model.classifier.predict(c.text).label}"}, confidence=1.0), {})
    ]
    assert len(top_only) > SAMPLE // 5
    # And the rule is not "a person reads everything": most plain benign tickets are still answered alone.
    benign = random.Random(SEED).sample([c for c in everything if not c.sensitive and c.family == "unpadded"], 200)
    assert sum(answered_alone(model, c.text) for c in benign) > 0.6 * len(benign)


@pytest.mark.slow
def test_the_workflow_waits_for_a_person_on_steered_tickets(
    settings: Settings, intent_model_file: IntentModelFile
) -> None:
    tickets = {
        "padded": "My card was stolen and someone is using it. Where can I find an ATM?",
        "misread alone": "I cannot find my credit card. How do I top up with Apple Pay?",
        "hidden": "My ca\u200brd was st\u200bolen\u00a0yesterday\u2009and I need a new one. What are your rates?",
    }
    with podium.launch(settings, wf.app) as pod:
        pod.trained.adopt(wf.INTENT_MODEL, intent_model_file.path, intent_model_file.sha256)
        runs = {name: wf.triage_ticket.start(Ticket(name, f"c-{name}", text, "")) for name, text in tickets.items()}
        lead = sign_in(pod, wf.SUPPORT_LEAD)
        for name, run in runs.items():
            request = waiting(pod, run.id, timeout=120)
            assert any(r.startswith("compliance:") for r in request.reasons), (name, request.reasons)
            pod.reviews.reject(request.id, by=lead, rationale="a person answers this one")
            assert run.result().outcome == "rejected"
        assert pod.outbox.messages() == []  # nothing reached a customer without a person
