"""The sink declarations of AgentDojo's tools and the provenance of the values the ground truths send to them."""

from __future__ import annotations

import pytest
from benchmarks import _agentdojo as dojo
from benchmarks import _agentdojo_flows as flows

SUITES = dojo.load_suites()


def test_declarations_name_real_tools_and_arguments() -> None:
    flows.check_declarations(SUITES)


def test_a_misspelt_sink_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    banking = {**flows.CONSEQUENTIAL["banking"], "send_money": flows.Sinks(("recipent",))}
    monkeypatch.setitem(flows.CONSEQUENTIAL, "banking", banking)
    with pytest.raises(ValueError, match=r"send_money: no argument \['recipent'\]"):
        flows.check_declarations(SUITES)


def test_every_tool_that_changes_the_world_is_declared() -> None:
    for name, changed in flows.changing_tools(SUITES).items():
        assert changed <= set(flows.CONSEQUENTIAL[name]), name


def test_every_user_task_gets_one_verdict() -> None:
    verdicts = flows.verdicts(SUITES)
    assert {name: len(tasks) for name, tasks in verdicts.items()} == {
        name: len(suite.user_tasks) for name, suite in SUITES.items()
    }
    # AgentDojo's best-known case: "pay the bill in bill-december-2023.txt"; the IBAN to pay is only in the file.
    assert verdicts["banking"]["user_task_0"] == "untrusted_target"
    # "What is my balance?"-style tasks act on nothing.
    assert "reads_only" in set(verdicts["travel"].values())
