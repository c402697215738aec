"""The Anthropic upstream against a real Anthropic-shaped server on loopback: usage normalised exactly (cache reads
and writes, thinking), requests translated from the OpenAI body, answers and streams translated back, closing a
stream closes the connection, and every failure an UpstreamError that says whose fault it is."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Iterator
from contextlib import aclosing
from typing import Any

import pytest

from podium.cost import Tokens
from podium.gateway._anthropic_upstream import AnthropicUpstream, anthropic_tokens, to_anthropic
from podium.gateway._auto import said_in
from podium.gateway._streaming import Tally
from podium.gateway._upstream import ChatChunk, ChatRequest, UpstreamError
from podium.governance import answers_agree

from .anthropic_server import AnthropicServer, Reply

HELLO = ChatRequest(model="claude-stub", body={"messages": [{"role": "user", "content": "Hi"}]}, max_tokens=64)


@pytest.fixture
def server() -> Iterator[AnthropicServer]:
    with AnthropicServer().running() as running:
        yield running


def upstream(server: AnthropicServer, **options: Any) -> AnthropicUpstream:
    return AnthropicUpstream(
        "anthropic:stub", base_url=server.base_url, model="claude-stub", api_key="sk-ant-test", **options
    )


async def collect(up: AnthropicUpstream, request: ChatRequest) -> list[ChatChunk]:
    try:
        return [chunk async for chunk in up.stream(request)]
    finally:
        await up.aclose()


async def complete(up: AnthropicUpstream, request: ChatRequest) -> Any:
    try:
        return await up.complete(request)
    finally:
        await up.aclose()


# --- usage: Anthropic's convention, pinned ------------------------------------------------------------------


def test_input_tokens_exclude_cache_reads_and_writes() -> None:
    usage = {
        "input_tokens": 50,
        "cache_read_input_tokens": 1000,
        "cache_creation_input_tokens": 200,
        "output_tokens": 30,
    }
    tokens = anthropic_tokens(usage)
    assert tokens == Tokens(input=50, cached_input=1000, cache_write=200, output=30, reasoning=0)
    assert tokens.total_input == 1250  # what the model read: Anthropic's three input fields added up


def test_thinking_tokens_are_split_out_of_output_tokens() -> None:
    usage = {"input_tokens": 10, "output_tokens": 100, "output_tokens_details": {"thinking_tokens": 60}}
    assert anthropic_tokens(usage) == Tokens(input=10, output=40, reasoning=60)


def test_absent_and_null_counts_are_zero() -> None:
    usage = {
        "input_tokens": 5,
        "output_tokens": 2,
        "cache_read_input_tokens": None,
        "cache_creation_input_tokens": None,
    }
    assert anthropic_tokens(usage) == Tokens(input=5, output=2)


@pytest.mark.parametrize("bad", [-1, "12", True, 1.5, 10**12])
def test_a_count_that_is_not_a_count_is_the_providers_fault(bad: object) -> None:
    with pytest.raises(UpstreamError) as caught:
        anthropic_tokens({"input_tokens": bad, "output_tokens": 1})
    assert caught.value.provider_fault
    assert "input_tokens" in caught.value.message


# --- whole answers ------------------------------------------------------------------------------------------


def test_complete_sends_an_anthropic_request_and_returns_an_openai_body(server: AnthropicServer) -> None:
    server.reply = Reply(
        text="Paris.",
        usage={
            "input_tokens": 9,
            "cache_read_input_tokens": 2048,
            "cache_creation_input_tokens": 512,
            "output_tokens": 3,
        },
    )
    result = asyncio.run(complete(upstream(server), HELLO))

    [seen] = server.requests
    assert seen.path == "/v1/messages"
    assert seen.headers["x-api-key"] == "sk-ant-test"
    assert seen.headers["anthropic-version"] == "2023-06-01"
    assert seen.body == {
        "model": "claude-stub",
        "max_tokens": 64,
        "messages": [{"role": "user", "content": [{"type": "text", "text": "Hi"}]}],
    }
    assert result.usage == Tokens(input=9, cached_input=2048, cache_write=512, output=3)
    assert result.body["object"] == "chat.completion"
    assert result.body["choices"][0]["message"] == {"role": "assistant", "content": "Paris."}
    assert result.body["choices"][0]["finish_reason"] == "stop"
    # OpenAI's convention in the body: prompt_tokens include the cached tokens
    assert result.body["usage"]["prompt_tokens"] == 9 + 2048 + 512
    assert result.body["usage"]["prompt_tokens_details"] == {"cached_tokens": 2048}


def test_a_tool_call_comes_back_as_openai_tool_calls(server: AnthropicServer) -> None:
    server.reply = Reply(text="", tool_use=("get_weather", {"city": "Oslo", "days": 2}))
    result = asyncio.run(complete(upstream(server), HELLO))
    message = result.body["choices"][0]["message"]
    assert message["content"] is None
    [call] = message["tool_calls"]
    assert call["id"] == "toolu_stub_1"
    assert call["function"]["name"] == "get_weather"
    assert json.loads(call["function"]["arguments"]) == {"city": "Oslo", "days": 2}
    assert result.body["choices"][0]["finish_reason"] == "tool_calls"


def test_a_base_url_ending_in_v1_reaches_the_same_endpoint(server: AnthropicServer) -> None:
    up = AnthropicUpstream("a", base_url=server.base_url + "/v1/", model="m", api_key="k")
    asyncio.run(complete(up, HELLO))
    assert server.requests[0].path == "/v1/messages"


def test_the_api_key_never_shows_in_the_repr(server: AnthropicServer) -> None:
    up = upstream(server)
    assert "sk-ant-test" not in repr(up)
    asyncio.run(up.aclose())


# --- requests: OpenAI -> Anthropic --------------------------------------------------------------------------


def test_the_openai_body_becomes_anthropics_request() -> None:
    body = {
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "developer", "content": [{"type": "text", "text": "Use metric units."}]},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Weather?"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
                ],
            },
            {
                "role": "assistant",
                "content": "Checking.",
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "weather", "arguments": '{"city": "Oslo"}'},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": "4 C"},
            {"role": "user", "content": "Thanks"},
        ],
        "temperature": 1.7,
        "top_p": 0.9,
        "stop": "END",
        "tools": [
            {
                "type": "function",
                "function": {
                    "name": "weather",
                    "description": "Weather now",
                    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
                },
            }
        ],
        "tool_choice": {"type": "function", "function": {"name": "weather"}},
        "parallel_tool_calls": False,
        "response_format": {"type": "json_schema", "json_schema": {"name": "w", "schema": {"type": "object"}}},
        "user": "u-42",
    }
    assert to_anthropic(ChatRequest(model="claude-x", body=body, max_tokens=100)) == {
        "model": "claude-x",
        "max_tokens": 100,
        "system": [{"type": "text", "text": "Be brief."}, {"type": "text", "text": "Use metric units."}],
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Weather?"},
                    {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
                ],
            },
            {
                "role": "assistant",
                "content": [
                    {"type": "text", "text": "Checking."},
                    {"type": "tool_use", "id": "call_1", "name": "weather", "input": {"city": "Oslo"}},
                ],
            },
            # the tool result and the next user turn are one Anthropic user turn
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "call_1", "content": "4 C"},
                    {"type": "text", "text": "Thanks"},
                ],
            },
        ],
        "temperature": 1.0,  # OpenAI's 0-2 range, clamped to Anthropic's 0-1
        "top_p": 0.9,
        "stop_sequences": ["END"],
        "tools": [
            {
                "name": "weather",
                "description": "Weather now",
                "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
            }
        ],
        "tool_choice": {"type": "tool", "name": "weather", "disable_parallel_tool_use": True},
        "output_config": {"format": {"type": "json_schema", "schema": {"type": "object"}}},
        "metadata": {"user_id": "u-42"},
    }


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({"messages": [{"role": "user", "content": "x"}], "n": 2}, "n > 1"),
        ({"messages": [{"role": "function", "content": "x"}]}, "role 'function'"),
        ({"messages": [{"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]}]}, "input_audio"),
        (
            {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "ftp://x"}}]}]},
            "image",
        ),
        (
            {
                "messages": [
                    {"role": "assistant", "tool_calls": [{"id": "c", "function": {"name": "f", "arguments": "[1]"}}]}
                ]
            },
            "not a JSON object",
        ),
        ({"messages": []}, "no user or assistant message"),
    ],
)
def test_what_anthropic_cannot_take_is_the_requests_fault(body: dict[str, Any], says: str) -> None:
    with pytest.raises(UpstreamError) as caught:
        to_anthropic(ChatRequest(model="m", body=body, max_tokens=10))
    assert caught.value.status == 400
    assert not caught.value.provider_fault
    assert says in caught.value.message


# --- streams ------------------------------------------------------------------------------------------------


def test_a_stream_becomes_openai_chunks_then_the_usage(server: AnthropicServer) -> None:
    server.reply = Reply(
        text="One two three four.",
        deltas=4,
        usage={
            "input_tokens": 7,
            "cache_read_input_tokens": 900,
            "cache_creation_input_tokens": 100,
            "output_tokens": 42,
        },
    )
    chunks = asyncio.run(collect(upstream(server), HELLO))

    assert server.requests[0].body["stream"] is True
    *bodies, last = chunks
    assert last.body is None
    # message_start said the input classes, message_delta only the output (Anthropic's long-standing habit)
    assert last.usage == Tokens(input=7, cached_input=900, cache_write=100, output=42)
    assert all(chunk.body is not None and chunk.body["object"] == "chat.completion.chunk" for chunk in bodies)
    deltas = [c.body["choices"][0]["delta"] for c in bodies if c.body is not None]
    assert deltas[0] == {"role": "assistant", "content": ""}
    assert "".join(d.get("content", "") for d in deltas) == "One two three four."
    assert len([d for d in deltas if d.get("content")]) == 4
    assert bodies[-1].body is not None and bodies[-1].body["choices"][0]["finish_reason"] == "stop"


def test_message_delta_usage_overrides_message_start_usage(server: AnthropicServer) -> None:
    server.reply = Reply(
        usage={"input_tokens": 7, "cache_read_input_tokens": 0, "output_tokens": 42},
        delta_usage={
            "input_tokens": 8,
            "cache_read_input_tokens": 300,
            "cache_creation_input_tokens": None,
            "output_tokens": 44,
            "output_tokens_details": {"thinking_tokens": 4},
        },
    )
    *_, last = asyncio.run(collect(upstream(server), HELLO))
    assert last.usage == Tokens(input=8, cached_input=300, cache_write=0, output=40, reasoning=4)


def test_a_streamed_tool_call_arrives_as_openai_fragments(server: AnthropicServer) -> None:
    server.reply = Reply(text="Let me look.", tool_use=("weather", {"city": "Oslo"}))
    chunks = asyncio.run(collect(upstream(server), HELLO))
    calls = [call for c in chunks if c.body for call in c.body["choices"][0]["delta"].get("tool_calls", [])]
    assert calls[0] == {
        "index": 0,
        "id": "toolu_stub_1",
        "type": "function",
        "function": {"name": "weather", "arguments": ""},
    }
    assert json.loads("".join(call["function"]["arguments"] for call in calls)) == {"city": "Oslo"}
    finish = [c.body["choices"][0]["finish_reason"] for c in chunks if c.body and c.body["choices"][0]["finish_reason"]]
    assert finish == ["tool_calls"]


def test_a_streamed_tool_call_without_arguments_says_what_the_whole_answer_says(server: AnthropicServer) -> None:
    """Anthropic streams a no-input tool call as one empty fragment; OpenAI's clients parse arguments as JSON."""
    server.reply = Reply(text="", tool_use=("now", {}))
    streamed = Tally(keeps_answer=True)
    for chunk in asyncio.run(collect(upstream(server), HELLO)):
        streamed.keep(chunk.body)
    whole = asyncio.run(complete(upstream(server), HELLO)).body
    answer = streamed.answer()
    assert answer is not None and answer["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"] == "{}"
    assert answers_agree(said_in(whole), said_in(answer))  # a shadow answer given whole agrees with the stream


