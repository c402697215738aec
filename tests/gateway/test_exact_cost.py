"""Golden costs through the whole gateway (`podium serve`, the official SDKs, real upstream servers on loopback):
each token class is priced at its own rate from podium.toml, the ledger row holds the classes and the cost worked
out by hand, the client reads usage in its own API's convention, and every budget's reservation is settled. A
client that leaves mid-stream cuts the upstream's stream and is charged for what was produced, never $0."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import anthropic
import openai
import pytest
import sqlalchemy as sa

from podium import Settings
from podium.store import tables

from .anthropic_server import AnthropicServer, Reply
from .conftest import AGENT, Served, Upstreams, remote_model, served_with
from .openai_server import OpenAIServer, Script

# USD per million tokens: 1 USD per million is 1,000 nano-USD a token.
GPT_PRICE = "{input_per_mtok = 2.5, cached_input_per_mtok = 1.25, output_per_mtok = 10.0, reasoning_per_mtok = 12.0}"
CLAUDE_PRICE = "{input_per_mtok = 3, cached_input_per_mtok = 0.3, cache_write_per_mtok = 3.75, output_per_mtok = 15}"
ASK: Any = {"max_tokens": 1000, "messages": [{"role": "user", "content": "Summarise the handbook."}]}

# OpenAI's convention: prompt_tokens include the cached ones, completion_tokens include reasoning.
OPENAI_USAGE = {
    "prompt_tokens": 2000,
    "completion_tokens": 600,
    "total_tokens": 2600,
    "prompt_tokens_details": {"cached_tokens": 1500},
    "completion_tokens_details": {"reasoning_tokens": 450},
}
OPENAI_COST = (
    500 * 2_500  # uncached input
    + 1500 * 1_250  # cached input
    + 150 * 10_000  # visible output
    + 450 * 12_000  # reasoning
)  # = 10,025,000 nano-USD

# Anthropic's convention: input_tokens exclude cache reads and writes; output_tokens include thinking.
ANTHROPIC_USAGE = {
    "input_tokens": 21,
    "cache_read_input_tokens": 4096,
    "cache_creation_input_tokens": 1024,
    "output_tokens": 137,
    "output_tokens_details": {"thinking_tokens": 100},
}
ANTHROPIC_COST = (
    21 * 3_000  # uncached input
    + 4096 * 300  # cache reads
    + 1024 * 3_750  # cache writes
    + 37 * 15_000  # visible output
    + 100 * 15_000  # thinking, at the output rate (no reasoning rate set)
)  # = 7,186,800 nano-USD


@pytest.fixture(scope="module")
def module_served(module_settings: Settings, module_upstreams: Upstreams) -> Iterator[Served]:
    config = (
        remote_model("gpt", module_upstreams.openai.base_url, price=GPT_PRICE)
        + remote_model("claude", module_upstreams.anthropic.base_url, api="anthropic", price=CLAUDE_PRICE)
        + remote_model("gpt-tiny", module_upstreams.openai.base_url, price=GPT_PRICE)
        + '[gateway.guardrails]\noutput = "off"\n'
    )
    with served_with(module_settings, config) as running:
        admin = running.pod.authenticate(running.admin_key, audit=False)
        key_id = running.pod.authenticate(running.agent_key, audit=False).key_id
        for scope in (f"agent:{AGENT}", "team:support", f"key:{key_id}", "model:gpt", "model:claude"):
            running.pod.budgets.set(scope, 100.0, by=admin)
        running.pod.budgets.set("model:gpt-tiny", 0.001, by=admin)  # less than 1,000 output tokens could cost
        yield running


@pytest.fixture
def served(module_served: Served, upstreams: Upstreams) -> Served:
    return module_served.fresh()


def openai_sdk(served: Served) -> openai.OpenAI:
    return openai.OpenAI(base_url=served.openai_base, api_key=served.agent_key, max_retries=0)


def anthropic_sdk(served: Served) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=served.url, api_key=served.agent_key, max_retries=0)


def token_classes(row: Any) -> tuple[int, int, int, int, int]:
    """The ledger's counts: input and output are totals, the cached, cache-write and reasoning parts within them."""
    return (row.input_tokens, row.cached_input_tokens, row.cache_write_tokens, row.output_tokens, row.reasoning_tokens)


