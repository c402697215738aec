"""Work the support example cannot finish alone is never a silent failure: a ticket too long for the draft model
waits for a person who writes the reply, and a demo whose runs failed does not exit 0."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import podium
from podium import Podium, Settings
from podium.errors import UsageError
from podium.testing import sign_in
from podium_examples.support_triage import workflow as wf
from podium_examples.support_triage.tickets import Ticket
from tests.conftest import IntentModelFile
from tests.review.test_review import waiting

pytestmark = pytest.mark.slow

LONG_TICKET = "I am still waiting on my card? " * 1200  # ~35 KB, and nothing in it a rule of the workflow asks about


def test_a_ticket_too_long_for_the_draft_model_waits_for_a_person_who_writes_the_reply(
    settings: Settings, intent_model_file: IntentModelFile
) -> None:
    with Podium.connect(settings) as pod:
        pod.trained.adopt(wf.INTENT_MODEL, intent_model_file.path, intent_model_file.sha256)
    with podium.launch(settings, wf.app) as pod:
        run = wf.triage_ticket.start(Ticket("long-1", "customer-7", LONG_TICKET, "card_arrival"))
        request = waiting(pod, run.id, timeout=120)  # before: the run ended in ERROR, no reply and no review
        assert request.reasons == ("too_large",)
        assert "too long for smollm2-135m to draft a reply" in request.summary
        lead = sign_in(pod, wf.SUPPORT_LEAD)
        with pytest.raises(UsageError, match="would refuse .*body: at least 1 characters.*podium review edit"):
            pod.reviews.approve(request.id, by=lead)  # an empty reply nobody wrote is not sent
        pod.reviews.edit(request.id, {"body": "We are refunding the second charge today."}, by=lead)
        outcome = run.result()
        assert [m.body for m in pod.outbox.messages(run_ids=[run.id])] == ["We are refunding the second charge today."]
    assert (outcome.outcome, outcome.exception) == ("sent_after_review", "too_large")


@pytest.mark.parametrize("settings", ["sqlite"], indirect=True)
def test_the_demo_exits_1_when_runs_failed(
    settings: Settings, intent_model_file: IntentModelFile, tmp_path: Path
) -> None:
    with Podium.connect(settings) as pod:
        pod.trained.adopt(wf.INTENT_MODEL, intent_model_file.path, intent_model_file.sha256)
    policies = tmp_path / "policies"  # a project policy that denies every reply: each run fails at its send
    policies.mkdir()
    (policies / "no-replies.cedar").write_text(
        '@id("no-replies")\nforbid (principal, action == Action::"tool.call", resource is Tool) '
        'when { resource.name == "send_reply" };\n'
    )
    done = subprocess.run(
        [str(Path(sys.executable).parent / "podium"), "--home", str(settings.home), "demo", "--tickets", "2"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        env={**os.environ, "PODIUM_POLICIES": str(policies), "COLUMNS": "120"},
    )
    assert done.returncode == 1, done.stdout + done.stderr  # before: 0, with "failed 2" in the table
    assert "error: 2 of 2 runs failed: `podium runs list --status error` lists them" in done.stderr
