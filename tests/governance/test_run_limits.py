"""Run limits: a run that repeats one call (a loop), makes too many calls or takes too many steps is stopped, audited
with the stage; a step that runs again is not counted twice; a process that did not see a run's start counts it
from its audit entries."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import podium
from podium import Settings
from podium.errors import RunLimitReached
from podium.governance import Call, CallContext, CallSite, Refusal, RunLimits
from podium.models import ResilienceSetting
from tests.governance import _cascade as app
from tests.governance.test_governor import audit_rows


def test_the_same_call_made_again_and_again_is_stopped_as_a_loop(settings: Settings, tmp_path: Path) -> None:
    with app.launch(settings, tmp_path) as pod:
        assert app.repeat.start("fine", ["a", "b", "a", "a"]).result() == ["a", "b", "a", "a"]  # 3 times: allowed
        run = app.repeat.options(run_id="loop-1").start("fine", ["same"] * 5)
        with pytest.raises(
            RunLimitReached, match=r"was made 4 times with the same input in run loop-1, more than 3: a loop"
        ) as caught:
            run.result()
        assert caught.value.fields["limit"] == "max_repeats"
        assert (
            "raise max_repeats" in caught.value.message
            and "[resilience] max_repeats in podium.toml" in caught.value.message
        )
        assert app.tries["fine"] == 4 + 3  # the fourth identical call never ran
        entries = [r for r in audit_rows(pod) if r.run_id == "loop-1"]
        assert [r.decision for r in entries] == ["allowed"] * 3 + ["stopped"]
        stopped = json.loads(entries[-1].detail)
        assert (stopped["stage"], stopped["refusal"]) == ("run_limits", "max_repeats")
        assert pod.verify_audit().ok


def test_a_step_that_runs_again_makes_the_same_calls_without_counting_them_twice(
    sqlite_settings: Settings, tmp_path: Path
) -> None:
    with app.launch(sqlite_settings, tmp_path):
        # 3 identical calls (the most allowed), then the step fails and runs again: the same 3 calls, same keys
        assert app.repeat.start("fine", ["x"] * 3, True).result() == ["x"] * 3
        assert app.tries["use_times"] == 2 and app.tries["fine"] == 6


def test_a_run_past_its_calls_or_its_steps_is_stopped(sqlite_settings: Settings, tmp_path: Path) -> None:
    with app.launch(sqlite_settings, tmp_path):
        with pytest.raises(RunLimitReached, match="run many made 9 governed calls, past its limit of 8"):
            app.repeat.options(run_id="many").start("fine", [str(i) for i in range(10)]).result()
        assert app.tries["fine"] == 8
        with pytest.raises(
            RunLimitReached, match=r"run long is at step 7, past its limit of 6 steps \(\[resilience\] max_steps"
        ):
            app.steps.options(run_id="long").start(8).result()
        assert app.tries["fine"] == 8 + 6


def test_a_process_that_did_not_see_a_run_start_counts_its_calls_from_the_audit_log(
    sqlite_settings: Settings, tmp_path: Path
) -> None:
    """As after a crash, when another process recovers the run: a fresh stage (that process's) reads what the run
    did from its audit entries, in one indexed read, and goes on counting from there."""
    with app.launch(sqlite_settings, tmp_path) as pod:
        app.repeat.options(run_id="recovered").start("fine", ["same", "same", "other"]).result()
        fresh = RunLimits(pod.engine, ResilienceSetting(max_repeats=3, max_calls=5))
        call = app.caller.identity.name
        previous = next(r for r in audit_rows(pod) if r.run_id == "recovered")

        def check(step: int, n: int) -> None:
            site = CallSite(
                f"recovered:{step}:{n}", "recovered", step, "cascade.repeat", door="workflow", door_key="recovered"
            )
            same = Call(call, "tool", "fine", "tool", previous.input_digest)
            fresh.check(CallContext(same, site))

        check(2, 1)  # the third time: allowed
        check(2, 1)  # the same call site again (a re-run of the step): not counted
        with pytest.raises(Refusal) as caught:
            check(2, 2)  # the fourth time
        assert isinstance(caught.value.error, RunLimitReached) and caught.value.why == "max_repeats"
        check(1, 1)  # made before, in step 1 (read from the audit log): not counted again
        assert caught.value.outcome == "stopped"


def test_calls_nested_past_max_depth_are_stopped(sqlite_settings: Settings, tmp_path: Path) -> None:
    """Sub-agents run by tools run by sub-agents: the call made three levels down is refused (max_depth = 2), and the
    calls above it fail with it; two levels down is fine."""
    with app.launch(sqlite_settings, tmp_path) as pod:
        with podium.request_scope("nest-ok"):
            assert app.caller.call_tool("nest", levels=2) == "bottom"
        with podium.request_scope("nest-deep"), pytest.raises(RunLimitReached, match="nested 3 calls deep"):
            app.caller.call_tool("nest", levels=5)
        assert app.tries["nest"] == 3 + 3  # the fourth level never ran
        refused = [r for r in audit_rows(pod) if r.decision == "stopped"]
        assert [json.loads(r.detail)["refusal"] for r in refused] == ["max_depth"]
