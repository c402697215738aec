"""Agent frameworks, unchanged but for base URL and key, answering through `podium serve`: pydantic-ai's
`OpenAIChatModel` with `OpenAIProvider(base_url=..., api_key=...)` and LangChain's `ChatOpenAI`, a tool loop
included, each turn a governed call in the ledger."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import pydantic_ai.models
import pytest
from langchain_core.messages import AIMessageChunk, HumanMessage, ToolMessage
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI
from pydantic_ai import Agent
from pydantic_ai.models.openai import OpenAIChatModel
from pydantic_ai.providers.openai import OpenAIProvider

from podium import Settings

from .conftest import AGENT, Served, Upstreams, remote_model, served_with
from .openai_server import OpenAIServer, Script

ALIAS = "gpt-test"
USAGE = {"prompt_tokens": 20, "completion_tokens": 4, "total_tokens": 24}


@pytest.fixture(scope="module")
def module_served(module_settings: Settings, module_upstreams: Upstreams) -> Iterator[Served]:
    config = remote_model("remote", module_upstreams.openai.base_url) + f'[gateway.aliases]\n"{ALIAS}" = ["remote"]\n'
    with served_with(module_settings, config) as running:
        yield running


@pytest.fixture
def served(module_served: Served, upstreams: Upstreams) -> Served:
    return module_served.fresh()


def test_pydantic_ai_runs_a_tool_loop_and_streams_through_podium(served: Served, openai_upstream: OpenAIServer) -> None:
    model = OpenAIChatModel(ALIAS, provider=OpenAIProvider(base_url=served.openai_base, api_key=served.agent_key))
    agent = Agent(model, instructions="Use the weather tool.")
    asked: list[str] = []

    @agent.tool_plain
    def weather(city: str) -> str:
        """Today's weather in a city."""
        asked.append(city)
        return "clear, 21 C"

    openai_upstream.queue = [
        Script(tool_calls=[{"name": "weather", "arguments": '{"city": "Oslo"}'}], usage=USAGE),
        Script(text="Clear and 21 C in Oslo.", usage=USAGE),
        Script(text="Still clear.", usage=USAGE, chunks=3),
    ]

    async def run() -> tuple[str, list[str]]:
        answer = await agent.run("Weather in Oslo?")
        async with agent.run_stream("And now?") as streamed:
            pieces = [piece async for piece in streamed.stream_text(delta=True)]
        return answer.output, pieces

    with pydantic_ai.models.override_allow_model_requests(True):  # to podium on loopback, nowhere else
        output, pieces = asyncio.run(run())
    assert output == "Clear and 21 C in Oslo."
    assert asked == ["Oslo"]
    assert "".join(pieces) == "Still clear."
    first, second, third = (r.body for r in openai_upstream.chat_requests())
    assert first["tools"][0]["function"]["name"] == "weather"
    [result] = [m for m in second["messages"] if m["role"] == "tool"]
    assert result["content"] == "clear, 21 C"
    assert third["stream"] is True
    rows = served.ledger()
    assert [(row.agent, row.resource, row.input_tokens, row.output_tokens) for row in rows] == [
        (AGENT, "remote", 20, 4)
    ] * 3


def test_langchain_chat_openai_invokes_streams_and_calls_tools_through_podium(
    served: Served, openai_upstream: OpenAIServer
) -> None:
    chat = ChatOpenAI(model=ALIAS, base_url=served.openai_base, api_key=served.agent_key, max_retries=0)

    @tool
    def weather(city: str) -> str:
        """Today's weather in a city."""
        return "clear"

    openai_upstream.queue = [
        Script(text="Hello from behind podium.", usage=USAGE),
        Script(text="One two three.", usage=USAGE, chunks=3),
        Script(tool_calls=[{"name": "weather", "arguments": '{"city": "Oslo"}'}], usage=USAGE),
        Script(text="It is clear.", usage=USAGE),
    ]
    reply = chat.invoke("Hello?")
    assert reply.content == "Hello from behind podium."
    assert reply.usage_metadata is not None and reply.usage_metadata["total_tokens"] == 24
    chunks = list(chat.stream("Count."))
    assert "".join(str(c.content) for c in chunks) == "One two three."
    assert all(isinstance(c, AIMessageChunk) for c in chunks)
    asked = HumanMessage("Weather in Oslo?")
    called = chat.bind_tools([weather]).invoke([asked])
    [call] = called.tool_calls
    assert (call["name"], call["args"]) == ("weather", {"city": "Oslo"})
    answer = chat.invoke([asked, called, ToolMessage("clear", tool_call_id=call["id"])])
    assert answer.content == "It is clear."
    sent = [r.body for r in openai_upstream.chat_requests()]
    assert sent[2]["tools"][0]["function"]["name"] == "weather"
    assert sent[3]["messages"][-1] == {"role": "tool", "content": "clear", "tool_call_id": call["id"]}
    assert json.loads(sent[3]["messages"][-2]["tool_calls"][0]["function"]["arguments"]) == {"city": "Oslo"}
    # every turn charged as the upstream reported, the stream too though the client did not ask for its usage
    assert [(row.input_tokens, row.output_tokens) for row in served.ledger()] == [(20, 4)] * 4
