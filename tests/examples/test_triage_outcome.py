"""The support example reports what happened to each reply: sent alone, or sent after a person's review, whatever
made the review (its own rules, a budget, or a project policy the workflow cannot see)."""

from __future__ import annotations

from pathlib import Path

import pytest

import podium
from podium import Settings
from podium.testing import sign_in
from podium_examples.support_triage import workflow as wf
from podium_examples.support_triage.tickets import Ticket
from tests.conftest import IntentModelFile
from tests.review.test_review import waiting

pytestmark = pytest.mark.slow

# Confident and not sensitive: none of the workflow's own rules fires on its reply.
TEXT = "I am still waiting on my card?"


def test_a_reply_that_waited_for_a_person_is_reported_sent_after_review(
    settings: Settings, intent_model_file: IntentModelFile, tmp_path: Path
) -> None:
    with podium.launch(settings, wf.app) as pod:
        pod.trained.adopt(wf.INTENT_MODEL, intent_model_file.path, intent_model_file.sha256)
        alone = wf.triage_ticket.start(Ticket("t-1", "customer-1", TEXT, "card_arrival")).result()
    assert (alone.intent, alone.outcome, alone.exception) == ("card_arrival", "sent", None)

    policies = tmp_path / "policies"
    policies.mkdir()
    (policies / "replies.cedar").write_text(
        '@id("replies-need-a-person")\n@exception("a person reads every reply this week")\n'
        'forbid (principal, action == Action::"tool.call", resource is Tool) when { resource.name == "send_reply" };\n'
    )
    with podium.launch(settings.model_copy(update={"policies": policies}), wf.app) as pod:
        run = wf.triage_ticket.start(Ticket("t-2", "customer-2", TEXT, "card_arrival"))
        request = waiting(pod, run.id, timeout=120)
        pod.reviews.approve(request.id, by=sign_in(pod, wf.SUPPORT_LEAD))
        reviewed = run.result()
        assert [m.recipient for m in pod.outbox.messages()] == ["customer-1", "customer-2"]
    assert (reviewed.outcome, reviewed.exception) == ("sent_after_review", "policy:replies-need-a-person")
