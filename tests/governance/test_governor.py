"""The governor: every call authorised, costed and audited; refusals audited too; stopped actors make no call."""

from __future__ import annotations

import json
import time

import pytest
import sqlalchemy as sa

from podium import ActionDenied, ActorStopped, Podium, Settings, UsageError
from podium.store import tables
from tests import _apps
from tests._people import operator


def audit_rows(pod: Podium) -> list[sa.Row[tuple[object, ...]]]:
    with pod.engine.connect() as conn:
        return list(conn.execute(sa.select(tables.audit_log).order_by(tables.audit_log.c.seq)))


def ledger_rows(pod: Podium) -> list[sa.Row[tuple[object, ...]]]:
    with pod.engine.connect() as conn:
        return list(conn.execute(sa.select(tables.ledger).order_by(tables.ledger.c.at)))


def test_a_governed_run_is_costed_and_audited(settings: Settings) -> None:
    with _apps.launch(settings) as pod:
        result = _apps.ask_then_note.options(run_id="run-1").start("tester", "first").result()

        assert result == "queued"
        ledger = ledger_rows(pod)
        assert [(r.run_id, r.step_id, r.kind, r.resource, r.agent) for r in ledger] == [
            ("run-1", 1, "model", "echo", "tester"),
            ("run-1", 2, "tool", "note", "tester"),
        ]
        model_row = ledger[0]
        assert (model_row.input_tokens, model_row.output_tokens, model_row.tier) == (7, 1, "frontier")
        # 7 tokens at $1,000/M in + 1 at $2,000/M out = $0.009 = 9,000,000 n$
        assert model_row.cost_nano_usd == 9_000_000
        assert pod.ledger.totals(["run-1"]).cost_nano_usd == 9_000_000
        entries = [e for e in audit_rows(pod) if e.run_id == "run-1"]
        assert [(e.action, e.resource, e.decision, e.actor) for e in entries] == [
            ("model.call", "echo", "allowed", "agent:tester"),
            ("tool.call", "note", "allowed", "agent:tester"),
        ]
        assert all(len(e.input_digest) == 64 and len(e.output_digest) == 64 for e in entries)
        assert [m.body for m in pod.outbox.messages()] == ["first: echo"]
        assert pod.verify_audit().ok


def test_a_model_the_agent_is_not_allowed_is_refused_and_audited(settings: Settings) -> None:
    with _apps.launch(settings) as pod:
        run = _apps.ask_then_note.options(run_id="run-denied").start("intruder", "x")
        with pytest.raises(ActionDenied, match="not allowed tool 'note'") as denied:
            run.result()
        assert denied.value.fields["agent"] == "intruder"

        with pytest.raises(ActionDenied, match="not allowed model 'other'.*Add it to the agent's models= list"):
            _apps.ask("tester", "other")

        decisions = [(e.actor, e.action, e.resource, e.decision) for e in audit_rows(pod)]
        assert ("agent:intruder", "tool.call", "note", "denied") in decisions
        assert ("agent:tester", "model.call", "other", "denied") in decisions
        # the refused tool never ran and nothing refused was costed
        assert pod.outbox.messages() == []
        assert {(r.agent, r.resource) for r in ledger_rows(pod)} == {("intruder", "echo")}


def test_a_suspended_agent_makes_no_further_call(settings: Settings) -> None:
    with _apps.launch(settings) as pod:
        security_officer = operator(pod, "security-officer")
        pod.agents.set_status("tester", "suspended", by=security_officer)
        with pytest.raises(ActorStopped, match="is suspended.*podium agents resume tester"):
            _apps.ask_then_note.options(run_id="run-suspended").start("tester", "x").result()
        assert ledger_rows(pod) == []
        assert pod.outbox.messages() == []
        actions = [(e.actor, e.action, e.decision) for e in audit_rows(pod)]
        assert ("person:security-officer", "registry.suspend", "allowed") in actions
        assert ("agent:tester", "model.call", "stopped") in actions

        pod.agents.set_status("tester", "active", by=security_officer)
        assert _apps.ask_then_note.options(run_id="run-restored").start("tester", "y").result() == "queued"