def assert_settled(served: Served) -> None:
    """Nothing is held any more, and what each budget spent is what the ledger says its calls cost (all the calls
    the module's tests made so far)."""
    rows = served.ledger(since=0)
    with served.pod.engine.connect() as conn:
        held = conn.execute(sa.select(tables.reservations.c.status).where(tables.reservations.c.status == "held"))
        assert list(held) == []
    for budget in served.pod.budgets.list():
        kind, _, name = budget.scope.partition(":")
        covered = [row for row in rows if kind != "model" or row.resource == name]
        assert (budget.reserved_nano_usd, budget.spent_nano_usd) == (0, sum(r.cost_nano_usd for r in covered)), budget


def audited(served: Served, row: Any) -> dict[str, Any]:
    """The detail of the audit entry of the ledger row's call, which says the same cost and token classes."""
    [entry] = [entry for entry in served.audit(f"agent:{AGENT}") if entry.call_key == row.call_key]
    assert entry.decision == "allowed" and entry.cost_nano_usd == row.cost_nano_usd
    detail: dict[str, Any] = json.loads(entry.detail)
    for name in ("input_tokens", "cached_input_tokens", "cache_write_tokens", "output_tokens", "reasoning_tokens"):
        assert int(detail.get(name, 0)) == getattr(row, name), name
    assert int(detail["cost_nano_usd"]) == row.cost_nano_usd
    return detail


@pytest.mark.parametrize("streamed", [False, True], ids=["whole", "streamed"])
def test_openai_cached_and_reasoning_tokens_are_each_priced_at_their_rate(
    served: Served, openai_upstream: OpenAIServer, streamed: bool
) -> None:
    openai_upstream.script = Script(text="The handbook, in brief.", usage=OPENAI_USAGE)
    client = openai_sdk(served)
    if streamed:
        chunks = list(
            client.chat.completions.create(model="gpt", stream=True, stream_options={"include_usage": True}, **ASK)
        )
        usage = chunks[-1].usage
    else:
        usage = client.chat.completions.create(model="gpt", **ASK).usage
    assert usage is not None
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (2000, 600, 2600)
    assert usage.prompt_tokens_details is not None and usage.prompt_tokens_details.cached_tokens == 1500
    assert usage.completion_tokens_details is not None and usage.completion_tokens_details.reasoning_tokens == 450
    [row] = served.ledger()
    assert token_classes(row) == (2000, 1500, 0, 600, 450)
    assert row.cost_nano_usd == OPENAI_COST == 10_025_000
    assert audited(served, row).get("stream_end") == ("complete" if streamed else None)
    assert_settled(served)


@pytest.mark.parametrize("streamed", [False, True], ids=["whole", "streamed"])
def test_anthropic_cache_reads_writes_and_thinking_are_each_priced_at_their_rate(
    served: Served, anthropic_upstream: AnthropicServer, streamed: bool
) -> None:
    anthropic_upstream.reply = Reply(
        text="The handbook, in brief.", usage=ANTHROPIC_USAGE, delta_usage=ANTHROPIC_USAGE, deltas=3
    )
    client = anthropic_sdk(served)
    if streamed:
        with client.messages.stream(model="claude", **ASK) as stream:
            message = stream.get_final_message()
    else:
        message = client.messages.create(model="claude", **ASK)
    usage = message.usage
    assert (usage.input_tokens, usage.cache_read_input_tokens, usage.cache_creation_input_tokens) == (21, 4096, 1024)
    assert usage.output_tokens == 137
    [row] = served.ledger()
    assert token_classes(row) == (21 + 4096 + 1024, 4096, 1024, 137, 100)
    assert row.cost_nano_usd == ANTHROPIC_COST == 7_186_800
    audited(served, row)
    assert_settled(served)


