"""The official `anthropic` SDK (2.10), unchanged, against podium's Anthropic shapes on real loopback HTTP: the
messages and streams podium makes parse into the SDK's types, errors become the SDK's exception classes, the
requests the SDK sends pass podium's request model, and a whole loop (SDK -> podium's translators -> the
Anthropic upstream -> an Anthropic-shaped provider) gives the SDK the provider's answer and usage exactly."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import anthropic
import pytest

from podium.cost import Tokens
from podium.errors import UsageError
from podium.gateway._anthropic import (
    NO_RETRY_HEADERS,
    MessagesStream,
    budget_error_body,
    error_body,
    error_event,
    from_openai_result,
    read_messages_request,
    to_openai,
)
from podium.gateway._anthropic_upstream import AnthropicUpstream
from podium.gateway._upstream import ChatRequest

from .anthropic_server import TOOL_CHUNKS, AnthropicServer, Reply

USAGE = Tokens(input=11, cached_input=900, cache_write=100, output=20)
ASK: dict[str, Any] = {
    "model": "claude-alias",
    "max_tokens": 100,
    "messages": [{"role": "user", "content": "Weather in Oslo?"}],
}


@pytest.fixture
def server() -> Iterator[AnthropicServer]:
    with AnthropicServer().running() as running:
        yield running


def client(base_url: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=base_url, api_key="pk_test", max_retries=2)


def usage_of(message: anthropic.types.Message) -> tuple[int, int | None, int | None, int]:
    """Anthropic's four counts: input (without the cache), cache reads, cache writes, output."""
    usage = message.usage
    return (usage.input_tokens, usage.cache_read_input_tokens, usage.cache_creation_input_tokens, usage.output_tokens)


def sse_bytes(chunks: list[dict[str, Any]], usage: Tokens, *, tail: bytes = b"") -> bytes:
    stream = MessagesStream("claude-alias", input_tokens=3)
    return stream.start() + b"".join(stream.feed(c) for c in chunks) + (tail or stream.finish(usage))


def test_the_sdk_parses_podiums_message(server: AnthropicServer) -> None:
    body = {
        "choices": [
            {
                "message": {
                    "role": "assistant",
                    "content": "Sunny.",
                    "tool_calls": [{"id": "call_1", "function": {"name": "weather", "arguments": '{"city":"Oslo"}'}}],
                },
                "finish_reason": "tool_calls",
            }
        ]
    }
    server.reply = Reply(raw=json.dumps(from_openai_result(body, "claude-alias", USAGE)).encode())
    message = client(server.base_url).messages.create(**ASK)
    assert isinstance(message, anthropic.types.Message)
    assert message.model == "claude-alias"
    assert message.id.startswith("msg_")
    assert message.stop_reason == "tool_use"
    text, tool = message.content
    assert isinstance(text, anthropic.types.TextBlock) and text.text == "Sunny."
    assert isinstance(tool, anthropic.types.ToolUseBlock) and (tool.name, tool.input) == ("weather", {"city": "Oslo"})
    assert usage_of(message) == (11, 900, 100, 20)


def test_the_sdk_streams_podiums_events(server: AnthropicServer) -> None:
    server.reply = Reply(raw=sse_bytes(TOOL_CHUNKS, USAGE), raw_content_type="text/event-stream")
    with client(server.base_url).messages.stream(**ASK) as stream:
        pieces = list(stream.text_stream)
        final = stream.get_final_message()
    assert pieces == ["Let me ", "check."]
    assert final.stop_reason == "tool_use"
    text, tool = final.content
    assert isinstance(text, anthropic.types.TextBlock) and text.text == "Let me check."
    assert isinstance(tool, anthropic.types.ToolUseBlock)
    assert (tool.id, tool.name, tool.input) == ("call_1", "weather", {"city": "Oslo", "days": 2})
    # message_start said 3 input tokens (an estimate); message_delta's whole usage replaced it
    assert usage_of(final) == (11, 900, 100, 20)


