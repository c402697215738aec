"""Containment: a failing tool's circuit breaker opens and refuses fast, audited; an agent whose tools all fail is
stopped while another agent goes on; a full bulkhead refuses at once; tries time out and transient failures are
tried again, boundedly, under one call key, so a side effect happens once."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

import podium
from podium import Settings, UsageError
from podium.errors import ConfigurationError, Unavailable
from podium.governance import Containment
from podium.models import ResilienceSetting
from tests.governance import _cascade as app
from tests.governance.test_governor import audit_rows, ledger_rows


def detail(row: sa.Row[tuple[object, ...]]) -> dict[str, str]:
    return dict(json.loads(str(row.detail)))


def test_a_failing_tools_breaker_opens_refuses_fast_and_lets_a_trial_through_after_its_cooldown(
    sqlite_settings: Settings, tmp_path: Path
) -> None:
    with app.launch(sqlite_settings, tmp_path) as pod:
        for i in range(4):  # 4 of the last 4 failed: at the failure rate (0.5), with min_calls (4) seen
            with pytest.raises(ConnectionError):
                app.caller.call_tool("broken", text=f"t{i}")
        with pytest.raises(Unavailable, match=r"tool 'broken': 4 of the last 4 failed, so its circuit breaker is open"):
            app.caller.call_tool("broken", text="t5")
        assert app.tries["broken"] == 4  # the refused call never reached the tool
        assert app.caller.call_tool("fine", text="ok") == "ok"  # the agent's other tools go on

        rows = audit_rows(pod)
        opened = next(r for r in rows if r.action == "breaker.open")
        assert (opened.actor, opened.resource, opened.decision) == ("podium:containment", "tool:broken", "opened")
        assert "ConnectionError" in detail(opened)["last_error"]
        refused = next(r for r in rows if r.action == "tool.call" and r.decision == "denied")
        assert (detail(refused)["stage"], detail(refused)["refusal"]) == ("containment", "circuit_open")
        assert [r.decision for r in rows if r.action == "tool.call" and r.resource == "broken"] == [
            *["failed"] * 4,
            "denied",
        ]

        time.sleep(0.35)  # the cooldown: one trial goes through, fails, and opens it again
        with pytest.raises(ConnectionError):
            app.caller.call_tool("broken", text="trial")
        with pytest.raises(Unavailable, match="circuit breaker is open"):
            app.caller.call_tool("broken", text="after the trial")
        assert app.tries["broken"] == 5
        assert pod.verify_audit().ok


def test_an_agent_whose_tools_all_fail_is_stopped_and_another_agent_goes_on(
    sqlite_settings: Settings, tmp_path: Path
) -> None:
    with app.launch(sqlite_settings, tmp_path) as pod:
        for tool in ("broken", "broken_too"):  # each trips its own breaker; together, 8 of the agent's last 8
            for i in range(4):
                with pytest.raises(ConnectionError):
                    app.caller.call_tool(tool, text=f"t{i}")
        with pytest.raises(Unavailable, match="agent 'cascade-caller''s tool calls: 8 of the last 8 failed") as caught:
            app.caller.call_tool("fine", text="mine")
        assert (caught.value.fields["scope"], caught.value.fields["why"]) == ("agent:cascade-caller", "circuit_open")
        assert app.bystander.call_tool("fine", text="theirs") == "theirs"  # another agent, the same tool
        assert app.tries["fine"] == 1

        time.sleep(0.35)  # half-open: a successful trial closes the agent's breaker
        assert app.caller.call_tool("fine", text="again") == "again"
        assert app.caller.call_tool("fine", text="and again") == "and again"
        turns = [(r.resource, r.decision) for r in audit_rows(pod) if r.action.startswith("breaker.")]
        assert turns == [
            ("tool:broken", "opened"),
            ("tool:broken_too", "opened"),
            ("agent:cascade-caller", "opened"),
            ("agent:cascade-caller", "closed"),
        ]


def test_a_full_bulkhead_refuses_at_once_instead_of_queueing(sqlite_settings: Settings, tmp_path: Path) -> None:
    with app.launch(sqlite_settings, tmp_path) as pod:
        answers: list[str] = []
        holders = [
            threading.Thread(target=lambda: answers.append(app.caller.call_tool("busy", text="x"))) for _ in "ab"
        ]
        for holder in holders:
            holder.start()
        deadline = time.monotonic() + 10
        while app.tries["busy"] < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        started = time.perf_counter()
        with pytest.raises(Unavailable, match="tool:busy has 2 calls under way in this process, its limit") as caught:
            app.caller.call_tool("busy", text="third")
        assert time.perf_counter() - started < 1.0  # refused, not queued behind the two
        assert caught.value.fields["why"] == "bulkhead_full"
        assert app.bystander.call_tool("fine", text="meanwhile") == "meanwhile"  # other tools are not starved
        app.release.set()
        for holder in holders:
            holder.join(timeout=10)
        assert answers == ["x", "x"]
        assert app.caller.call_tool("busy", text="now") == "now"  # the slots came back
        refused = [r for r in audit_rows(pod) if r.resource == "busy" and r.decision == "denied"]
        assert [(detail(r)["stage"], detail(r)["refusal"]) for r in refused] == [("containment", "bulkhead_full")]


def test_a_plain_function_past_its_timeout_keeps_its_slot_until_it_really_ends(
    sqlite_settings: Settings, tmp_path: Path
) -> None:
    """It runs on a thread of its own: the caller stops waiting at the timeout, but the hung thread still counts
    against the tool's max_concurrent (1), so hung calls cannot pile up threads."""
    with app.launch(sqlite_settings, tmp_path):
        started = time.perf_counter()
        with pytest.raises(TimeoutError, match="tool 'stuck' did not answer within its 0.2 s timeout"):
            app.caller.call_tool("stuck", text="first")
        assert time.perf_counter() - started < 2.0
        with pytest.raises(Unavailable, match="bulkhead_full|has 1 calls under way"):
            app.caller.call_tool("stuck", text="second")
        app.release.set()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # the hung thread ends and gives its slot back
            try:
                assert app.caller.call_tool("stuck", text="third") == "third"
                break
            except Unavailable:
                time.sleep(0.02)
        assert app.tries["stuck"] == 2