def test_a_cancelled_run_makes_no_further_call_even_mid_step(settings: Settings) -> None:
    _apps.parked.clear()
    _apps.release.clear()
    with _apps.launch(settings) as pod:
        run = _apps.cancellable.options(run_id="run-cancel").start("late")
        assert _apps.parked.wait(timeout=30), "the run never reached its parked step"
        assert pod.runs.cancel("run-cancel", by=operator(pod, "operator")).status == "CANCELLED"
        _apps.release.set()  # the step wakes up after the cancel and tries its tool call
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not any(e.decision == "stopped" for e in audit_rows(pod)):
            time.sleep(0.05)

        assert pod.outbox.messages() == [], "a cancelled run performed a side effect"
        assert [(r.kind, r.resource) for r in ledger_rows(pod)] == [("model", "echo")]
        stopped = [e for e in audit_rows(pod) if e.decision == "stopped"]
        assert [(e.resource, e.run_id) for e in stopped] == [("note", "run-cancel")]
        assert "was cancelled" in json.loads(str(stopped[0].detail))["reason"]
        assert run.status() == "CANCELLED"


def test_calls_outside_a_step_in_a_workflow_body_are_refused_with_the_fix(sqlite_settings: Settings) -> None:
    import podium

    @podium.workflow(name="tests.body_call")
    def body_call() -> str:
        return _apps.worker.run("hi", model="echo")

    with _apps.launch(sqlite_settings), pytest.raises(UsageError, match="outside any step.*@podium.step"):
        body_call.start().result()


def test_an_unregistered_agent_may_not_act(sqlite_settings: Settings) -> None:
    import podium

    stranger = podium.Agent("stranger", owner="nobody@example.com", models=["echo"])
    with _apps.launch(sqlite_settings), pytest.raises(ActionDenied, match="not registered"):
        stranger.run("hi", model="echo")


flaky_calls: list[int] = []


def flaky_note(text: str) -> str:
    """Fails the first time, then queues `text`: a tool behind an unreliable integration."""
    flaky_calls.append(1)
    if len(flaky_calls) == 1:
        raise ConnectionError("upstream hiccup")
    return _apps.note(text)


def test_a_step_retried_after_a_failed_call_records_both(sqlite_settings: Settings) -> None:
    import podium

    flaky = podium.Agent("flaky", owner="qa-lead@example.com", models=[], tools=[flaky_note])

    @podium.step(name="tests.flaky_step", retries=2)
    def flaky_step() -> str:
        return str(flaky.call_tool("flaky_note", text="eventually"))

    @podium.workflow(name="tests.flaky")
    def flaky_flow() -> str:
        return flaky_step()

    flaky_calls.clear()
    app = podium.App(agents=[flaky], tools=[flaky_note, _apps.note])
    with podium.launch(sqlite_settings, app) as pod:
        assert flaky_flow.options(run_id="flaky-1").start().result() == "queued"
        decisions = [(e.decision, e.resource) for e in audit_rows(pod) if e.run_id == "flaky-1"]
        assert decisions == [("failed", "flaky_note"), ("allowed", "flaky_note")]
        rows = sorted(ledger_rows(pod), key=lambda r: r.at)
        assert [(r.resource, r.wasted) for r in rows] == [("flaky_note", 1), ("flaky_note", 0)]  # the failure: waste
        assert rows[0].call_key.endswith(":failed") and rows[0].wall_seconds > 0
        assert pod.verify_audit().ok


def test_a_call_that_failed_before_a_crash_and_succeeds_on_re_run_is_recorded_twice(sqlite_settings: Settings) -> None:
    from podium.governance import Call, CallSite, Usage
    from podium.governance._record import CallRecord, write_records

    call = Call("tester", "tool", "note", "tool", "digest")
    site = CallSite("run-x:2:1", "run-x", 2)  # the same site: a step re-run after a crash restarts its count
    with Podium.connect(sqlite_settings) as pod:
        with pod.engine.begin() as conn:
            write_records(conn, [CallRecord(call, site, "failed", Usage(), "", {"error": "boom"}, 1.0)])
        with pod.engine.begin() as conn:
            write_records(conn, [CallRecord(call, site, "allowed", Usage(1, 1, 0.0, 5), "out", {}, 2.0)])
        with pod.engine.begin() as conn:  # the re-run of the re-run records nothing new
            write_records(conn, [CallRecord(call, site, "allowed", Usage(1, 1, 0.0, 5), "out", {}, 3.0)])
        assert [(e.call_key, e.decision) for e in audit_rows(pod)] == [
            ("run-x:2:1:failed", "failed"),
            ("run-x:2:1", "allowed"),
        ]
        assert [(r.call_key, r.wasted) for r in ledger_rows(pod)] == [("run-x:2:1:failed", 1), ("run-x:2:1", 0)]