def test_the_sdk_reads_the_raw_events_in_anthropics_order(server: AnthropicServer) -> None:
    server.reply = Reply(raw=sse_bytes(TOOL_CHUNKS[:3], USAGE), raw_content_type="text/event-stream")
    events = list(client(server.base_url).messages.create(**ASK, stream=True))
    assert [event.type for event in events] == [
        "message_start", "content_block_start", "content_block_delta", "content_block_delta", "content_block_stop",
        "message_delta", "message_stop",
    ]  # fmt: skip


def test_an_error_event_mid_stream_raises_in_the_sdk(server: AnthropicServer) -> None:
    tail = error_event("overloaded_error", "the upstream went away")
    server.reply = Reply(raw=sse_bytes(TOOL_CHUNKS[:2], USAGE, tail=tail), raw_content_type="text/event-stream")
    received = []
    with pytest.raises(anthropic.APIStatusError) as caught, client(server.base_url).messages.stream(**ASK) as stream:
        received.extend(stream.text_stream)
    assert received == ["Let me "]
    assert caught.value.type == "overloaded_error"
    assert caught.value.api_message == "the upstream went away"


@pytest.mark.parametrize(
    ("status", "body", "headers", "exception", "requests"),
    [
        (
            429,
            budget_error_body("the budget of key k1 is spent"),
            NO_RETRY_HEADERS,
            anthropic.EnforcedSpendLimitReachedError,
            1,
        ),
        (429, error_body(429, "slow down"), {"retry-after": "0"}, anthropic.RateLimitError, 3),  # retried, as asked
        (529, error_body(529, "busy"), NO_RETRY_HEADERS, anthropic.OverloadedError, 1),
        (503, error_body(503, "database down"), NO_RETRY_HEADERS, anthropic.ServiceUnavailableError, 1),
        (401, error_body(401, "no key"), {}, anthropic.AuthenticationError, 1),
        (403, error_body(403, "policy says no"), {}, anthropic.PermissionDeniedError, 1),
        (404, error_body(404, "no model x"), {}, anthropic.NotFoundError, 1),
        (413, error_body(413, "too big"), {}, anthropic.ContentTooLargeError, 1),
        (400, error_body(400, "bad"), {}, anthropic.BadRequestError, 1),
    ],
)
def test_error_bodies_become_the_sdks_exceptions(
    server: AnthropicServer,
    status: int,
    body: dict[str, Any],
    headers: dict[str, str],
    exception: type[Exception],
    requests: int,
) -> None:
    server.reply = Reply(raw=json.dumps(body).encode(), raw_status=status, raw_headers=headers)
    with pytest.raises(exception) as caught:
        client(server.base_url).messages.create(**ASK)
    assert isinstance(caught.value, anthropic.APIStatusError)
    assert caught.value.type == body["error"]["type"]
    assert caught.value.api_message == body["error"]["message"]
    assert len(server.requests) == requests


def test_the_sdks_own_requests_pass_podiums_request_model(server: AnthropicServer) -> None:
    server.reply = Reply(raw=json.dumps(from_openai_result({}, "a", Tokens())).encode())
    sdk = client(server.base_url)
    sdk.messages.create(
        model="claude-alias",
        max_tokens=50,
        system=[{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral", "ttl": "1h"}}],
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "hi"},
                    {"type": "image", "source": {"type": "url", "url": "https://x.test/a.png"}},
                ],
            },
            {
                "role": "assistant",
                "content": [{"type": "tool_use", "id": "toolu_1", "name": "weather", "input": {"city": "Oslo"}}],
            },
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "4 C", "is_error": False}],
            },
        ],
        tools=[
            {
                "name": "weather",
                "description": "now",
                "input_schema": {"type": "object", "properties": {}},
                "strict": True,
            }
        ],
        tool_choice={"type": "auto", "disable_parallel_tool_use": True},
        stop_sequences=["END"],
        metadata={"user_id": "u-1"},
        thinking={"type": "adaptive"},
        output_config={"effort": "low", "format": {"type": "json_schema", "schema": {"type": "object"}}},
        service_tier="auto",
        extra_body={"temperature": 0.2, "top_k": 5},
    )
    sdk.messages.create(**ASK, stream=False)
    for seen in server.requests:
        request = read_messages_request(seen.body)
        to_openai(request)
    assert read_messages_request(server.requests[0].body).temperature == 0.2