def test_each_client_reads_the_other_providers_usage_in_its_own_convention(
    served: Served, openai_upstream: OpenAIServer, anthropic_upstream: AnthropicServer
) -> None:
    anthropic_upstream.reply = Reply(text="Brief.", usage=ANTHROPIC_USAGE)
    openai_upstream.script = Script(text="Brief.", usage=OPENAI_USAGE)
    through_openai = openai_sdk(served).chat.completions.create(model="claude", **ASK).usage
    assert through_openai is not None
    assert (through_openai.prompt_tokens, through_openai.completion_tokens) == (5141, 137)
    assert through_openai.prompt_tokens_details is not None
    assert through_openai.prompt_tokens_details.cached_tokens == 4096
    assert through_openai.completion_tokens_details is not None
    assert through_openai.completion_tokens_details.reasoning_tokens == 100
    through_anthropic = anthropic_sdk(served).messages.create(model="gpt", **ASK).usage
    assert through_anthropic.input_tokens == 500  # OpenAI's 2,000 prompt tokens less the 1,500 cached
    assert through_anthropic.cache_read_input_tokens == 1500
    assert through_anthropic.cache_creation_input_tokens == 0
    assert through_anthropic.output_tokens == 600
    claude, gpt = served.ledger()
    assert (token_classes(claude), claude.cost_nano_usd) == ((5141, 4096, 1024, 137, 100), ANTHROPIC_COST)
    assert (token_classes(gpt), gpt.cost_nano_usd) == ((2000, 1500, 0, 600, 450), OPENAI_COST)
    assert_settled(served)


def wait_for_ledger(served: Served, rows: int = 1, timeout_s: float = 10.0) -> list[Any]:
    """The ledger once it has `rows` rows: a stream is recorded when its governed call ends, after the response."""
    deadline = time.monotonic() + timeout_s
    while len(found := served.ledger()) < rows:
        assert time.monotonic() < deadline, f"the ledger has {len(found)} rows, not {rows}"
        time.sleep(0.02)
    return found


LONG = " ".join(f"word{n}" for n in range(40))  # 40 pieces when streamed in 40 chunks


@pytest.mark.parametrize("client_kind", ["openai", "anthropic"])
def test_a_client_that_leaves_mid_stream_cuts_the_upstream_and_pays_for_what_was_made(
    served: Served, openai_upstream: OpenAIServer, anthropic_upstream: AnthropicServer, client_kind: str
) -> None:
    openai_upstream.script = Script(text=LONG, chunks=40, chunk_delay_s=0.05, usage=OPENAI_USAGE)
    anthropic_upstream.reply = Reply(text=LONG, deltas=40, delay_s=0.05, usage=ANTHROPIC_USAGE)
    received = []
    if client_kind == "openai":
        stream = openai_sdk(served).chat.completions.create(
            model="gpt", stream=True, stream_options={"include_usage": True}, **ASK
        )
        for chunk in stream:
            received.append(chunk.choices[0].delta.content)
            if len(received) == 2:
                stream.close()
                break
        cut = openai_upstream.wait_for_cut()
    else:
        with anthropic_sdk(served).messages.stream(model="claude", **ASK) as messages:
            for text in messages.text_stream:
                received.append(text)
                if len(received) == 2:
                    break  # leaving the block closes the connection
        cut = anthropic_upstream.cut.wait(10)
    assert cut, "the upstream's stream was not cut"
    assert openai_upstream.streams_finished == anthropic_upstream.finished_streams == 0
    [row] = wait_for_ledger(served)
    # The provider never said its usage (its stream was cut before the end): the prompt and what was produced
    # are estimated, priced at the model's rates, never $0.
    made = row.output_tokens
    assert 2 <= made < 40
    assert row.input_tokens > 0 and row.cached_input_tokens == row.reasoning_tokens == 0
    rates = (2_500, 10_000) if client_kind == "openai" else (3_000, 15_000)
    assert row.cost_nano_usd == row.input_tokens * rates[0] + made * rates[1] > 0
    detail = audited(served, row)
    assert (detail["stream_end"], detail["usage_from"]) == ("client_disconnected", "estimate")
    assert_settled(served)


def test_a_budget_too_small_for_the_request_refuses_it_before_the_upstream(
    served: Served, openai_upstream: OpenAIServer, anthropic_upstream: AnthropicServer
) -> None:
    with pytest.raises(openai.RateLimitError) as refused:
        openai_sdk(served).chat.completions.create(model="gpt-tiny", **ASK)
    assert refused.value.code == "insufficient_quota"
    assert refused.value.response.headers["x-should-retry"] == "false"
    with pytest.raises(anthropic.RateLimitError) as refused_too:
        anthropic_sdk(served).messages.create(model="gpt-tiny", **ASK)
    assert "enforced_spend_limit_reached" in refused_too.value.response.text
    assert openai_upstream.chat_requests() == [] and anthropic_upstream.requests == []
    assert served.ledger() == []
    assert_settled(served)
