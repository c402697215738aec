"""The privilege-escalation matrix: every way an agent might widen what it may do is refused, and audited."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import pytest
import sqlalchemy as sa

import podium
from podium import Podium, Settings
from podium.errors import ActionDenied, ActorStopped, GovernanceError, UsageError
from podium.governance import Call
from podium.store import tables
from podium.testing import sign_in
from tests import _apps
from tests._people import operator

# The code of a delegate: what it declares does not matter, the registry's entry for it does.
HELPER = podium.Agent("tester-helper", owner="qa-lead@example.com", models=["echo"], tools=["note", "shout"])


@pytest.fixture
def pod(settings: Settings) -> Iterator[Podium]:
    with _apps.launch(settings) as launched:
        risk_officer = operator(launched, "risk-officer")
        launched.agents.grant("teller", tools=["wire_money"], by=risk_officer)  # granted, yet another team's tool
        yield launched


def _grant_itself_a_tool(pod: Podium) -> None:
    pod.agents.grant("tester", tools=["shout"], by=sign_in(pod, "agent:tester"))


def _grant_another_agent_a_tool(pod: Podium) -> None:
    pod.agents.grant("intruder", tools=["note"], by=sign_in(pod, "agent:tester"))


def _lift_its_own_suspension(pod: Podium) -> None:
    pod.agents.set_status("tester", "suspended", by=operator(pod, "ciso"))
    pod.agents.set_status("tester", "active", by=sign_in(pod, "agent:tester"))


def _raise_its_own_budget(pod: Podium) -> None:
    pod.budgets.set("agent:tester", 0.01, by=operator(pod, "cfo"))
    pod.budgets.set("agent:tester", 1_000_000, by=sign_in(pod, "agent:tester"))


def _resume_a_run_a_person_cancelled(pod: Podium) -> None:
    _apps.parked.clear()
    _apps.release.clear()
    _apps.cancellable.options(run_id="run-stopped").start("x")
    assert _apps.parked.wait(timeout=30)
    pod.runs.cancel("run-stopped", by=operator(pod, "ciso"))
    _apps.release.set()
    pod.runs.resume("run-stopped", by=sign_in(pod, "agent:tester"))


def _widen_a_delegation(pod: Podium) -> None:
    pod.agents.delegate("tester", "tester-helper", tools=["note", "shout"], by=sign_in(pod, "agent:tester"))


def _delegate_for_another_agent(pod: Podium) -> None:
    pod.agents.delegate("teller", "teller-helper", tools=["note"], by=sign_in(pod, "agent:tester"))


def _act_for_another_team(pod: Podium) -> None:
    _apps.teller.call_tool("wire_money", text="$1,000,000 to account 42")


def _read_another_teams_data(pod: Podium) -> None:
    pod.agents.grant("teller", data_scopes=["finance/ledger"], by=operator(pod, "risk-officer"))
    pod.governor.authorize(Call("teller", "memory.read", "finance/ledger", "data", ""))


def _use_a_revoked_key(pod: Podium) -> None:
    ops_lead = operator(pod, "ops-lead")
    _record, key = pod.agents.add("gateway-bot", owner="ops@example.com", team="support", by=ops_lead)
    pod.agents.rotate_key("gateway-bot", by=ops_lead)
    pod.agents.authenticate(key.secret)


def _use_a_key_to_act_as_another_agent(pod: Podium) -> None:
    ops_lead = operator(pod, "ops-lead")
    _record, key = pod.agents.add("gateway-bot", owner="ops@example.com", team="support", by=ops_lead)
    pod.agents.authenticate(key.secret, acting_as="tester")


def _act_after_suspension(pod: Podium) -> None:
    pod.agents.set_status("tester", "suspended", by=operator(pod, "ciso"))
    _apps.worker.call_tool("note", text="still here")


def _act_after_retirement(pod: Podium) -> None:
    pod.agents.retire("tester", by=operator(pod, "ciso"))
    _apps.worker.run("hello", model="echo")


def _delegate_acts_beyond_its_narrowed_delegator(pod: Podium) -> None:
    pod.agents.delegate("tester", "tester-helper", tools=["note"], by=sign_in(pod, "agent:tester"))  # allowed: a subset
    pod.agents.revoke("tester", tools=["note"], by=operator(pod, "ciso"))  # the delegator loses it; its delegate too
    HELPER.call_tool("note", text="through the back door")


MATRIX: list[tuple[str, Callable[[Podium], None], type[GovernanceError], str, str]] = [
    ("grant itself a tool", _grant_itself_a_tool, ActionDenied, "registry.change", "no-agent-changes-the-registry"),
    (
        "grant another agent a tool",
        _grant_another_agent_a_tool,
        ActionDenied,
        "registry.change",
        "no-agent-changes-the-registry",
    ),
    (
        "lift its own suspension",
        _lift_its_own_suspension,
        ActionDenied,
        "registry.change",
        "no-agent-changes-the-registry",
    ),
    ("raise its own budget", _raise_its_own_budget, ActionDenied, "budget.set", ""),
    ("resume a run a person cancelled", _resume_a_run_a_person_cancelled, ActionDenied, "run.resume", ""),
    ("widen a delegation", _widen_a_delegation, ActionDenied, "registry.delegate", "delegation-never-widens"),
    ("delegate for another agent", _delegate_for_another_agent, ActionDenied, "registry.delegate", ""),
    ("act for another team", _act_for_another_team, ActionDenied, "tool.call", "agents-act-only-for-their-team"),
    ("read another team's data", _read_another_teams_data, ActionDenied, "memory.read", "data-stays-with-its-team"),
    ("use a revoked key", _use_a_revoked_key, ActionDenied, "auth.key", ""),
    ("use its key to act as another agent", _use_a_key_to_act_as_another_agent, ActionDenied, "auth.key", ""),
    ("act after suspension", _act_after_suspension, ActorStopped, "tool.call", "only-active-agents-act"),
    ("act after retirement", _act_after_retirement, ActorStopped, "model.call", "only-active-agents-act"),
    (
        "delegate acts beyond its narrowed delegator",
        _delegate_acts_beyond_its_narrowed_delegator,
        ActionDenied,
        "tool.call",
        "",
    ),
]


@pytest.mark.parametrize(("attempt", "error", "action", "policy"), [m[1:] for m in MATRIX], ids=[m[0] for m in MATRIX])
def test_every_escalation_is_refused_and_audited(
    pod: Podium, attempt: Callable[[Podium], None], error: type[GovernanceError], action: str, policy: str
) -> None:
    outbox_before = len(pod.outbox.messages())
    with pytest.raises(error):
        attempt(pod)
    assert len(pod.outbox.messages()) == outbox_before, "a refused attempt had a side effect"
    log = tables.audit_log
    with pod.engine.connect() as conn:
        refusals = conn.execute(
            sa.select(log.c.actor, log.c.decision, log.c.policies, log.c.detail)
            .where(log.c.action == action, log.c.decision.in_(["denied", "stopped"]))
            .order_by(log.c.seq)
        ).all()
    assert refusals, f"the refused {action} was not audited"
    actor, decision, policies, detail = refusals[-1]
    assert actor.split(":")[0] in ("agent", "key"), f"the refusal is recorded against {actor}, not the agent"
    assert decision == ("stopped" if error is ActorStopped else "denied")
    assert json.loads(detail)["reason"]
    if policy:
        assert policy in json.loads(policies), f"expected {policy} to decide, got {policies}"
    assert pod.verify_audit().ok


def test_a_delegation_that_narrows_is_allowed_and_the_delegate_acts_within_it(pod: Podium) -> None:
    delegate = pod.agents.delegate("tester", "tester-helper", tools=["note"], by=sign_in(pod, "agent:tester"))
    assert (delegate.owner, delegate.delegated_by) == ("qa-lead@example.com", "tester")
    assert HELPER.call_tool("note", text="within bounds") == "queued"
    with pytest.raises(ActionDenied, match="not allowed tool 'shout'"):
        HELPER.call_tool("shout", text="beyond")
    pod.agents.set_status("tester", "suspended", by=operator(pod, "ciso"))  # stopping the delegator stops its delegates
    with pytest.raises(ActorStopped, match="its delegator"):
        HELPER.call_tool("note", text="after the delegator stopped")


def test_a_person_may_change_the_registry_and_it_is_audited(pod: Podium) -> None:
    pod.agents.grant("tester", tools=["shout"], by=operator(pod, "ciso"))
    assert _apps.worker.call_tool("shout", text="now allowed") == "NOW ALLOWED"
    with pod.engine.connect() as conn:
        actions = conn.execute(
            sa.select(tables.audit_log.c.actor, tables.audit_log.c.action).where(
                tables.audit_log.c.action.like("registry.%")
            )
        ).all()
    assert ("person:ciso", "registry.grant") in actions


def test_a_delegation_chain_holds_what_every_link_holds_and_names_them_in_the_audit(pod: Podium) -> None:
    """tester -> first -> second -> third: each link narrows; the deepest holds what all of them hold, a kill or
    suspension anywhere up the chain stops it, and its calls are audited on behalf of the whole chain."""
    ciso = operator(pod, "ciso")
    pod.agents.grant("tester", tools=["shout"], by=ciso)
    pod.agents.delegate("tester", "first", tools=["note", "shout"], by=sign_in(pod, "agent:tester"))
    pod.agents.delegate("first", "second", tools=["note", "shout"], by=sign_in(pod, "agent:first"))
    pod.agents.delegate("second", "third", tools=["note", "shout"], by=sign_in(pod, "agent:second"))
    third = podium.Agent("third", owner="qa-lead@example.com", models=[], tools=["note", "shout"])
    with podium.request_scope("chain-1", person="ann"):
        assert third.call_tool("shout", text="x") == "X"
    *_, last = pod.audit.entries(actor="agent:third")
    detail = json.loads(last.entry.detail)
    assert (detail["delegation_chain"], detail["on_behalf_of"]) == ("agent:second > agent:first > agent:tester", "ann")

    pod.agents.revoke("first", tools=["shout"], by=ciso)  # narrowing a link narrows everything below it
    with pytest.raises(ActionDenied, match="not allowed tool 'shout'"):
        third.call_tool("shout", text="y")
    pod.kill_switch.kill("agent:tester", by=ciso, reason="chain test")  # a kill at the top stops the bottom
    with pytest.raises(ActorStopped):
        third.call_tool("note", text="z")

    with pytest.raises(UsageError, match="at most 3 delegators"):
        pod.agents.delegate("third", "fourth", tools=["note"], by=sign_in(pod, "agent:third"))
