"""The official `openai` SDK, unchanged but for base URL and key, against `podium serve` with an OpenAI-shaped
upstream server behind an alias: sync, async, streamed with usage, and tools with a JSON-schema response format
that reach the upstream exactly as the client sent them."""

from __future__ import annotations

import asyncio
import json
import struct
from collections.abc import Iterator
from typing import Any

import openai
import pytest

from podium import Settings

from .conftest import AGENT, Served, Upstreams, remote_model, served_with
from .openai_server import OpenAIServer, Script

ALIAS = "gpt-test"  # what the client asks for
USAGE = {"prompt_tokens": 14, "completion_tokens": 6, "total_tokens": 20}
TOOLS: list[Any] = [
    {
        "type": "function",
        "function": {
            "name": "weather",
            "description": "Today's weather in a city.",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}, "unit": {"enum": ["C", "F"]}},
                "required": ["city"],
                "additionalProperties": False,
            },
            "strict": True,
        },
    }
]
RESPONSE_FORMAT: Any = {
    "type": "json_schema",
    "json_schema": {
        "name": "forecast",
        "strict": True,
        "schema": {
            "type": "object",
            "properties": {"summary": {"type": "string"}, "high_c": {"type": "number"}},
            "required": ["summary", "high_c"],
            "additionalProperties": False,
        },
    },
}


@pytest.fixture(scope="module")
def module_served(module_settings: Settings, module_upstreams: Upstreams) -> Iterator[Served]:
    config = remote_model("remote", module_upstreams.openai.base_url) + f'[gateway.aliases]\n"{ALIAS}" = ["remote"]\n'
    config += '[gateway.guardrails]\noutput = "off"\n'  # no output guardrail: each chunk passes as it comes
    with served_with(module_settings, config) as running:
        yield running


@pytest.fixture
def served(module_served: Served, upstreams: Upstreams) -> Served:
    return module_served.fresh()


def sdk(served: Served) -> openai.OpenAI:
    return openai.OpenAI(base_url=served.openai_base, api_key=served.agent_key, max_retries=0)


def test_a_whole_answer_through_the_sync_client(served: Served, openai_upstream: OpenAIServer) -> None:
    openai_upstream.script = Script(text="Sunny all day.", usage=USAGE)
    reply = sdk(served).chat.completions.create(
        model=ALIAS, messages=[{"role": "user", "content": "Weather in Oslo?"}], max_tokens=50, temperature=0.2
    )
    assert reply.model == ALIAS
    assert reply.choices[0].message.content == "Sunny all day."
    assert reply.choices[0].finish_reason == "stop"
    assert reply.usage is not None
    assert (reply.usage.prompt_tokens, reply.usage.completion_tokens, reply.usage.total_tokens) == (14, 6, 20)
    [sent] = openai_upstream.chat_requests()
    assert sent.body["model"] == "remote-upstream" and sent.body["temperature"] == 0.2
    assert sent.body["messages"] == [{"role": "user", "content": "Weather in Oslo?"}]
    assert sent.headers["authorization"] == "Bearer not-needed"  # the client's podium key never leaves podium
    [row] = served.ledger()
    assert (row.agent, row.resource, row.team, row.wasted) == (AGENT, "remote", "support", 0)
    assert (row.input_tokens, row.output_tokens) == (14, 6)
    assert row.cost_nano_usd == 14 * 1000 + 6 * 2000  # $1 and $2 per million: 1,000 and 2,000 nano-USD a token


def test_the_async_client_lists_and_asks_concurrently(served: Served, openai_upstream: OpenAIServer) -> None:
    openai_upstream.script = Script(text="Pong.", usage=USAGE, delay_s=0.05)

    async def ask() -> tuple[list[str], list[str]]:
        async with openai.AsyncOpenAI(base_url=served.openai_base, api_key=served.agent_key, max_retries=0) as client:
            models = [model.id async for model in client.models.list()]
            replies = await asyncio.gather(
                *(
                    client.chat.completions.create(
                        model=ALIAS, messages=[{"role": "user", "content": f"Ping {n}"}], max_tokens=5
                    )
                    for n in range(4)
                )
            )
        return models, [r.choices[0].message.content or "" for r in replies]

    models, answers = asyncio.run(ask())
    assert ALIAS in models and "remote" in models
    assert answers == ["Pong."] * 4
    assert len(served.ledger()) == 4
    assert sorted(r.body["messages"][0]["content"] for r in openai_upstream.chat_requests()) == [
        f"Ping {n}" for n in range(4)
    ]