def test_an_async_try_past_its_timeout_is_cancelled_and_tried_again(sqlite_settings: Settings, tmp_path: Path) -> None:
    with app.launch(sqlite_settings, tmp_path) as pod:
        started = time.perf_counter()
        assert app.caller.call_tool("lookup", text="order 7") == "ORDER 7"
        assert time.perf_counter() - started < 2.0
        assert app.tries["lookup"] == 2
        entry = next(r for r in audit_rows(pod) if r.resource == "lookup")
        assert (entry.decision, detail(entry)["attempts"]) == ("allowed", "2")  # one call, audited once


def test_retries_are_bounded_and_only_transient_failures_are_retried(sqlite_settings: Settings, tmp_path: Path) -> None:
    with app.launch(sqlite_settings, tmp_path) as pod:
        with pytest.raises(TimeoutError, match="tool 'hangs' did not answer"):
            app.caller.call_tool("hangs", text="x")
        assert app.tries["hangs"] == 4  # the first try and its 3 retries, no more
        with pytest.raises(ValueError, match="cannot parse"):
            app.caller.call_tool("wrong", text="x")
        assert app.tries["wrong"] == 1  # another try would not fix it
        failed = {r.resource: detail(r) for r in audit_rows(pod) if r.decision == "failed"}
        assert failed["hangs"]["attempts"] == "4" and "attempts" not in failed["wrong"]
        assert [(r.resource, r.wasted) for r in ledger_rows(pod)] == [("hangs", 1), ("wrong", 1)]


def test_a_retried_consequential_call_makes_its_side_effect_once(settings: Settings, tmp_path: Path) -> None:
    """The first try queues the message, then hangs past its timeout; the retry is the same governed call, under the
    same key, so the outbox takes the message once and the call is audited once."""
    with app.launch(settings, tmp_path) as pod:
        assert app.once.options(run_id="deliver-1").start("deliver", "your refund").result() == "already queued"
        assert app.tries["deliver"] == 2
        assert [m.body for m in pod.outbox.messages()] == ["your refund"]
        calls = [r for r in audit_rows(pod) if r.resource == "deliver"]
        assert [(r.call_key, r.decision, detail(r)["attempts"]) for r in calls] == [("deliver-1:1:1", "allowed", "2")]
        app.release.set()


