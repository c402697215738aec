"""The official `anthropic` SDK, unchanged but for base URL and key, against `podium serve`: whole messages,
`messages.stream` and `create(stream=True)`, answered by an Anthropic-shaped upstream, by an OpenAI-shaped one
(podium translates both ways) and by the in-process local model."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import anthropic
import pytest

from podium import Settings

from .anthropic_server import AnthropicServer, Reply
from .conftest import AGENT, PERSON, Served, Upstreams, remote_model, served_with
from .openai_server import OpenAIServer, Script

WEATHER_TOOL: Any = {
    "name": "weather",
    "description": "Today's weather in a city.",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}
ASK: Any = {"max_tokens": 200, "messages": [{"role": "user", "content": "Weather in Oslo?"}]}
USAGE = {"input_tokens": 30, "output_tokens": 9}


@pytest.fixture(scope="module")
def module_served(module_settings: Settings, module_upstreams: Upstreams) -> Iterator[Served]:
    config = (
        remote_model("claude", module_upstreams.anthropic.base_url, api="anthropic")
        + remote_model("gpt", module_upstreams.openai.base_url)
        + '[gateway.aliases]\n"claude-test" = ["claude"]\n"gpt-test" = ["gpt"]\n'
        + '[gateway.guardrails]\noutput = "off"\n'  # no output guardrail: each delta passes as it comes
    )
    with served_with(module_settings, config) as running:
        yield running


@pytest.fixture
def served(module_served: Served, upstreams: Upstreams) -> Served:
    return module_served.fresh()


def sdk(served: Served, key: str | None = None) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=served.url, api_key=key or served.agent_key, max_retries=0)


def counts(message: anthropic.types.Message) -> tuple[int, int | None, int | None, int]:
    usage = message.usage
    return (usage.input_tokens, usage.cache_read_input_tokens, usage.cache_creation_input_tokens, usage.output_tokens)


def blocks(content: str | list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Anthropic's content as blocks (a string is the same as one text block to Anthropic)."""
    return [{"type": "text", "text": content}] if isinstance(content, str) else content


def test_a_whole_message_with_a_tool_call_from_an_anthropic_upstream(
    served: Served, anthropic_upstream: AnthropicServer
) -> None:
    anthropic_upstream.reply = Reply(text="Let me check.", tool_use=("weather", {"city": "Oslo"}), usage=USAGE)
    message = sdk(served).messages.create(
        model="claude-test", system="Be brief.", tools=[WEATHER_TOOL], tool_choice={"type": "auto"}, **ASK
    )
    assert message.model == "claude-test" and message.role == "assistant"
    assert message.stop_reason == "tool_use"
    text, tool = message.content
    assert isinstance(text, anthropic.types.TextBlock) and text.text == "Let me check."
    assert isinstance(tool, anthropic.types.ToolUseBlock) and (tool.name, tool.input) == ("weather", {"city": "Oslo"})
    assert counts(message) == (30, 0, 0, 9)
    [sent] = anthropic_upstream.requests
    assert sent.body["model"] == "claude-upstream"
    assert blocks(sent.body["system"]) == [{"type": "text", "text": "Be brief."}]
    [asked] = sent.body["messages"]
    assert asked["role"] == "user" and blocks(asked["content"]) == [{"type": "text", "text": "Weather in Oslo?"}]
    assert sent.body["tools"] == [WEATHER_TOOL]
    assert sent.body["max_tokens"] == 200
    assert sent.headers["x-api-key"] == "not-needed"  # the client's podium key never leaves podium
    [row] = served.ledger()
    assert (row.agent, row.resource, row.input_tokens, row.output_tokens) == (AGENT, "claude", 30, 9)


def test_messages_stream_from_an_anthropic_upstream(served: Served, anthropic_upstream: AnthropicServer) -> None:
    anthropic_upstream.reply = Reply(text="Cold and clear over the fjord.", deltas=4, usage=USAGE)
    with sdk(served).messages.stream(model="claude-test", **ASK) as stream:
        pieces = list(stream.text_stream)
        final = stream.get_final_message()
    assert len(pieces) == 4 and "".join(pieces) == "Cold and clear over the fjord."
    assert final.stop_reason == "end_turn"
    assert counts(final) == (30, 0, 0, 9)
    [sent] = anthropic_upstream.requests
    assert sent.body["stream"] is True
    [row] = served.ledger()
    assert (row.input_tokens, row.output_tokens) == (30, 9)