def test_closing_the_stream_early_closes_the_connection(server: AnthropicServer) -> None:
    server.reply = Reply(text="x" * 200, deltas=200, delay_s=0.02)

    async def take_one() -> bool:
        up = upstream(server)
        async with aclosing(up.stream(HELLO)) as stream:
            async for chunk in stream:
                if chunk.body and chunk.body["choices"][0]["delta"].get("content"):
                    break
        try:  # the client (and its connection pool) still open: closing the stream alone must hang up
            return await asyncio.to_thread(server.cut.wait, 5)
        finally:
            await up.aclose()

    assert asyncio.run(take_one())  # the stub's writes failed: podium hung up, so the provider stops
    assert server.finished_streams == 0


def test_thinking_is_not_passed_on_but_counted(server: AnthropicServer) -> None:
    events = [
        {
            "type": "message_start",
            "message": {
                "id": "msg_1",
                "type": "message",
                "role": "assistant",
                "model": "m",
                "content": [],
                "usage": {"input_tokens": 4, "output_tokens": 1},
            },
        },
        {
            "type": "content_block_start",
            "index": 0,
            "content_block": {"type": "thinking", "thinking": "", "signature": ""},
        },
        {"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "secret plan"}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "signature_delta", "signature": "sig"}},
        {"type": "content_block_stop", "index": 0},
        {"type": "content_block_start", "index": 1, "content_block": {"type": "text", "text": ""}},
        {"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": "Done."}},
        {"type": "content_block_stop", "index": 1},
        {
            "type": "message_delta",
            "delta": {"stop_reason": "end_turn"},
            "usage": {"output_tokens": 30, "output_tokens_details": {"thinking_tokens": 25}},
        },
        {"type": "message_stop"},
    ]
    raw = "".join(f"event: {e['type']}\r\ndata: {json.dumps(e)}\r\n\r\n" for e in events).encode()
    server.reply = Reply(raw=raw, raw_content_type="text/event-stream")
    chunks = asyncio.run(collect(upstream(server), HELLO))
    texts = [c.body["choices"][0]["delta"].get("content") for c in chunks if c.body]
    assert texts == ["", "Done.", None]
    assert chunks[-1].usage == Tokens(input=4, output=5, reasoning=25)


