"""Budgets reserve the most a call can cost, so concurrent calls never take a budget past its limit, even when
every call costs far more than a guess from its prompt would say."""

from __future__ import annotations

import threading

import pytest
from pydantic_ai.messages import ModelMessage, ModelResponse, TextPart
from pydantic_ai.models.function import AgentInfo, FunctionModel
from pydantic_ai.usage import RequestUsage

import podium
from podium import Price, Settings
from podium.models import ModelEntry
from tests._people import operator

CALLS = 240
PROMPT = "Summarise this ticket for the queue, please. " * 4  # 180 characters: ~45 tokens by the 4-characters rule


def _greedy(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
    """A provider that bills a token per character read and the whole max_tokens out: what no guess expects."""
    read = sum(len(str(part.content)) for message in messages for part in message.parts)
    out = int((info.model_settings or {}).get("max_tokens") or 0)
    return ModelResponse(parts=[TextPart("ok")], usage=RequestUsage(input_tokens=read, output_tokens=out))


burst = podium.Agent("burst", owner="finance-lead@example.com", team="finance", models=["greedy"], tools=[])
APP = podium.App(
    agents=[burst],
    models=[ModelEntry("greedy", "frontier", Price(1_000.0, 2_000.0), lambda: FunctionModel(_greedy))],
)


def test_240_concurrent_calls_never_overshoot_a_one_dollar_budget(settings: Settings) -> None:
    with podium.launch(settings, APP) as pod:
        pod.budgets.set("agent:burst", 1.0, by=operator(pod, "cfo@example.com"))
        start = threading.Barrier(CALLS)
        outcomes: list[str] = []

        def call(i: int) -> None:
            start.wait()
            try:
                with podium.request_scope(f"burst-{i}"):
                    burst.run(PROMPT, model="greedy", max_tokens=50)
                outcomes.append("ran")
            except podium.BudgetExhausted:
                outcomes.append("stopped")

        threads = [threading.Thread(target=call, args=(i,)) for i in range(CALLS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=300)

        budget = pod.budgets.get("agent:burst")
        ledgered = pod.ledger.totals(None).cost_nano_usd
        assert len(outcomes) == CALLS
        assert outcomes.count("ran") >= 3, "the budget has room for a few calls"
        assert budget.spent_nano_usd == ledgered <= budget.limit_nano_usd  # overshoot: none
        assert budget.reserved_nano_usd == 0
        assert ledgered == outcomes.count("ran") * 280_000_000  # each cost 180 in at $1,000/M + 50 out at $2,000/M


@pytest.mark.parametrize("prompt", ["", "ü" * 50, "🙂" * 50])
def test_the_most_a_call_can_cost_bounds_what_it_is_billed(sqlite_settings: Settings, prompt: str) -> None:
    """Multi-byte text costs more tokens per character; the bound counts bytes, so it still holds."""
    with podium.launch(sqlite_settings, APP) as pod:
        pod.budgets.set("agent:burst", 100.0, by=operator(pod, "cfo@example.com"))
        with podium.request_scope("one"):
            burst.run(prompt, model="greedy", max_tokens=5)
        with pod.engine.connect() as conn:
            from podium.store import tables

            (held,) = conn.execute(tables.reservations.select()).mappings().all()
        assert pod.ledger.totals(None).cost_nano_usd <= held["amount_nano_usd"]


def test_the_bound_counts_tool_calls_tool_results_and_attachments() -> None:
    """What a tool-using agent sends back to its model costs input tokens too: the bound counts every part."""
    from pydantic_ai.messages import (
        BinaryContent,
        ModelRequest,
        ModelResponse,
        ToolCallPart,
        ToolReturnPart,
        UserPromptPart,
    )
    from pydantic_ai.models import ModelRequestParameters

    from podium.governance._wrappers import most_tokens

    history = [
        ModelRequest(
            parts=[UserPromptPart(["look at this", BinaryContent(b"\x89PNG" * 2_500, media_type="image/png")])]
        ),
        ModelResponse(parts=[ToolCallPart("lookup", {"query": "q" * 20_000}, tool_call_id="1")]),
        ModelRequest(parts=[ToolReturnPart("lookup", "r" * 50_000, tool_call_id="1")]),
    ]
    read, out = most_tokens(history, ModelRequestParameters(), {"max_tokens": 100})
    assert read >= 10_000 + 20_000 + 50_000 and out == 100


def test_a_memory_read_holds_no_budget(sqlite_settings: Settings) -> None:
    """Nothing charges a memory access, so it reserves nothing (and a spent budget does not stop it)."""
    import sqlalchemy as sa

    from podium.governance import Call
    from podium.store import tables

    with podium.launch(sqlite_settings, APP) as pod:
        pod.agents.grant("burst", data_scopes=["finance/notes"], by=operator(pod, "finance-lead@example.com"))
        pod.budgets.set("agent:burst", 0.0, by=operator(pod, "cfo@example.com"))
        decision = pod.governor.authorize(Call("burst", "memory.read", "finance/notes", "data", ""))
        assert decision.allowed
        with pod.engine.connect() as conn:
            assert conn.execute(sa.select(tables.reservations)).all() == []