def test_create_with_stream_true_gives_anthropics_events_in_order(
    served: Served, anthropic_upstream: AnthropicServer
) -> None:
    anthropic_upstream.reply = Reply(text="Hi there.", deltas=2, usage=USAGE)
    events = list(sdk(served).messages.create(model="claude-test", stream=True, **ASK))
    assert [event.type for event in events] == [
        "message_start", "content_block_start", "content_block_delta", "content_block_delta", "content_block_stop",
        "message_delta", "message_stop",
    ]  # fmt: skip
    deltas = [e.delta.text for e in events if e.type == "content_block_delta" and e.delta.type == "text_delta"]
    assert "".join(deltas) == "Hi there."
    [delta] = [e for e in events if e.type == "message_delta"]
    assert delta.usage.output_tokens == 9 and delta.delta.stop_reason == "end_turn"


def test_an_openai_upstream_answers_the_anthropic_sdk_tools_and_all(
    served: Served, openai_upstream: OpenAIServer
) -> None:
    openai_upstream.script = Script(
        tool_calls=[{"name": "weather", "arguments": '{"city": "Oslo"}'}],
        usage={"prompt_tokens": 40, "completion_tokens": 7, "prompt_tokens_details": {"cached_tokens": 32}},
    )
    message = sdk(served).messages.create(model="gpt-test", tools=[WEATHER_TOOL], **ASK)
    [tool] = message.content
    assert isinstance(tool, anthropic.types.ToolUseBlock) and (tool.name, tool.input) == ("weather", {"city": "Oslo"})
    assert message.stop_reason == "tool_use"
    # OpenAI's 40 prompt tokens include its 32 cached ones; Anthropic's input_tokens do not include cache reads
    assert counts(message) == (8, 32, 0, 7)
    [sent] = openai_upstream.chat_requests()
    assert sent.body["model"] == "gpt-upstream"
    assert sent.body["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "weather",
                "description": WEATHER_TOOL["description"],
                "parameters": WEATHER_TOOL["input_schema"],
            },
        }
    ]
    assert sent.body["messages"] == [{"role": "user", "content": "Weather in Oslo?"}]

    openai_upstream.script = Script(text="Sunny, 21 degrees.", chunks=3)
    with sdk(served).messages.stream(model="gpt-test", **ASK) as stream:
        pieces = list(stream.text_stream)
        final = stream.get_final_message()
    assert "".join(pieces) == "Sunny, 21 degrees." and len(pieces) == 3
    assert final.stop_reason == "end_turn"
    assert (final.usage.input_tokens, final.usage.output_tokens) == (12, 5)
    assert [row.resource for row in served.ledger()] == ["gpt", "gpt"]


@pytest.mark.slow
def test_the_local_model_answers_the_anthropic_sdk(served: Served) -> None:
    client = sdk(served, served.person_key)
    ask: Any = {"model": "smollm2-135m", "max_tokens": 8, "messages": [{"role": "user", "content": "Say hello."}]}
    whole = client.messages.create(**ask)
    assert whole.model == "smollm2-135m" and whole.stop_reason in ("end_turn", "max_tokens")
    [block] = whole.content
    assert isinstance(block, anthropic.types.TextBlock) and block.text
    with client.messages.stream(**ask) as stream:
        streamed = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert streamed and final.usage.output_tokens >= 1
    events = list(client.messages.create(stream=True, **ask))
    assert events[0].type == "message_start" and events[-1].type == "message_stop"
    rows = served.ledger()
    assert [(row.person, row.resource) for row in rows] == [(PERSON, "smollm2-135m")] * 3
    assert rows[1].output_tokens == final.usage.output_tokens
    assert all(row.cost_nano_usd > 0 for row in rows)
