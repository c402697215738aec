"""The OpenAI-compatible upstream against a real OpenAI-shaped server on loopback: usage normalised and priced
exactly (cached and reasoning tokens), requests passed through (tools, response formats), streams read with
bounds, a stream closed early closes the upstream's response, and every failure an UpstreamError that says whose
fault it is."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator
from contextlib import aclosing
from email.utils import formatdate
from typing import Any

import pytest

from podium.cost import Price, Tokens
from podium.gateway._openai_upstream import OpenAIUpstream, openai_tokens, retry_after_seconds
from podium.gateway._upstream import ChatChunk, ChatRequest, ChatResult, UpstreamError

from .openai_server import OpenAIServer, Script

HELLO = ChatRequest(model="gpt-4o-test", body={"messages": [{"role": "user", "content": "Hi"}]}, max_tokens=64)
# What OpenAI reports for an o-series call that hit the prompt cache and reasoned (its documented shape).
O_SERIES_USAGE = {
    "prompt_tokens": 2006,
    "completion_tokens": 300,
    "total_tokens": 2306,
    "prompt_tokens_details": {"cached_tokens": 1920, "audio_tokens": 0},
    "completion_tokens_details": {"reasoning_tokens": 192, "audio_tokens": 0},
}
O3_PRICE = Price(input_per_mtok=2.0, output_per_mtok=8.0, cached_input_per_mtok=0.5)  # o3's list price


@pytest.fixture
def server() -> Iterator[OpenAIServer]:
    with OpenAIServer() as running:
        yield running


def upstream(base_url: str, timeout_s: float = 10.0) -> OpenAIUpstream:
    return OpenAIUpstream("openai:test", base_url=base_url, model="embed-test", api_key="sk-test", timeout_s=timeout_s)


def complete(base_url: str, request: ChatRequest = HELLO, timeout_s: float = 10.0) -> ChatResult:
    async def run() -> ChatResult:
        up = upstream(base_url, timeout_s)
        try:
            return await up.complete(request)
        finally:
            await up.aclose()

    return asyncio.run(run())


def stream(base_url: str, request: ChatRequest = HELLO) -> list[ChatChunk]:
    async def run() -> list[ChatChunk]:
        up = upstream(base_url)
        try:
            return [chunk async for chunk in up.stream(request)]
        finally:
            await up.aclose()

    return asyncio.run(run())


def failure(call: Any) -> UpstreamError:
    with pytest.raises(UpstreamError) as caught:
        call()
    error = caught.value
    assert "upstream openai:test" in error.message and "\n" not in error.message
    return error


# --- usage: OpenAI's convention, pinned -------------------------------------------------------------------------


def test_prompt_tokens_include_cached_and_completion_tokens_include_reasoning() -> None:
    tokens = openai_tokens(O_SERIES_USAGE)
    assert tokens == Tokens(input=86, cached_input=1920, cache_write=0, output=108, reasoning=192)
    assert (tokens.total_input, tokens.total_output) == (2006, 300)  # nothing counted twice, nothing lost


def test_cached_and_reasoning_tokens_are_priced_exactly() -> None:
    # 86 x $2 + 1,920 x $0.50 + 108 x $8 + 192 x $8 per million tokens, in nano-USD:
    assert O3_PRICE.cost_of(openai_tokens(O_SERIES_USAGE)) == 172_000 + 960_000 + 864_000 + 1_536_000 == 3_532_000
    # Billing prompt_tokens and completion_tokens as they stand would charge the cached tokens at the full rate:
    assert O3_PRICE.cost_nano_usd(2006, 300, 0) - O3_PRICE.cost_of(openai_tokens(O_SERIES_USAGE)) == 1920 * 1_500


def test_absent_and_null_counts_are_zero() -> None:
    assert openai_tokens({"prompt_tokens": 7, "completion_tokens": 3}) == Tokens(input=7, output=3)
    usage = {"prompt_tokens": 7, "completion_tokens": None, "prompt_tokens_details": None}
    assert openai_tokens(usage) == Tokens(input=7)
    assert openai_tokens(None) == Tokens()


@pytest.mark.parametrize(
    "usage",
    [
        {"prompt_tokens": -1},
        {"prompt_tokens": "12"},
        {"prompt_tokens": 1.5},
        {"completion_tokens": True},
        {"prompt_tokens": 10**12},
        {"prompt_tokens": 5, "prompt_tokens_details": {"cached_tokens": 6}},
        {"completion_tokens": 5, "completion_tokens_details": {"reasoning_tokens": 6}},
        {"prompt_tokens": 5, "prompt_tokens_details": "all of them"},
        ["prompt_tokens", 5],
    ],
)
def test_usage_that_does_not_add_up_is_the_providers_fault(usage: object) -> None:
    with pytest.raises(UpstreamError) as caught:
        openai_tokens(usage)
    assert caught.value.provider_fault and caught.value.status == 502


# --- whole answers ------------------------------------------------------------------------------------------


def test_complete_passes_the_body_through_and_normalises_usage(server: OpenAIServer) -> None:
    server.script = Script(text="It is sunny.", usage=O_SERIES_USAGE)
    tools = [{"type": "function", "function": {"name": "weather", "parameters": {"type": "object", "properties": {}}}}]
    schema = {"type": "json_schema", "json_schema": {"name": "w", "schema": {"type": "object"}, "strict": True}}
    body = {"messages": [{"role": "user", "content": "Weather?"}], "tools": tools, "response_format": schema}
    result = complete(server.base_url, ChatRequest(model="o3-upstream", body=body, max_tokens=99))
    assert result.body["choices"][0]["message"]["content"] == "It is sunny."
    assert result.usage == Tokens(input=86, cached_input=1920, output=108, reasoning=192)
    (sent,) = server.chat_requests()
    assert sent.body == {**body, "model": "o3-upstream", "max_tokens": 99}  # no stream, nothing else added
    assert sent.headers["authorization"] == "Bearer sk-test"


def test_a_client_that_asked_for_max_completion_tokens_gets_it_capped(server: OpenAIServer) -> None:
    body = {"messages": [{"role": "user", "content": "Hi"}], "max_completion_tokens": 5000}
    complete(server.base_url, ChatRequest(model="o3", body=body, max_tokens=256))
    (sent,) = server.chat_requests()
    assert sent.body["max_completion_tokens"] == 256 and "max_tokens" not in sent.body


def test_tool_calls_come_back(server: OpenAIServer) -> None:
    server.script = Script(tool_calls=[{"name": "weather", "arguments": '{"city": "Oslo"}'}])
    message = complete(server.base_url).body["choices"][0]["message"]
    assert message["tool_calls"][0]["function"] == {"name": "weather", "arguments": '{"city": "Oslo"}'}


def test_embed_sends_the_model_and_float_encoding(server: OpenAIServer) -> None:
    async def run() -> Any:
        up = upstream(server.base_url)
        try:
            return await up.embed(["one two", "three"])
        finally:
            await up.aclose()

    result = asyncio.run(run())
    assert len(result.vectors) == 2 and len(result.vectors[0]) == 8 and result.vectors[0] != result.vectors[1]
    assert result.usage == Tokens(input=3)
    (sent,) = server.requests
    assert sent.body == {"model": "embed-test", "input": ["one two", "three"], "encoding_format": "float"}


# --- streams ------------------------------------------------------------------------------------------------


def test_a_stream_yields_the_chunks_then_the_usage(server: OpenAIServer) -> None:
    server.script = Script(text="one two three four five", chunks=5, usage=O_SERIES_USAGE)
    chunks = stream(server.base_url)
    *bodies, last = chunks
    assert last == ChatChunk(usage=Tokens(input=86, cached_input=1920, output=108, reasoning=192))
    assert all(chunk.body is not None and "usage" not in chunk.body for chunk in bodies)
    text = "".join(chunk.body["choices"][0]["delta"].get("content") or "" for chunk in bodies if chunk.body)
    assert text == "one two three four five"
    assert bodies[-1].body is not None and bodies[-1].body["choices"][0]["finish_reason"] == "stop"
    (sent,) = server.chat_requests()
    assert sent.body["stream"] is True and sent.body["stream_options"] == {"include_usage": True}
    assert server.streams_finished == 1 and server.streams_cut == 0


def test_a_stream_of_tool_calls(server: OpenAIServer) -> None:
    server.script = Script(tool_calls=[{"name": "a", "arguments": "{}"}, {"name": "b", "arguments": '{"x": 1}'}])
    bodies = [chunk.body for chunk in stream(server.base_url) if chunk.body]
    calls = [call for body in bodies for call in body["choices"][0]["delta"].get("tool_calls", [])]
    assert [(call["index"], call["function"]["name"]) for call in calls] == [(0, "a"), (1, "b")]


def test_a_stream_without_usage_ends_without_a_usage_chunk(server: OpenAIServer) -> None:
    server.script = Script(usage=None)
    chunks = stream(server.base_url)
    assert chunks and all(chunk.usage is None and chunk.body is not None for chunk in chunks)


def test_closing_a_stream_early_closes_the_upstreams_response(server: OpenAIServer) -> None:
    server.script = Script(text="x" * 200, chunks=200, chunk_delay_s=0.05)  # 10 s if read to the end

    async def read_two_then_leave() -> float:
        up = upstream(server.base_url)
        try:
            async with aclosing(up.stream(HELLO)) as chunks:
                async for chunk in chunks:
                    if chunk.body and chunk.body["choices"][0]["delta"].get("content"):
                        break
            return time.monotonic()
        finally:
            await up.aclose()

    left = asyncio.run(read_two_then_leave())
    assert server.wait_for_cut(timeout_s=5.0), "the upstream kept streaming after the client left"
    assert time.monotonic() - left < 5.0
    assert server.streams_cut == 1 and server.streams_finished == 0


def test_a_stream_that_stops_before_done_is_an_error(server: OpenAIServer) -> None:
    server.script = Script(usage=None, send_done=False)
    error = failure(lambda: stream(server.base_url))
    assert error.provider_fault and "[DONE]" in error.message


def test_a_stream_line_longer_than_the_bound_is_refused(server: OpenAIServer) -> None:
    server.script = Script(text="x" * (1024 * 1024 + 10), chunks=1)
    error = failure(lambda: stream(server.base_url))
    assert error.provider_fault and "longer than" in error.message


def test_bad_usage_in_a_stream_is_refused(server: OpenAIServer) -> None:
    server.script = Script(usage={"prompt_tokens": -5, "completion_tokens": 1})
    error = failure(lambda: stream(server.base_url))
    assert error.status == 502 and "prompt_tokens" in error.message


# --- failures -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "provider_fault"),
    [(500, True), (503, True), (429, True), (401, True), (404, True), (400, False), (422, False)],
)
def test_an_error_status_says_whose_fault_it_is(server: OpenAIServer, status: int, provider_fault: bool) -> None:
    server.script = Script(fail_status=status, error_message="something\nwent wrong")
    error = failure(lambda: complete(server.base_url))
    assert (error.status, error.provider_fault) == (status, provider_fault)
    assert error.message == f"upstream openai:test answered HTTP {status}: something went wrong"


def test_a_stream_refused_with_an_error_status(server: OpenAIServer) -> None:
    server.script = Script(fail_status=503)
    error = failure(lambda: stream(server.base_url))
    assert (error.status, error.provider_fault) == (503, True)


def test_429_carries_retry_after(server: OpenAIServer) -> None:
    server.script = Script(fail_status=429, retry_after="7")
    error = failure(lambda: complete(server.base_url))
    assert (error.status, error.provider_fault, error.retry_after_s) == (429, True, 7.0)


def test_retry_after_forms() -> None:
    assert retry_after_seconds({"retry-after-ms": "1500", "retry-after": "9"}) == 1.5
    assert retry_after_seconds({"retry-after": "2.5"}) == 2.5
    in_a_minute = retry_after_seconds({"retry-after": formatdate(time.time() + 60, usegmt=True)})
    assert in_a_minute is not None and 55 <= in_a_minute <= 61
    assert retry_after_seconds({"retry-after": "-3"}) == 0.0
    assert retry_after_seconds({"retry-after": "1e12"}) == 24 * 3600
    assert retry_after_seconds({"retry-after": "soon"}) is None
    assert retry_after_seconds({"retry-after": "nan"}) is None
    assert retry_after_seconds({}) is None


def test_an_unreachable_upstream_is_the_providers_fault() -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]  # bound, never listening: connections are refused
        error = failure(lambda: complete(f"http://127.0.0.1:{port}/v1"))
    assert (error.status, error.provider_fault) == (503, True)
    assert "unreachable" in error.message and "base_url" in error.message


def test_a_slow_upstream_times_out(server: OpenAIServer) -> None:
    server.script = Script(delay_s=3.0)
    started = time.monotonic()
    error = failure(lambda: complete(server.base_url, timeout_s=0.3))
    assert (error.status, error.provider_fault) == (504, True)
    assert time.monotonic() - started < 2.5 and "timeout_s" in error.message


def test_an_answer_that_is_not_an_openai_answer_is_the_providers_fault(server: OpenAIServer) -> None:
    server.script = Script(usage={"prompt_tokens": 3, "completion_tokens": "many"})
    error = failure(lambda: complete(server.base_url))
    assert (error.status, error.provider_fault) == (502, True) and "completion_tokens" in error.message
