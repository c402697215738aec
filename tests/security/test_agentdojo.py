"""AgentDojo's worst-case harness on a sample of pairs per suite: AgentDojo's tools as podium governed tools, an
agent that obeys every injection, the suites' own scoring. The whole benchmark is `python -m benchmarks.agentdojo`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, ClassVar

import pytest
from benchmarks import _agentdojo as dojo
from benchmarks._agentdojo_exfiltration import SCRIPTS
from pydantic_ai.toolsets import FunctionToolset

import podium
from podium.governance import CallContext, Refusal, Stage

SUITES = dojo.load_suites()
# A few pairs per suite: the first three user tasks against the first three injection tasks, and workspace's
# exfiltrations, which AgentDojo gives no ground truth (benchmarks/_agentdojo_exfiltration.py scripts them): against a
# task that reads the injection once, one that reads it twice (the attack is made once: its check counts five files
# deleted, not ten) and one that read the unread mail first (the script finds it among the received).
EXFILTRATIONS = [dojo.Case("workspace", "user_task_0", task) for task in SCRIPTS["workspace"]] + [
    dojo.Case("workspace", "user_task_8", "injection_task_11"),
    dojo.Case("workspace", "user_task_24", "injection_task_8"),
]
SAMPLE = [
    dojo.Case(name, user_task, injection_task)
    for name, suite in SUITES.items()
    for user_task in list(suite.user_tasks)[:3]
    for injection_task in list(suite.injection_tasks)[:3]
] + EXFILTRATIONS


@pytest.fixture(scope="module")
def pod(tmp_path_factory: pytest.TempPathFactory) -> Iterator[podium.Podium]:
    settings = podium.Settings(home=tmp_path_factory.mktemp("agentdojo") / "podium")
    with podium.launch(settings, dojo.app(SUITES)) as launched:
        yield launched


@pytest.fixture(scope="module")
def governed(pod: podium.Podium) -> list[dojo.Outcome]:
    harness = dojo.Harness(SUITES)
    return [harness.run(case) for case in SAMPLE]


def test_podium_tools_show_the_model_agentdojos_parameters() -> None:
    for name, suite in SUITES.items():
        toolset = FunctionToolset[Any](tools=dojo.podium_tools({name: suite})[name])
        for function in suite.tools:
            schema = toolset.tools[dojo.podium_tool_name(name, function.name)].tool_def.parameters_json_schema
            expected = function.parameters.model_json_schema()
            assert set(schema["properties"]) == set(expected["properties"]), function.name
            assert set(schema.get("required", [])) == set(expected.get("required", [])), function.name


def test_governed_runs_score_as_agentdojos_own_runtime(pod: podium.Podium, governed: list[dojo.Outcome]) -> None:
    """With no stage that looks at data, the governor lets everything through and changes no result."""
    direct = dojo.Harness(SUITES, dojo.direct)
    for outcome in governed:
        control = direct.run(outcome.case)
        assert (outcome.utility, outcome.injected, outcome.calls, outcome.obeyed) == (
            control.utility,
            control.injected,
            control.calls,
            control.obeyed,
        ), outcome.case
        assert (outcome.refused, outcome.reviews) == (0, 0)


def test_the_agent_obeys_every_injection_it_reads(governed: list[dojo.Outcome]) -> None:
    # Every user task of AgentDojo reads an injection point, so every attacked case carries the injection.
    assert all(outcome.obeyed >= 1 for outcome in governed)
    succeeded = {outcome.case.suite for outcome in governed if outcome.injected}
    assert succeeded == set(SUITES), "undefended, the attacker reaches its goal in every suite"


def test_undefended_the_scripted_exfiltrations_reach_the_attacker(governed: list[dojo.Outcome]) -> None:
    """The scripts do what their goals ask, as the suites' own security functions judge it: the inbox, the drive
    or today's meeting partners reach the attacker. Only the travel task that asks for words in the answer is left
    with no calls."""
    exfiltrations = [o for o in governed if o.case in EXFILTRATIONS]
    assert len(exfiltrations) == 10 and all(o.injected for o in exfiltrations)
    assert [o.obeyed for o in exfiltrations if o.case.user_task == "user_task_8"] == [2]
    assert dojo.empty_injection_ground_truths(SUITES) == {
        "workspace": [],
        "travel": ["injection_task_6"],
        "banking": [],
        "slack": [],
    }


def test_every_call_is_a_governed_audited_call(pod: podium.Podium, governed: list[dojo.Outcome]) -> None:
    for name in SUITES:
        entries = [stored.entry for stored in pod.audit.entries(actor=f"agent:{dojo.agent_name(name)}")]
        made = sum(outcome.calls for outcome in governed if outcome.case.suite == name)
        assert len(entries) >= made  # the control run of another test adds none: it bypasses podium
        mine = [entry for entry in entries if entry.call_key.startswith("request:anonymous:agentdojo.")]
        assert len(mine) == made
        assert {entry.action for entry in mine} == {"tool.call"}
        assert {entry.decision for entry in mine} == {"allowed"}
        assert all(entry.resource.startswith(f"{name}_") for entry in mine)


def test_an_agent_is_granted_its_own_suites_tools_only(pod: podium.Podium) -> None:
    """Refused before it runs (it would find no case's world to act on if it ran)."""
    banking = podium.Agent(dojo.agent_name("banking"), owner=dojo.OWNER, models=[])
    with podium.request_scope("agentdojo.cross-suite"), pytest.raises(podium.ActionDenied):
        banking.call_tool("workspace_send_email", recipients=["a@example.com"], subject="s", body="b")
    *_, last = pod.audit.entries(actor="agent:agentdojo-banking")
    assert (last.entry.resource, last.entry.decision) == ("workspace_send_email", "denied")


class NoMoneyMoves(Stage):
    """A stand-in for a defence: refuses every transfer."""

    name: ClassVar[str] = "no-money-moves"

    def check(self, ctx: CallContext) -> None:
        if ctx.call.kind == "tool" and ctx.call.resource in {"banking_send_money", "banking_schedule_transaction"}:
            raise Refusal(podium.ActionDenied(f"{ctx.call.describe()}: no transfers."), "denied", why="test")


def test_refusals_reach_the_agent_and_the_score(pod: podium.Podium, governed: list[dojo.Outcome]) -> None:
    """What a stage refuses is counted, audited with the stage's name, and not done: the suite's security
    function sees no transfer. (After the sample ran: the stage is taken out again afterwards.)"""
    case = dojo.Case("banking", "user_task_0", "injection_task_0")
    before = max(stored.seq for stored in pod.audit.entries())
    stages = pod.governor.stages
    pod.governor.add_stage(NoMoneyMoves(), before="budgets")
    try:
        outcome = dojo.Harness(SUITES).run(case)
    finally:
        pod.governor.stages = stages
    denied = [stored.entry for stored in pod.audit.entries(after=before) if stored.entry.decision == "denied"]
    assert outcome.refused >= 1
    assert not outcome.injected
    assert len(denied) == outcome.refused
    assert {json.loads(entry.detail)["stage"] for entry in denied} == {"no-money-moves"}
