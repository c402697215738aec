"""The kill switch: it halts what it covers at once, even a side effect already under way, and is audited."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from podium import Podium, Settings
from podium.cli import app
from podium.errors import ActionDenied, ActorStopped, NotFoundError, UsageError
from podium.governance._kill import kill_scope
from podium.store import tables
from podium.testing import sign_in
from tests import _apps
from tests._people import operator, operator_key


@pytest.fixture
def pod(settings: Settings) -> Iterator[Podium]:
    for event in (_apps.inside_tool, _apps.let_tool_finish, _apps.parked, _apps.release):
        event.clear()
    with _apps.launch(settings) as launched:
        yield launched
    _apps.let_tool_finish.set()
    _apps.release.set()


def audit(pod: Podium, **where: str) -> list[sa.Row[tuple[object, ...]]]:
    log = tables.audit_log
    query = sa.select(log).order_by(log.c.seq)
    for column, value in where.items():
        query = query.where(log.c[column] == value)
    with pod.engine.connect() as conn:
        return list(conn.execute(query))


def wait_for(predicate: object, what: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if callable(predicate) and predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_kill_that_lands_while_a_side_effect_is_under_way_stops_it(pod: Podium) -> None:
    ops_lead, ciso = (operator(pod, name) for name in ("ops-lead", "ciso"))
    _record, key = pod.agents.add("tester-api", owner="qa-lead@example.com", by=ops_lead)
    pod.agents.delegate("tester", "tester-api-helper", by=ops_lead)
    run = _apps.slow_side_effect.options(run_id="run-slow").start("pay the invoice")
    assert _apps.inside_tool.wait(timeout=30), "the tool never started"  # admitted: past the governor's check

    report = pod.kill("agent:tester", by=ciso, reason="incident 42")
    _apps.let_tool_finish.set()  # the tool now tries to commit its side effect, after the kill was acknowledged
    wait_for(lambda: audit(pod, decision="stopped"), "the fence's refusal")

    assert pod.outbox.messages() == [], "a side effect happened after the kill was acknowledged"
    (stopped,) = audit(pod, decision="stopped")
    assert (stopped.actor, stopped.resource, stopped.run_id) == ("agent:tester", "slow_note", "run-slow")
    assert "the kill switch covers agent 'tester'" in json.loads(stopped.detail)["reason"]
    (killed,) = audit(pod, action="governance.kill")
    assert (killed.actor, killed.resource, json.loads(killed.detail)["reason"]) == (
        "person:ciso",
        "agent:tester",
        "incident 42",
    )
    assert report.scope == "agent:tester" and set(report.agents) == {"tester", "tester-api-helper"}
    assert report.runs_cancelled == 1 and report.acknowledged_s < report.total_s
    wait_for(lambda: run.status() == "CANCELLED", "the run to be cancelled")
    assert key.secret  # another agent's key is untouched by this kill
    assert pod.agents.authenticate(key.secret).name == "tester-api"

    with pytest.raises(ActorStopped, match="kill switch covers agent 'tester'.*podium restore"):
        _apps.worker.call_tool("note", text="still killed")
    pod.restore("agent:tester", by=ciso, reason="incident closed")
    assert _apps.worker.call_tool("note", text="back") == "queued"
    assert [e.actor for e in audit(pod, action="governance.restore")] == ["person:ciso"]
    assert pod.verify_audit().ok


def test_a_kill_revokes_the_agents_keys_and_restore_does_not_bring_them_back(pod: Podium) -> None:
    ops_lead, ciso = (operator(pod, name) for name in ("ops-lead", "ciso"))
    _record, key = pod.agents.add("bot", owner="ops@example.com", team="support", by=ops_lead)
    report = pod.kill("team:support", by=ciso)
    assert "bot" in report.agents and report.keys_revoked == 1
    with pytest.raises(ActionDenied, match="revoked by person:ciso"):
        pod.agents.authenticate(key.secret)
    with pytest.raises(ActorStopped):  # teller is in team support
        _apps.teller.call_tool("note", text="x")
    pod.restore("team:support", by=ciso)
    with pytest.raises(ActionDenied, match="revoked"):
        pod.agents.authenticate(key.secret)
    fresh = pod.agents.rotate_key("bot", by=ops_lead)
    assert pod.agents.authenticate(fresh.secret).name == "bot"


def test_a_workflow_kill_cancels_its_runs_in_flight_and_refuses_their_next_call(pod: Podium) -> None:
    ciso = operator(pod, "ciso")
    run = _apps.cancellable.options(run_id="run-parked").start("late")
    assert _apps.parked.wait(timeout=30)
    report = pod.kill("workflow:tests.cancellable", by=ciso)
    assert report.runs_cancelled == 1 and report.agents == ()
    _apps.release.set()
    wait_for(lambda: audit(pod, decision="stopped"), "the refusal of the parked step's call")
    assert pod.outbox.messages() == []
    assert run.status() == "CANCELLED"
    assert _apps.worker.call_tool("note", text="outside that workflow") == "queued"  # the agent itself may act


def test_kill_everything(pod: Podium) -> None:
    ciso = operator(pod, "ciso")
    report = pod.kill("all", by=ciso)
    assert set(report.agents) >= {"tester", "intruder", "teller"}
    with pytest.raises(ActorStopped):
        _apps.worker.run("hello", model="echo")
    pod.restore("all", by=ciso)
    assert _apps.worker.run("hello", model="echo") == "echo"


def test_bad_kill_requests_say_what_to_fix(pod: Podium) -> None:
    ciso = operator(pod, "ciso")
    with pytest.raises(NotFoundError, match="no agent named 'nobody'"):
        pod.kill("agent:nobody", by=ciso)
    with pytest.raises(NotFoundError, match="nobody is in team 'ghosts'"):
        pod.kill("team:ghosts", by=ciso)
    with pytest.raises(UsageError, match="exactly one of --agent, --workflow, --team, --person, --key or --all"):
        kill_scope(agent="tester", team="support")
    with pytest.raises(UsageError, match="kill scope 'crew:x' is not agent:<name>"):
        pod.kill("crew:x", by=ciso)
    with pytest.raises(NotFoundError, match="no kill covers 'agent:tester'"):
        pod.restore("agent:tester", by=ciso)
    with pytest.raises(ActionDenied, match="may not governance.kill"):
        pod.kill("agent:intruder", by=sign_in(pod, "agent:tester"))  # agents do not pull the switch on each other
    assert pod.kill_switch.active() == []


def test_the_cli_kills_and_restores(pod: Podium) -> None:
    runner = CliRunner()
    base = ["--database-url", pod.settings.resolved_database_url, "--home", str(pod.settings.home)]
    base += ["--key", operator_key(pod, "ciso")]
    killed = runner.invoke(app, [*base, "kill", "--agent", "tester"], terminal_width=200)
    assert killed.exit_code == 0, killed.output
    assert "killed agent:tester" in killed.output and "acknowledged in" in killed.output
    shown = runner.invoke(app, [*base, "agents", "show", "tester"], terminal_width=200).output
    assert "killed: agent:tester" in shown
    restored = runner.invoke(app, [*base, "restore", "--agent", "tester"], terminal_width=200)
    assert restored.exit_code == 0 and "restored" in restored.output