# --- failures -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "kind", "expected_status", "provider_fault"),
    [
        (529, "overloaded_error", 529, True),
        (500, "api_error", 502, True),
        (503, "overloaded_error", 503, True),
        (429, "rate_limit_error", 429, True),
        (401, "authentication_error", 502, True),  # podium's upstream key is wrong, not the client's
        (404, "not_found_error", 502, True),
        (400, "invalid_request_error", 400, False),
        (413, "request_too_large", 413, False),
    ],
)
def test_http_errors_say_whose_fault_they_are(
    server: AnthropicServer, status: int, kind: str, expected_status: int, provider_fault: bool
) -> None:
    server.reply = Reply(status=status, error_type=kind, error_message="no\nway", retry_after="7")
    for call in (complete, collect):
        with pytest.raises(UpstreamError) as caught:
            asyncio.run(call(upstream(server), HELLO))  # type: ignore[operator]
        assert (caught.value.status, caught.value.provider_fault) == (expected_status, provider_fault)
        assert f"{status} ({kind}: no way)" in caught.value.message
        assert caught.value.retry_after_s == 7.0


def test_an_unreachable_upstream_is_the_providers_fault() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, never listening: connections are refused
        up = AnthropicUpstream("gone", base_url=f"http://127.0.0.1:{port}", model="m", api_key="k")
        with pytest.raises(UpstreamError) as caught:
            asyncio.run(complete(up, HELLO))
    assert caught.value.provider_fault
    assert caught.value.status == 502