def test_a_stream_with_usage_arrives_chunk_by_chunk(served: Served, openai_upstream: OpenAIServer) -> None:
    openai_upstream.script = Script(text="One, two, three, four.", usage=USAGE, chunks=4)
    stream = sdk(served).chat.completions.create(
        model=ALIAS,
        messages=[{"role": "user", "content": "Count."}],
        max_tokens=20,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    pieces = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert len(pieces) == 4 and "".join(pieces) == "One, two, three, four."
    assert all(c.model == ALIAS for c in chunks)
    assert len({c.id for c in chunks}) == 1
    *_, last = chunks
    assert last.choices == [] and last.usage is not None
    assert (last.usage.prompt_tokens, last.usage.completion_tokens) == (14, 6)
    [sent] = openai_upstream.chat_requests()
    assert sent.body["stream"] is True and sent.body["stream_options"] == {"include_usage": True}
    [row] = served.ledger()
    assert (row.input_tokens, row.output_tokens, row.cost_nano_usd) == (14, 6, 26_000)


def test_a_stream_without_usage_asked_has_no_usage_chunk_but_is_charged(
    served: Served, openai_upstream: OpenAIServer
) -> None:
    openai_upstream.script = Script(text="Quietly.", usage=USAGE, chunks=2)
    chunks = list(
        sdk(served).chat.completions.create(
            model=ALIAS, messages=[{"role": "user", "content": "Hush."}], max_tokens=20, stream=True
        )
    )
    assert all(c.usage is None for c in chunks)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Quietly."
    [row] = served.ledger()
    assert (row.input_tokens, row.output_tokens) == (14, 6)  # podium asked the upstream for usage all the same


@pytest.mark.parametrize("streamed", [False, True], ids=["whole", "streamed"])
def test_tools_and_a_json_schema_reach_the_upstream_unchanged_and_tool_calls_come_back(
    served: Served, openai_upstream: OpenAIServer, streamed: bool
) -> None:
    openai_upstream.script = Script(
        tool_calls=[{"name": "weather", "arguments": '{"city": "Oslo", "unit": "C"}'}], usage=USAGE
    )
    asked: dict[str, Any] = {
        "model": ALIAS,
        "messages": [{"role": "user", "content": "Weather in Oslo?"}],
        "tools": TOOLS,
        "tool_choice": {"type": "function", "function": {"name": "weather"}},
        "parallel_tool_calls": False,
        "response_format": RESPONSE_FORMAT,
        "max_tokens": 64,
    }
    client = sdk(served)
    if streamed:
        with client.chat.completions.stream(**asked) as stream:
            final = stream.get_final_completion()
        message, finish = final.choices[0].message, final.choices[0].finish_reason
    else:
        reply = client.chat.completions.create(**asked)
        message, finish = reply.choices[0].message, reply.choices[0].finish_reason
    assert finish == "tool_calls"
    [call] = message.tool_calls or []
    assert call.type == "function"
    assert call.function.name == "weather"
    assert json.loads(call.function.arguments) == {"city": "Oslo", "unit": "C"}
    [sent] = openai_upstream.chat_requests()
    for field in ("tools", "tool_choice", "parallel_tool_calls", "response_format", "messages"):
        assert sent.body[field] == asked[field], field
    [row] = served.ledger()
    assert row.output_tokens == 6


def test_the_tool_result_turn_reaches_the_upstream_as_sent(served: Served, openai_upstream: OpenAIServer) -> None:
    openai_upstream.script = Script(text='{"summary": "Sunny", "high_c": 21}', usage=USAGE)
    messages: list[Any] = [
        {"role": "system", "content": "Answer in JSON."},
        {"role": "user", "content": "Weather in Oslo?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "call_0", "type": "function", "function": {"name": "weather", "arguments": '{"city":"Oslo"}'}}
            ],
        },
        {"role": "tool", "tool_call_id": "call_0", "content": '{"sky": "clear", "high_c": 21}'},
    ]
    reply = sdk(served).chat.completions.create(
        model=ALIAS, messages=messages, tools=TOOLS, response_format=RESPONSE_FORMAT, max_tokens=64
    )
    assert json.loads(reply.choices[0].message.content or "") == {"summary": "Sunny", "high_c": 21}
    [sent] = openai_upstream.chat_requests()
    assert sent.body["messages"] == messages


def test_embeddings_through_the_alias_in_the_sdks_default_base64_and_as_floats(
    served: Served, openai_upstream: OpenAIServer
) -> None:
    texts = ["first text", "second one here"]
    reply = sdk(served).embeddings.create(model=ALIAS, input=texts)  # the SDK asks for base64 and decodes it
    as_floats = sdk(served).embeddings.create(model=ALIAS, input=texts, encoding_format="float")
    floats = [e.embedding for e in as_floats.data]
    assert len(floats) == 2 and all(len(vector) == 8 for vector in floats)
    assert [e.embedding for e in reply.data] == [_float32(vector) for vector in floats]  # float32 on the wire
    sent = [r.body for r in openai_upstream.requests if r.path.endswith("/embeddings")]
    assert sent == [{"model": "remote-upstream", "input": texts, "encoding_format": "float"}] * 2
    assert [row.input_tokens for row in served.ledger()] == [reply.usage.prompt_tokens] * 2 == [5, 5]


def _float32(vector: list[float]) -> list[float]:
    return list(struct.unpack(f"<{len(vector)}f", struct.pack(f"<{len(vector)}f", *vector)))
