"""Humans on the loop: exception rules, approvals bound to the exact action, deadlines, the queue's decisions."""

from __future__ import annotations

import dataclasses
import inspect
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from dbos import DBOS
from dbos._error import DBOSAwaitedWorkflowCancelledError

import podium
from podium import Podium, Settings
from podium.errors import ActionDenied, BudgetExhausted, NotFoundError, UsageError
from podium.models import ClassifierModel
from podium.policy import Identity
from podium.review import Facts, ReviewRequest
from podium.store import tables
from podium.testing import TEST_ADMIN, sign_in
from tests._people import operator
from tests.review import _app
from tests.review._app import LEAD, OWNER


@pytest.fixture
def pod(settings: Settings) -> Iterator[Podium]:
    with podium.launch(settings, _app.app) as launched:
        admin = sign_in(launched, TEST_ADMIN)
        launched.people.add("bob", teams=["refunds"], by=admin, usd_per_hour=90.0)
        launched.people.add("alice", teams=["refunds"], by=admin)
        _app.tamper["extra_usd"] = 0.0
        yield launched


def waiting(pod: Podium, run_id: str, status: str = "pending", timeout: float = 30.0) -> ReviewRequest:
    """The run's review request, once it has `status`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [r for r in pod.reviews.list(status=status) if r.run_id == run_id]
        if found:
            return found[0]
        run = pod.runs.get(run_id)
        assert run.status in ("PENDING", "ENQUEUED"), f"run {run_id} ended ({run.status}: {run.error}) without a review"
        time.sleep(0.05)
    raise AssertionError(f"run {run_id} has no {status} review request after {timeout} s")


def audit_of(pod: Podium, resource: str) -> list[tuple[str, str, str]]:
    log = tables.audit_log
    with pod.engine.connect() as conn:
        rows = conn.execute(
            sa.select(log.c.actor, log.c.action, log.c.decision).where(log.c.resource == resource).order_by(log.c.seq)
        )
        return [tuple(row) for row in rows]  # type: ignore[misc]


def outbox(pod: Podium) -> list[str]:
    return [m.body for m in pod.outbox.messages()]


def test_each_rule_names_its_reason() -> None:
    rules = _app.RULES
    calm = Facts(value_usd=20.0, confidence=0.9)
    assert rules.reasons(calm, {"note": "thanks"}) == []
    assert rules.reasons(Facts(value_usd=101.0), {}) == ["high_value"]
    assert rules.reasons(Facts(confidence=0.2), {}) == ["low_confidence"]
    assert rules.reasons(Facts(flags=frozenset({"chargeback", "vip"})), {}) == ["compliance:chargeback"]
    assert rules.reasons(calm, {"note": "card 4111 1111 1111 1111"}) == ["data_class:card_number"]
    assert rules.reasons(calm, {"note": "order 4111 1111 1111 1112"}) == [], "not a card number: Luhn fails"
    assert rules.reasons(Facts(flags=frozenset({"guardrail:injection"})), {}) == ["guardrail:injection"]
    with pytest.raises(UsageError, match="unknown data classes"):
        podium.ExceptionRules(data_classes={"passport"})


def test_no_rule_reads_a_fact_nothing_produces() -> None:
    """Shadow disagreement is a flag a workflow raises from `podium.route_disagreed()` and its `compliance_flags`
    name (tests/governance/test_shadow.py), not a rule or a fact of its own: no field exists that nothing fills."""
    assert "shadow_disagreement" not in {f.name for f in dataclasses.fields(podium.ExceptionRules)}
    assert "shadow_agrees" not in {f.name for f in dataclasses.fields(Facts)}
    assert "shadow_agrees" not in inspect.signature(podium.assess).parameters


def test_work_inside_the_boundaries_proceeds_without_a_person(pod: Podium) -> None:
    assert _app.refund_flow.start("c-1", 40.0).result() == "paid"
    assert pod.reviews.list(status=None) == []


def test_an_approved_action_is_performed_once_and_the_decision_recorded(pod: Podium) -> None:
    run = _app.refund_flow.start("c-2", 250.0)
    request = waiting(pod, run.id)
    assert (request.reasons, request.waiting_on, request.action["arguments"]["amount_usd"]) == (
        ("high_value",),
        "team:refunds",
        250.0,
    )
    assert request.chain == ("team:refunds", LEAD, OWNER)
    assert outbox(pod) == []
    pod.reviews.approve(request.id, by=sign_in(pod, "bob"), rationale="customer is right", minutes=2, label="refund")
    assert run.result() == "paid"
    assert outbox(pod) == ["250.00"]
    decided = pod.reviews.get(request.id)
    assert (decided.status, decided.decided_by, decided.minutes, decided.label) == ("approved", "bob", 2, "refund")
    assert decided.consumed_by is not None
    assert [a for _, a, _ in audit_of(pod, f"review:{request.id}")] == ["review.request", "review.approve"]
    with pod.engine.connect() as conn:
        cost = conn.execute(sa.select(tables.ledger.c.cost_nano_usd).where(tables.ledger.c.kind == "review")).scalar()
        label = conn.execute(sa.select(tables.labels.c.label, tables.labels.c.predicted)).one()
    assert cost == 3_000_000_000, "2 minutes at bob's loaded rate of $90 an hour"
    assert tuple(label) == ("refund", "refund")


def test_an_approval_binds_the_exact_arguments(pod: Podium) -> None:
    bob = sign_in(pod, "bob")
    run = _app.refund_flow.start("c-3", 150.0)
    request = waiting(pod, run.id)
    pod.reviews.approve(request.id, by=bob)
    _app.tamper["extra_usd"] = 1000.0  # the step now proposes 1150 where the person approved 150
    with pytest.raises(ActionDenied, match="proposes arguments other than the ones approved"):
        run.result()
    assert outbox(pod) == []
    refusals = [r for r in audit_of(pod, "refund") if r[2] == "denied"]
    assert refusals == [("agent:refunder", "tool.call", "denied")]
    with pytest.raises(UsageError, match="already approved by bob; a request is decided once"):
        pod.reviews.approve(request.id, by=bob)


def test_an_approval_cannot_be_replayed_by_another_call(pod: Podium) -> None:
    run = _app.refund_twice.start("c-4", 300.0)
    request = waiting(pod, run.id)
    pod.reviews.approve(request.id, by=sign_in(pod, "alice"))
    with pytest.raises(ActionDenied, match="already used by another call"):
        run.result()
    assert outbox(pod) == ["300.00"], "performed once, by the first call"


def test_an_edit_is_a_new_action_performed_instead_and_audited_as_a_correction(pod: Podium) -> None:
    lead = sign_in(pod, LEAD)
    run = _app.refund_flow.start("c-5", 500.0, note="goodwill")
    request = waiting(pod, run.id)
    with pytest.raises(UsageError, match=r"amount_usd: expected number, got str 'lots'.*Nothing was changed"):
        pod.reviews.edit(request.id, {"amount_usd": "lots"}, by=lead)
    with pytest.raises(UsageError, match="unknown field 'amount'"):
        pod.reviews.edit(request.id, {"amount": 5}, by=lead)
    assert pod.reviews.get(request.id).status == "pending"
    edited = pod.reviews.edit(request.id, {"amount_usd": 120.0}, by=lead, rationale="policy caps goodwill at 120")
    assert edited.edited and edited.approved_action is not None
    assert run.result() == "paid"
    assert outbox(pod) == ["120.00 goodwill"]
    actions = audit_of(pod, f"review:{request.id}")
    assert [a for _, a, _ in actions] == ["review.request", "review.correct"]


def test_only_the_chain_decides_and_a_claim_reserves_the_decision(pod: Podium) -> None:
    run = _app.refund_flow.start("c-6", 180.0)
    request = waiting(pod, run.id)
    before = len(audit_of(pod, f"review:{request.id}"))
    with pytest.raises(ActionDenied, match="person:mallory may not review.decide"):
        pod.reviews.approve(request.id, by=sign_in(pod, "mallory"))
    pod.reviews.claim(request.id, by=sign_in(pod, "bob"))
    with pytest.raises(ActionDenied, match="claimed-reviews-are-decided-by-their-claimant"):
        pod.reviews.reject(request.id, by=sign_in(pod, "alice"))
    assert pod.reviews.get(request.id).status == "pending", "refusals change nothing"
    carol = sign_in(pod, "carol")  # in the directory: a request is handed to someone who exists
    pod.reviews.reassign(request.id, to="carol", by=sign_in(pod, LEAD), rationale="bob is away")
    assert pod.reviews.get(request.id).waiting_on == "carol"
    pod.reviews.reject(request.id, by=carol, rationale="duplicate request")
    assert run.result() == "not paid: rejected"
    assert outbox(pod) == []
    actions = [(actor, action, decision) for actor, action, decision in audit_of(pod, f"review:{request.id}")]
    assert actions[before:] == [
        ("person:mallory", "review.decide", "denied"),
        ("person:bob", "review.claim", "allowed"),
        ("person:alice", "review.decide", "denied"),
        (f"person:{LEAD}", "review.reassign", "allowed"),
        ("person:carol", "review.reject", "rejected"),
    ]


def test_an_unanswered_request_escalates_along_the_chain_then_applies_the_default(pod: Podium) -> None:
    run = _app.refund_quick.start("c-7", 900.0)
    assert run.result() == "not paid: expired"
    (request,) = pod.reviews.list(status="expired")
    assert request.level == 2
    trail = audit_of(pod, f"review:{request.id}")
    assert trail == [
        ("agent:refunder", "review.request", "pending"),
        ("system", "review.escalate", "escalated"),
        ("system", "review.escalate", "escalated"),
        ("system", "review.expire", "expired"),
    ]
    with pytest.raises(UsageError, match="already expired"):
        pod.reviews.approve(request.id, by=sign_in(pod, OWNER))
    assert outbox(pod) == []


def test_a_held_request_waits_for_anyone_in_the_chain(pod: Podium) -> None:
    run = _app.refund_quick_hold.start("c-8", 900.0)
    request = waiting(pod, run.id, status="held", timeout=60)
    assert [a for _, a, _ in audit_of(pod, f"review:{request.id}")][-1] == "review.hold"
    pod.reviews.approve(request.id, by=sign_in(pod, OWNER), rationale="checked with the bank")
    assert run.result() == "paid"
    assert outbox(pod) == ["900.00"]


def test_bad_decisions_are_refused_and_change_nothing(pod: Podium) -> None:
    bob = sign_in(pod, "bob")
    with pytest.raises(NotFoundError, match="no review request 'nope'"):
        pod.reviews.approve("nope", by=bob)
    run = _app.refund_flow.start("c-9", 130.0, confidence=0.3)
    request = waiting(pod, run.id)
    assert request.reasons == ("high_value", "low_confidence")
    with pytest.raises(UsageError, match="give a number from 0 to 1440"):
        pod.reviews.approve(request.id, by=bob, minutes=-1)
    for impostor in ("person:team:refunds", "team:refunds", "owner"):  # a whole team, or "the owner", gets no key
        with pytest.raises(UsageError, match="is not a person or an agent"):
            pod.people.add(impostor, teams=["refunds"], by=sign_in(pod, TEST_ADMIN))
    with pytest.raises(UsageError, match="'bob' is a name, not an identity"):
        pod.reviews.approve(request.id, by="bob")  # type: ignore[arg-type]
    with pytest.raises(UsageError, match="cannot reassign to 'owner'"):
        pod.reviews.reassign(request.id, to="owner", by=sign_in(pod, LEAD))
    with pytest.raises(UsageError, match="not the .* you were shown"):
        pod.reviews.approve(request.id, by=bob, expected_digest="00000000")
    assert pod.reviews.get(request.id).status == "pending"
    pod.reviews.reject(request.id, by=bob)
    assert run.result() == "not paid: rejected"


def test_the_queue_filters_by_reason_value_and_age(pod: Podium) -> None:
    high = _app.refund_flow.start("c-10", 700.0)
    unsure = _app.refund_flow.start("c-11", 20.0, confidence=0.1)
    waiting(pod, high.id), waiting(pod, unsure.id)
    assert [r.run_id for r in pod.reviews.list(reason="high_value")] == [high.id]
    assert [r.run_id for r in pod.reviews.list(reason="low_confidence")] == [unsure.id]
    assert [r.run_id for r in pod.reviews.list(min_value_usd=500)] == [high.id]
    assert pod.reviews.list(older_than_s=3600) == []
    assert len(pod.reviews.list(waiting_on="team:refunds")) == 2
    pod.reviews.reject_many([r.id for r in pod.reviews.list()], by=sign_in(pod, "bob"), rationale="bulk: test data")
    assert (high.result(), unsure.result()) == ("not paid: rejected", "not paid: rejected")


def test_a_persons_label_retrains_the_model_that_judged(pod: Podium) -> None:
    texts = ["where is my parcel", "parcel not arrived", "I want my money back", "please refund me", "I dispute it"]
    labels = ["delivery", "delivery", "refund", "refund", "chargeback"]  # a person labels with the model's labels
    pod.trained.train_classifier(_app.INTENT_MODEL, texts, labels)
    served = pod.models.get(_app.INTENT_MODEL)
    assert isinstance(served, ClassifierModel)
    assert pod.learn(min_new=1) == {}, "no labels from people yet: nothing to learn"
    run = _app.refund_flow.start("c-30", 45.0, confidence=0.2)  # unsure: a person looks
    request = waiting(pod, run.id)
    assert request.judgement is not None and request.judgement["label"] == "refund"
    pod.reviews.reject(request.id, by=sign_in(pod, "bob"), label="chargeback", rationale="this is a chargeback")
    assert run.result() == "not paid: rejected"
    before = served.sha256
    retrained = pod.learn(min_new=1)
    assert set(retrained) == {_app.INTENT_MODEL}
    assert served.sha256 != before, "the process serves the retrained file at once"
    assert served.classifier.predict(request.judgement["input"]).label == "chargeback"
    assert ("system", "model.retrain", "allowed") in audit_of(pod, f"model:{_app.INTENT_MODEL}")
    assert pod.learn(min_new=1) == {}, "the same labels do not retrain twice"


def with_refund_policy(settings: Settings, tmp_path: Path) -> Settings:
    """`settings` with a project policy that sends every refund to a person (an `@exception` forbid)."""
    policies = tmp_path / "policies"
    policies.mkdir()
    (policies / "refunds.cedar").write_text(
        '@id("refunds-need-a-person")\n@exception("a person looks at every refund")\n'
        'forbid (principal, action == Action::"tool.call", resource is Tool) when { resource.name == "refund" };\n'
    )
    return settings.model_copy(update={"policies": policies})


def test_a_policy_marked_exception_sends_the_call_to_a_person_instead_of_denying_it(
    settings: Settings, tmp_path: Path
) -> None:
    with podium.launch(with_refund_policy(settings, tmp_path), _app.app) as pod:
        run = _app.refund_flow.start("c-40", 10.0)  # inside every rule: only the policy stops it
        request = waiting(pod, run.id)
        assert request.reasons == ("policy:refunds-need-a-person",)
        pod.reviews.approve(request.id, by=sign_in(pod, OWNER))
        assert run.result() == "paid"
        assert outbox(pod) == ["10.00"]


def test_an_action_that_may_wait_must_be_the_first_call_of_its_step(pod: Podium) -> None:
    assert _app.refund_after_note.start("c-41", 50.0).result() == "paid", "below every threshold: no person"
    run = _app.refund_after_note.start("c-42", 5000.0)
    with pytest.raises(UsageError, match="not the first governed call in step 'tests.review.note_then_pay'"):
        run.result()
    assert outbox(pod) == ["refund of 50.0 for c-41", "50.00", "refund of 5000.0 for c-42"]
    assert pod.reviews.list(status=None) == [], "nothing waits: the workflow has to be fixed first"


def test_a_reason_with_a_chain_of_its_own_is_decided_only_by_that_chain(pod: Podium) -> None:
    cora = sign_in(pod, "cora", teams=["compliance"])
    run = _app.refund_flow.start("c-43", 20.0, flags=("chargeback",))
    request = waiting(pod, run.id)
    assert (request.reasons, request.chain) == (("compliance:chargeback",), ("team:compliance", OWNER))
    with pytest.raises(ActionDenied, match="person:bob may not review.decide"):
        pod.reviews.approve(request.id, by=sign_in(pod, "bob"))  # a refunds reviewer: not for compliance reasons
    assert pod.reviews.get(request.id).status == "pending"
    pod.reviews.approve(request.id, by=cora)
    assert run.result() == "paid"


def test_nobody_appoints_themselves_the_first_admin_podium_init_does(settings: Settings) -> None:
    """No first-come admin: before there is one, nobody may make themselves one (not even with an identity, which
    nobody can get yet); `podium init` (`PersonKeys.bootstrap`) makes the first, once; then only admins change
    the directory, and never so that it is left without an admin."""
    with podium.connect(settings) as pod:
        claimant = Identity("person", "root@example.com", "made-by-hand")  # no key exists yet to prove anyone
        with pytest.raises(ActionDenied, match="person:root@example.com may not people.change"):
            pod.people.add("root@example.com", teams=["admins"], by=claimant)
        assert pod.people.list() == []
        root = pod.authenticate(pod.keys.bootstrap("root@example.com").key)
        with pytest.raises(UsageError, match=r"already has an admin \(root@example.com\)"):
            pod.keys.bootstrap("mallory@example.com")
        pod.people.add("bob", teams=["refunds"], by=root)
        bob = pod.authenticate(pod.keys.issue("bob", by=root).key)
        for change in (["refunds", "admins"], ["refunds", "compliance"]):  # not even their own entry
            with pytest.raises(ActionDenied, match="person:bob may not people.change"):
                pod.people.add("bob", teams=change, by=bob)
        with pytest.raises(ActionDenied, match="person:bob may not people.change"):
            pod.people.add("mallory", teams=["refunds"], by=bob)
        assert pod.people.find("mallory") is None and pod.people.get("bob").teams == ("refunds",)
        pod.people.add("bob", teams=["refunds", "compliance"], by=root)
        pod.people.add("root@example.com", teams=["admins", "refunds"], by=root)  # their own entry
        assert pod.people.get("bob").teams == ("compliance", "refunds")
        with pytest.raises(UsageError, match="is the last admin"):  # or nobody could change the directory again
            pod.people.remove("root@example.com", by=root)
        with pytest.raises(UsageError, match="is the last admin"):
            pod.people.add("root@example.com", teams=["refunds"], by=root)
        assert pod.people.get("root@example.com").teams == ("admins", "refunds")


def test_only_the_chain_reassigns_a_claimed_request(pod: Podium) -> None:
    bob = sign_in(pod, "bob")
    run = _app.refund_flow.start("c-44", 300.0)
    request = waiting(pod, run.id)
    dave = sign_in(pod, "dave")
    pod.reviews.reassign(request.id, to="dave", by=sign_in(pod, LEAD))
    pod.reviews.claim(request.id, by=bob)
    with pytest.raises(ActionDenied, match="only-the-chain-reassigns"):
        pod.reviews.reassign(request.id, to="dave", by=dave)  # a reassignee, not in the chain
    assert pod.reviews.get(request.id).claimed_by == "bob"
    pod.reviews.approve(request.id, by=bob)
    assert run.result() == "paid"


def test_a_cancelled_run_leaves_the_queue_and_a_resumed_one_returns(pod: Podium) -> None:
    bob = sign_in(pod, "bob")
    owner = operator(pod, OWNER)
    run = _app.refund_flow.start("c-45", 300.0)
    request = waiting(pod, run.id)
    pod.runs.cancel(run.id, by=owner)
    with pytest.raises(DBOSAwaitedWorkflowCancelledError):
        run.result()  # the cancel woke the waiting execution, which ended
    assert pod.reviews.get(request.id).status == "cancelled"
    assert pod.reviews.list() == []
    with pytest.raises(UsageError, match="already cancelled"):
        pod.reviews.approve(request.id, by=bob)
    pod.runs.resume(run.id, by=owner)
    asked_again = waiting(pod, run.id)
    assert asked_again.id != request.id and asked_again.action_digest == request.action_digest
    pod.reviews.approve(asked_again.id, by=bob)
    assert DBOS.retrieve_workflow(run.id).get_result() == "paid"  # the resumed execution
    assert outbox(pod) == ["300.00"]


def test_an_exception_policy_never_lets_a_person_approve_what_was_never_granted(
    settings: Settings, tmp_path: Path
) -> None:
    with podium.launch(with_refund_policy(settings, tmp_path), _app.app) as pod:
        with pytest.raises(ActionDenied, match="only a workflow run can wait for"):
            _app.refunder.call_tool("refund", customer="c-47", amount_usd=1.0)  # outside any run: nobody can wait
        pod.agents.revoke("refunder", tools=["refund"], by=operator(pod, OWNER))
        with pytest.raises(ActionDenied, match="not allowed tool 'refund'"):
            _app.refund_flow.start("c-46", 10.0).result()
        assert pod.reviews.list(status=None) == []
        assert outbox(pod) == []


def test_a_kill_withdraws_the_requests_of_the_runs_it_cancels(pod: Podium) -> None:
    run = _app.refund_flow.start("c-48", 300.0)
    request = waiting(pod, run.id)
    report = pod.kill("agent:refunder", by=operator(pod, OWNER), reason="refunds misbehaving")
    assert report.runs_cancelled == 1
    with pytest.raises(DBOSAwaitedWorkflowCancelledError):
        run.result()  # the wait was woken and the run ended: no thread left blocked until the deadline
    assert pod.reviews.get(request.id).status == "cancelled"
    assert ("person:" + OWNER, "review.withdraw", "cancelled") in audit_of(pod, f"review:{request.id}")
    assert outbox(pod) == []


def test_an_action_stopped_by_a_rule_and_a_budget_runs_once_both_approve(pod: Podium) -> None:
    pod.budgets.set(
        "agent:refunder", 0.0, by=operator(pod, OWNER), on_exhausted="review"
    )  # no room for any refund's fee
    run = _app.refund_flow.start("c-50", 250.0)
    first = waiting(pod, run.id)
    assert first.reasons == ("high_value",)
    pod.reviews.edit(first.id, {"amount_usd": 200.0}, by=sign_in(pod, "bob"), rationale="200 is what we owe")
    second = waiting(pod, run.id)
    assert second.reasons == ("budget_exhausted:agent:refunder",)
    assert second.action["arguments"]["amount_usd"] == 200.0, "asked about what the first person let through"
    pod.reviews.approve(second.id, by=sign_in(pod, "alice"), rationale="worth the fee")
    assert run.result() == "paid"
    assert outbox(pod) == ["200.00"]
    assert pod.budgets.get("agent:refunder").spent_nano_usd == round(_app.REFUND_FEE_USD * 1e9)
    assert {pod.reviews.get(r.id).consumed_by for r in (first, second)} != {None}


def test_a_step_tells_its_workflow_which_reviews_its_action_waited_for(pod: Podium) -> None:
    assert _app.refund_reviewed.start("c-60", 20.0).result() == podium.Reviewed("paid")
    # Nothing in the workflow's own rules fires here: only the budget asks a person.
    pod.budgets.set("agent:refunder", 0.0, by=operator(pod, OWNER), on_exhausted="review")
    run = _app.refund_reviewed.start("c-61", 20.0)
    request = waiting(pod, run.id)
    pod.reviews.approve(request.id, by=sign_in(pod, "bob"))
    paid = run.result()
    assert (paid.value, paid.waited, paid.reviews) == ("paid", True, (request.id,))
    assert paid.reasons == ("budget_exhausted:agent:refunder",)
    assert outbox(pod) == ["20.00", "20.00"]


def test_an_approval_over_one_budget_does_not_lift_another(pod: Podium) -> None:
    owner = operator(pod, OWNER)
    pod.budgets.set("agent:refunder", 0.0, by=owner, on_exhausted="review")
    pod.budgets.set("team:refunds", 0.0, by=owner)  # a hard cap: stop
    run = _app.refund_flow.start("c-51", 20.0)
    request = waiting(pod, run.id)
    assert request.reasons == ("budget_exhausted:agent:refunder",)
    pod.reviews.approve(request.id, by=sign_in(pod, "bob"))
    with pytest.raises(BudgetExhausted, match="budget team:refunds is exhausted"):
        run.result()
    assert outbox(pod) == []


def test_reasons_with_chains_of_their_own_are_each_decided_by_their_chain(pod: Podium) -> None:
    cora = sign_in(pod, "cora", teams=["compliance"])
    run = _app.refund_flow.start("c-52", 250.0, flags=("chargeback",))  # high value, and a compliance flag
    compliance = waiting(pod, run.id)
    assert (compliance.reasons, compliance.waiting_on) == (("compliance:chargeback",), "team:compliance")
    pod.reviews.approve(compliance.id, by=cora)
    business = waiting(pod, run.id)
    assert (business.reasons, business.waiting_on) == (("high_value",), "team:refunds")
    with pytest.raises(ActionDenied, match="person:cora may not review.decide"):
        pod.reviews.approve(business.id, by=cora)
    pod.reviews.approve(business.id, by=sign_in(pod, "bob"))
    assert run.result() == "paid"
    assert outbox(pod) == ["250.00"]