def test_a_slow_upstream_times_out_as_the_providers_fault(server: AnthropicServer) -> None:
    server.reply = Reply(deltas=3, delay_s=1.0)
    with pytest.raises(UpstreamError) as caught:
        asyncio.run(collect(upstream(server, timeout_s=0.2), HELLO))
    assert (caught.value.status, caught.value.provider_fault) == (504, True)


def test_an_error_event_mid_stream_raises_after_the_chunks_before_it(server: AnthropicServer) -> None:
    server.reply = Reply(text="abcdef", deltas=3, error_mid_stream="overloaded_error")

    async def run() -> tuple[list[ChatChunk], UpstreamError]:
        up, got = upstream(server), []
        try:
            async for chunk in up.stream(HELLO):
                got.append(chunk)
        except UpstreamError as exc:
            return got, exc
        finally:
            await up.aclose()
        raise AssertionError("no error")

    got, error = asyncio.run(run())
    assert [c.body["choices"][0]["delta"].get("content") for c in got if c.body] == ["", "ab"]
    assert (error.status, error.provider_fault) == (529, True)
    assert "overloaded_error" in error.message


def test_a_stream_cut_before_message_stop_is_an_error_not_a_short_answer(server: AnthropicServer) -> None:
    server.reply = Reply(text="abcdef", deltas=3, stop_early=True)
    with pytest.raises(UpstreamError) as caught:
        asyncio.run(collect(upstream(server), HELLO))
    assert caught.value.provider_fault
    assert "before message_stop" in caught.value.message


@pytest.mark.parametrize(
    ("raw", "content_type", "says"),
    [
        (b"not json", "application/json", "not an Anthropic message"),
        (b'{"type": "error"}', "application/json", "not an Anthropic message"),
        (b"event: message_start\ndata: {nope\n\n", "text/event-stream", "not JSON"),
        (b"data: " + b"x" * (2 * 1024 * 1024) + b"\n\n", "text/event-stream", "over 1,048,576 bytes"),
    ],
)
def test_a_malformed_answer_is_the_providers_fault(
    server: AnthropicServer, raw: bytes, content_type: str, says: str
) -> None:
    server.reply = Reply(raw=raw, raw_content_type=content_type)
    call = collect if content_type == "text/event-stream" else complete
    with pytest.raises(UpstreamError) as caught:
        asyncio.run(call(upstream(server), HELLO))  # type: ignore[operator]
    assert caught.value.provider_fault
    assert says in caught.value.message


def test_embeddings_are_refused_with_the_fix(server: AnthropicServer) -> None:
    up = upstream(server)
    with pytest.raises(UpstreamError) as caught:
        asyncio.run(up.embed(["hello"]))
    asyncio.run(up.aclose())
    assert not caught.value.provider_fault
    assert "no embeddings API" in caught.value.message
    assert server.requests == []