def test_a_request_the_sdk_would_send_with_a_new_field_is_refused_by_name(server: AnthropicServer) -> None:
    server.reply = Reply(raw=json.dumps(from_openai_result({}, "a", Tokens())).encode())
    client(server.base_url).messages.create(**ASK, extra_body={"context_management": {"edits": []}})
    with pytest.raises(UsageError, match="context_management: Extra inputs are not permitted"):
        read_messages_request(server.requests[0].body)


# --- the whole loop -----------------------------------------------------------------------------------------


@contextmanager
def translating_front_door(provider: AnthropicServer) -> Iterator[str]:
    """podium's Anthropic front door in miniature (no governance): SDK request -> MessagesRequest -> OpenAI body ->
    AnthropicUpstream -> the provider, and the answer back as Anthropic's message or events."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_POST(self) -> None:
            try:
                request = read_messages_request(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            except UsageError as exc:
                self._send(400, "application/json", json.dumps(error_body(400, str(exc))).encode())
                return
            body, max_tokens = to_openai(request)
            chat = ChatRequest(model="claude-upstream", body=body, max_tokens=max_tokens)
            asyncio.run(self._stream(request.model, chat) if request.stream else self._complete(request.model, chat))

        async def _complete(self, alias: str, chat: ChatRequest) -> None:
            upstream = AnthropicUpstream(
                "anthropic:test", base_url=provider.base_url, model="claude-upstream", api_key="k"
            )
            result = await upstream.complete(chat)
            await upstream.aclose()
            self._send(
                200, "application/json", json.dumps(from_openai_result(result.body, alias, result.usage)).encode()
            )

        async def _stream(self, alias: str, chat: ChatRequest) -> None:
            upstream = AnthropicUpstream(
                "anthropic:test", base_url=provider.base_url, model="claude-upstream", api_key="k"
            )
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Connection", "close")
            self.end_headers()
            translator = MessagesStream(alias)
            async for piece in upstream.stream(chat):
                if piece.body is not None:
                    self.wfile.write(translator.feed(piece.body))
                else:
                    assert piece.usage is not None
                    self.wfile.write(translator.finish(piece.usage))
            await upstream.aclose()
            self.close_connection = True

        def _send(self, status: int, content_type: str, data: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


CACHED_USAGE = {
    "input_tokens": 21,
    "cache_read_input_tokens": 4096,
    "cache_creation_input_tokens": 1024,
    "output_tokens": 37,
}
WITH_TOOL = {
    **ASK,
    "tools": [{"name": "weather", "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}],
}


@pytest.mark.parametrize("streamed", [False, True])
def test_the_sdk_gets_the_providers_answer_and_usage_through_podium_exactly(
    server: AnthropicServer, streamed: bool
) -> None:
    server.reply = Reply(text="Cold and clear.", tool_use=("weather", {"city": "Oslo"}), usage=CACHED_USAGE, deltas=5)
    with translating_front_door(server) as front_door:
        sdk = client(front_door)
        if streamed:
            with sdk.messages.stream(**WITH_TOOL) as stream:
                message = stream.get_final_message()
        else:
            message = sdk.messages.create(**WITH_TOOL)
    assert message.model == "claude-alias"
    assert [block.to_dict() for block in message.content] == [
        {"type": "text", "text": "Cold and clear."},
        {"type": "tool_use", "id": "toolu_stub_1", "name": "weather", "input": {"city": "Oslo"}},
    ]
    assert message.stop_reason == "tool_use"
    assert usage_of(message) == (21, 4096, 1024, 37)
    [sent] = server.requests
    assert sent.body["model"] == "claude-upstream"
    assert sent.body["tools"] == WITH_TOOL["tools"]
    assert sent.body.get("stream", False) is streamed


def test_a_bad_request_gets_an_anthropic_400_through_the_sdk(server: AnthropicServer) -> None:
    with translating_front_door(server) as front_door, pytest.raises(anthropic.BadRequestError) as caught:
        client(front_door).messages.create(**ASK, extra_body={"frobnicate": True})
    assert caught.value.type == "invalid_request_error"
    assert "frobnicate: Extra inputs are not permitted" in str(caught.value.api_message)
    assert server.requests == []
