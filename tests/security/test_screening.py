"""Screening at the tool boundary: what arguments carry and what results look like reach Cedar and the audit."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

import podium
from podium import Podium, Settings
from podium.audit import digest
from podium.errors import ActionDenied
from podium.governance import Call, CallContext, CallSite, Screened
from podium.security import SHIPPED_THRESHOLD, Screening
from podium.store import tables
from podium.testing import TEST_ADMIN, sign_in
from tests.review.test_review import waiting
from tests.security import _screen_app
from tests.security._screen_app import CARD, OWNER, POLICIES, agent


@pytest.fixture
def pod(settings: Settings) -> Iterator[Podium]:
    with podium.launch(settings.model_copy(update={"policies": POLICIES}), _screen_app.app) as launched:
        yield launched


def audited(pod: Podium, resource: str) -> list[tuple[str, dict[str, str]]]:
    log = tables.audit_log
    query = sa.select(log.c.decision, log.c.detail).where(log.c.resource == resource).order_by(log.c.seq)
    with pod.engine.connect() as conn:
        return [(row.decision, json.loads(row.detail)) for row in conn.execute(query)]


def sent(pod: Podium) -> list[str]:
    return [m.recipient for m in pod.outbox.messages()]


def test_what_arguments_carry_reaches_cedar_and_the_audit_as_kinds(pod: Podium) -> None:
    with podium.request_scope("r-card"):
        assert agent.call_tool("send_email", to="bob@example.com", subject="hi", body="See you Friday.") == "sent"
        with pytest.raises(ActionDenied, match="no-card-numbers-by-email"):
            agent.call_tool("send_email", to="bob@example.com", subject="card", body=f"Pay with {CARD}, thanks")
    (allowed, detail), (denied, refused) = audited(pod, "send_email")
    assert (allowed, json.loads(detail["screen_arguments"])) == ("allowed", {"email": 1})
    assert (denied, json.loads(refused["screen_arguments"])) == ("denied", {"credit_card": 1, "email": 1})
    assert "4111" not in json.dumps(refused)  # kinds and counts, never the text
    assert sent(pod) == ["bob@example.com"]


def test_a_result_is_scored_and_a_flagged_one_makes_later_actions_wait_for_a_person(pod: Podium) -> None:
    with podium.request_scope("r-notes"):
        agent.call_tool("fetch_page", name="notes")
        assert agent.call_tool("send_email", to="bob@example.com", subject="re", body="Noted.") == "sent"
    with podium.request_scope("r-injected"):
        assert agent.call_tool("send_email", to="bob@example.com", subject="re", body="Before.") == "sent"
        agent.call_tool("fetch_page", name="injected")
        agent.call_tool("fetch_page", name="notes")  # reading goes on; the flag stays for the request
        with pytest.raises(ActionDenied, match="needs a person's approval.*no-action-after-a-flagged-result"):
            agent.call_tool("send_email", to="bob@example.com", subject="re", body="After.")
    notes, injected, notes_again = (detail for _, detail in audited(pod, "fetch_page"))
    assert float(notes["injection_score"]) < 0.1 and "injection_flagged" not in notes
    assert float(injected["injection_score"]) >= SHIPPED_THRESHOLD and injected["injection_flagged"] == "true"
    assert json.loads(notes["screen_result"]) == {"phone": 1}
    assert json.loads(injected["screen_result"]) == {"email": 1}
    assert "injection_flagged" not in notes_again
    assert sent(pod) == ["bob@example.com", "bob@example.com"]


def test_a_runs_flag_is_its_own_and_survives_a_restart(pod: Podium) -> None:
    """A workflow run waits for a person after a flagged result; a process that never saw the run reads its flag
    back from the audit log, and another run is not affected."""
    pod.people.add(OWNER, teams=["web"], by=sign_in(pod, TEST_ADMIN))
    run = _screen_app.read_then_send.start("injected", "bob@example.com", "Noted.")
    request = waiting(pod, run.id)
    assert request.reasons == ("policy:no-action-after-a-flagged-result",)
    clean = _screen_app.read_then_send.start("notes", "bob@example.com", "Noted.")
    assert clean.result() == "sent"

    fresh = Screening(pod.engine)
    flagged = fresh.screened(CallSite("x", run.id, 9, door="workflow", door_key=run.id))
    assert flagged.injection_seen and flagged.injection_score >= SHIPPED_THRESHOLD * 1000
    assert not fresh.screened(CallSite("y", clean.id, 9, door="workflow", door_key=clean.id)).injection_seen

    pod.reviews.approve(request.id, by=sign_in(pod, OWNER), rationale="the page was mine")
    assert run.result() == "sent"


def test_long_arguments_are_scanned_head_and_tail_within_the_bound_and_say_so(pod: Podium) -> None:
    middle = "log line. " * 4_000  # 40,000 characters
    with podium.request_scope("r-long"):
        with pytest.raises(ActionDenied, match="no-card-numbers-by-email"):
            agent.call_tool("send_email", to="bob@example.com", subject="log", body=f"{middle} card {CARD}")
        agent.call_tool("send_email", to="bob@example.com", subject="log", body=f"{middle} card {CARD} {middle}")
    (_, tail), (_, hidden) = audited(pod, "send_email")
    assert tail["screen_truncated"] == "arguments: scanned 16,384 of 40,043 chars"
    assert json.loads(tail["screen_arguments"]) == {"credit_card": 1, "email": 1}  # in the tail: found
    assert json.loads(hidden["screen_arguments"]) == {"email": 1}  # past the bound: said, not found
    assert hidden["screen_truncated"].startswith("arguments: scanned 16,384 of 80,")


def test_memory_writes_are_scanned_and_without_the_scanner_the_audit_says_so(pod: Podium) -> None:
    """No memory package makes memory writes yet; a call that carries arguments is screened like a tool's."""
    key = "sk_live_" + "4eC39HqLyjWDarjtT1zdp7dc"  # Stripe's documented test key
    write = Call("reader", "memory.write", "notes", "", digest("w"), arguments={"text": f"key {key}"})
    with pytest.raises(ActionDenied, match="no-secrets-in-memory"):
        pod.governor.authorize(write)
    ((_, detail),) = audited(pod, "notes")
    assert json.loads(detail["screen_arguments"]) == {"api_key": 1}

    blind = CallContext(write, CallSite("z", None, None))
    Screening(pod.engine, scanner=None).check(blind)
    assert blind.detail == {"screen_skipped": "no PII or secret scan: pip install 'podium[api]'"}
    assert blind.call.data == frozenset()


def test_every_governed_call_sees_the_default_when_nothing_was_read(pod: Podium) -> None:
    context = CallContext(Call("reader", "model", "obedient", "local", digest("m")), CallSite("m", None, None))
    Screening(pod.engine).check(context)
    assert context.screened == Screened(0, False)


def test_the_screening_policies_pass_their_own_cases() -> None:
    from typer.testing import CliRunner

    from podium.cli import app

    result = CliRunner().invoke(app, ["policy", "test", str(POLICIES)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "all cases pass" in result.output