def test_a_consequential_tool_is_not_retried_unless_it_says_its_side_effect_is_keyed(
    sqlite_settings: Settings, tmp_path: Path
) -> None:
    """[resilience] tool_retries = 2 here: a tool that declares nothing is tried again on a transient failure; a
    consequential one is not, as its side effect may not be keyed (declaring `retries` says it is)."""
    with app.launch(sqlite_settings, tmp_path) as pod:
        assert app.caller.call_tool("flaky", text="x") == "x"
        assert app.tries["flaky"] == 2
        with pytest.raises(ConnectionError, match="the payment provider reset the connection"):
            app.caller.call_tool("charge", text="10 EUR")
        assert app.tries["charge"] == 1
        entries = {r.resource: r for r in audit_rows(pod) if r.action == "tool.call"}
        assert (entries["flaky"].decision, detail(entries["flaky"])["attempts"]) == ("allowed", "2")
        assert entries["charge"].decision == "failed" and "attempts" not in detail(entries["charge"])


def test_retries_wait_a_jittered_backoff_whose_ceiling_doubles_up_to_its_most() -> None:
    setting = ResilienceSetting(backoff_s=0.2, backoff_max_s=1.0)
    engine = sa.create_engine("sqlite://")
    highest = Containment(engine, setting, jitter=lambda: 1.0)
    assert [highest.backoff(attempt) for attempt in range(1, 6)] == pytest.approx([0.2, 0.4, 0.8, 1.0, 1.0])
    assert Containment(engine, setting, jitter=lambda: 0.0).backoff(3) == 0.0
    waits = [Containment(engine, setting).backoff(2) for _ in range(200)]  # the default jitter: random
    assert all(0 <= wait <= 0.4 for wait in waits)
    assert min(waits) < 0.1 and max(waits) > 0.3 and len(set(waits)) > 150  # spread out, not in step


def test_a_plain_function_with_a_timeout_is_declared_blocking() -> None:
    from podium.tools import declaration_of

    assert (declaration_of(app.deliver).blocking, declaration_of(app.lookup).blocking) == (True, False)


@pytest.mark.parametrize(
    ("declared", "message"),
    [
        ({"timeout_s": 0}, "tool 'f' declares timeout_s=0; it is the most one attempt may take, in seconds"),
        ({"retries": -1}, r"tool 'f' declares retries=-1; it is attempts after the first.*from 0 to 10"),
        ({"retries": 2.5}, "tool 'f' declares retries=2.5"),
        ({"max_concurrent": 0}, r"declares max_concurrent=0; it is its calls under way at once \(e.g."),
        ({"retry_on": ("timeout",)}, r"declares retry_on=\('timeout',\); it lists exception classes"),
        ({"retry_on": (str,)}, r"declares retry_on=\(<class 'str'>,\); it lists exception classes \(e.g."),
    ],
)
def test_a_wrong_containment_declaration_is_refused_with_the_fix(declared: dict[str, object], message: str) -> None:
    with pytest.raises(UsageError, match=message):

        @podium.tool(**declared)  # type: ignore[arg-type]
        def f(text: str) -> str:
            return text


def test_a_wrong_resilience_setting_is_one_line_naming_it(tmp_path: Path) -> None:
    from podium.models import ModelConfig

    config = tmp_path / "podium.toml"
    config.write_text("[resilience.breaker]\nwindow = 5\nmin_calls = 10\n")
    with pytest.raises(ConfigurationError) as caught:
        ModelConfig.load(config)
    assert "min_calls = 10 is more than window = 5" in caught.value.message
    assert "make min_calls at most window" in caught.value.message and "\n" not in caught.value.message
    config.write_text("[resilience]\nmax_repeats = 1\n")
    with pytest.raises(ConfigurationError, match=r"resilience.max_repeats: Input should be greater than or equal to 2"):
        ModelConfig.load(config)
