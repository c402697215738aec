"""The Anthropic front door's translators, without a network: the request model's bounds and refusals, the OpenAI
body it becomes (and back to Anthropic's request through the upstream's translator), the `message` and the
server-sent events it makes from the lingua franca, and the error shapes."""

from __future__ import annotations

import json
from typing import Any

import pytest

from podium.cost import Tokens
from podium.errors import UsageError
from podium.gateway._anthropic import (
    MessagesStream,
    budget_error_body,
    error_body,
    error_event,
    from_openai_result,
    read_messages_request,
    to_openai,
)
from podium.gateway._anthropic_upstream import to_anthropic
from podium.gateway._upstream import ChatRequest

from .anthropic_server import TOOL_CHUNKS, openai_chunk

FULL_REQUEST: dict[str, Any] = {
    "model": "claude-alias",
    "max_tokens": 300,
    "system": [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
    "messages": [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is the weather?"},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
            ],
        },
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": "hmm", "signature": "sig"},
                {"type": "text", "text": "Checking."},
                {"type": "tool_use", "id": "toolu_1", "name": "weather", "input": {"city": "Oslo"}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": [{"type": "text", "text": "4 C"}]},
                {"type": "text", "text": "Thanks"},
            ],
        },
    ],
    "stop_sequences": ["END"],
    "temperature": 0.3,
    "top_p": 0.9,
    "top_k": 40,
    "tools": [
        {
            "name": "weather",
            "description": "Weather now",
            "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
        }
    ],
    "tool_choice": {"type": "tool", "name": "weather", "disable_parallel_tool_use": True},
    "metadata": {"user_id": "u-42"},
    "output_config": {"format": {"type": "json_schema", "schema": {"type": "object"}}, "effort": "low"},
    "thinking": {"type": "enabled", "budget_tokens": 1024},
    "service_tier": "auto",
    "stream": True,
}


def test_a_full_request_becomes_the_openai_body() -> None:
    body, max_tokens = to_openai(read_messages_request(FULL_REQUEST))
    assert max_tokens == 300
    assert body == {
        "messages": [
            {"role": "system", "content": "Be brief."},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is the weather?"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
                ],
            },
            {
                "role": "assistant",
                "content": "Checking.",  # the thinking block is dropped
                "tool_calls": [
                    {
                        "id": "toolu_1",
                        "type": "function",
                        "function": {"name": "weather", "arguments": '{"city": "Oslo"}'},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "toolu_1", "content": "4 C"},
            {"role": "user", "content": "Thanks"},
        ],
        "temperature": 0.3,
        "top_p": 0.9,
        "stop": ["END"],
        "tools": [
            {
                "type": "function",
                "function": {
                    "name": "weather",
                    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
                    "description": "Weather now",
                },
            }
        ],
        "tool_choice": {"type": "function", "function": {"name": "weather"}},
        "parallel_tool_calls": False,
        "user": "u-42",
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "output", "schema": {"type": "object"}, "strict": True},
        },
    }


def test_a_request_survives_the_round_trip_to_an_anthropic_upstream() -> None:
    """Anthropic -> OpenAI (front door) -> Anthropic (upstream): what the client asked for reaches an Anthropic
    provider intact, less only what the module docstring says is ignored (top_k, thinking, effort, tiers)."""
    body, max_tokens = to_openai(read_messages_request(FULL_REQUEST))
    sent = to_anthropic(ChatRequest(model="claude-real", body=body, max_tokens=max_tokens))
    assert sent == {
        "model": "claude-real",
        "max_tokens": 300,
        "system": [{"type": "text", "text": "Be brief."}],
        "messages": [
            {"role": "user", "content": FULL_REQUEST["messages"][0]["content"]},
            {"role": "assistant", "content": FULL_REQUEST["messages"][1]["content"][1:]},
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_1", "content": "4 C"},
                    {"type": "text", "text": "Thanks"},
                ],
            },
        ],
        "temperature": 0.3,
        "top_p": 0.9,
        "stop_sequences": ["END"],
        "tools": FULL_REQUEST["tools"],
        "tool_choice": FULL_REQUEST["tool_choice"],
        "output_config": {"format": FULL_REQUEST["output_config"]["format"]},
        "metadata": {"user_id": "u-42"},
    }


def test_a_tool_result_error_and_its_images_are_kept() -> None:
    request = {
        "model": "m",
        "max_tokens": 10,
        "messages": [
            {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "shot", "input": {}}]},
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": "t1",
                        "is_error": True,
                        "content": [
                            {"type": "text", "text": "blurred"},
                            {"type": "image", "source": {"type": "url", "url": "https://x.test/a.png"}},
                        ],
                    }
                ],
            },
        ],
    }
    body, _ = to_openai(read_messages_request(request))
    assert body["messages"][1:] == [
        {"role": "tool", "tool_call_id": "t1", "content": "Error: blurred"},
        {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://x.test/a.png"}}]},
    ]


def test_system_role_messages_and_string_content_pass_as_they_are() -> None:
    request = {
        "model": "m",
        "max_tokens": 5,
        "system": "S",
        "messages": [{"role": "system", "content": "T"}, {"role": "user", "content": "U"}],
    }
    body, _ = to_openai(read_messages_request(request))
    assert body == {
        "messages": [
            {"role": "system", "content": "S"},
            {"role": "system", "content": "T"},
            {"role": "user", "content": "U"},
        ]
    }


BASE = {"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]}


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"frobnicate": 1}, "frobnicate: Extra inputs are not permitted"),
        ({"max_tokens": None}, "max_tokens"),
        ({"max_tokens": 0}, "max_tokens: Input should be greater than or equal to 1"),
        ({"max_tokens": "10"}, "max_tokens: Input should be a valid integer"),
        ({"max_tokens": True}, "max_tokens"),
        ({"temperature": 1.5}, "temperature: Input should be less than or equal to 1"),
        ({"messages": []}, "messages: List should have at least 1 item"),
        ({"messages": [{"role": "tool", "content": "x"}]}, "messages.0.role"),
        (
            {"messages": [{"role": "user", "content": [{"type": "tool_use", "id": "t", "name": "n", "input": {}}]}]},
            "messages.0: user messages cannot hold tool_use blocks",
        ),
        (
            {"messages": [{"role": "assistant", "content": [{"type": "tool_result", "tool_use_id": "t"}]}]},
            "messages.0: assistant messages cannot hold tool_result blocks",
        ),
        ({"messages": [{"role": "user", "content": [{"type": "video"}]}]}, "messages.0.content"),
        (
            {
                "messages": [
                    {"role": "user", "content": [{"type": "image", "source": {"type": "file", "file_id": "f"}}]}
                ]
            },
            "send the image inline",
        ),
        ({"tools": [{"type": "web_search_20250305", "name": "web_search"}]}, "server tools, which podium does not run"),
        ({"tools": [{"name": "bad name", "input_schema": {"type": "object"}}]}, "tools.0.name"),
        ({"tools": [{"name": "t", "input_schema": {"type": "string"}}]}, '"type": "object"'),
        ({"tools": [{"name": "t", "input_schema": {"type": "object"}}] * 2}, "distinct name"),
        ({"tool_choice": {"type": "any"}}, "needs tools"),
        (
            {
                "tools": [{"name": "t", "input_schema": {"type": "object"}}],
                "tool_choice": {"type": "tool", "name": "u"},
            },
            "not among the tools",
        ),
        ({"stop_sequences": ["s"] * 17}, "stop_sequences: List should have at most 16 items"),
        ({"model": "x" * 300}, "model"),
        ({"messages": "hi"}, "messages"),
    ],
)
def test_bad_requests_are_refused_naming_the_field(change: dict[str, Any], says: str) -> None:
    request = {key: value for key, value in {**BASE, **change}.items() if value is not None}
    with pytest.raises(UsageError) as caught:
        read_messages_request(request)
    assert says in str(caught.value)


def test_every_field_the_sdk_may_send_is_known() -> None:
    """The fields of anthropic 2.10's `messages.create` (its signature, less the SDK's own request options)."""
    import inspect

    import anthropic

    sdk_fields = set(inspect.signature(anthropic.resources.Messages.create).parameters) - {
        "self",
        "extra_headers",
        "extra_query",
        "extra_body",
        "timeout",
    }
    from podium.gateway._anthropic import MessagesRequest

    assert sdk_fields <= set(MessagesRequest.model_fields)


# --- answers ------------------------------------------------------------------------------------------------

USAGE = Tokens(input=11, cached_input=900, cache_write=100, output=20, reasoning=5)


def openai_completion(message: dict[str, Any], finish_reason: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "model": "gpt-x",
        "choices": [{"index": 0, "message": message, "finish_reason": finish_reason}],
    }


def test_an_openai_answer_becomes_an_anthropic_message_with_anthropics_usage() -> None:
    body = openai_completion(
        {
            "role": "assistant",
            "content": "Let me check.",
            "tool_calls": [
                {"id": "call_9", "type": "function", "function": {"name": "weather", "arguments": '{"city":"Oslo"}'}}
            ],
        },
        "tool_calls",
    )
    message = from_openai_result(body, "claude-alias", USAGE, message_id="msg_1")
    assert message == {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "claude-alias",
        "content": [
            {"type": "text", "text": "Let me check."},
            {"type": "tool_use", "id": "call_9", "name": "weather", "input": {"city": "Oslo"}},
        ],
        "stop_reason": "tool_use",
        "stop_sequence": None,
        "usage": {
            "input_tokens": 11,  # excludes the cache reads and writes, as Anthropic counts
            "cache_creation_input_tokens": 100,
            "cache_read_input_tokens": 900,
            "output_tokens": 25,  # includes the thinking
            "output_tokens_details": {"thinking_tokens": 5},
        },
    }


@pytest.mark.parametrize(
    ("finish_reason", "stop_reason"),
    [
        ("stop", "end_turn"),
        ("length", "max_tokens"),
        ("content_filter", "refusal"),
        (None, "end_turn"),
        ("weird", "end_turn"),
    ],
)
def test_finish_reasons_map_to_stop_reasons(finish_reason: str | None, stop_reason: str) -> None:
    body = openai_completion({"role": "assistant", "content": "x"}, finish_reason)  # type: ignore[arg-type]
    assert from_openai_result(body, "a", Tokens())["stop_reason"] == stop_reason


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"choices": []},
        {"choices": ["x"]},
        {"choices": [{"message": {"content": 5, "tool_calls": [1, {"function": "f"}]}}]},
    ],
)
def test_a_hostile_upstream_body_yields_an_empty_message_not_a_crash(body: dict[str, Any]) -> None:
    message = from_openai_result(body, "a", Tokens())
    assert message["content"] == []
    assert message["stop_reason"] == "end_turn"


def test_an_openai_refusal_is_an_anthropic_refusal() -> None:
    body = openai_completion({"role": "assistant", "content": None, "refusal": "I can't help with that."}, "stop")
    message = from_openai_result(body, "a", Tokens())
    assert (message["content"], message["stop_reason"]) == (
        [{"type": "text", "text": "I can't help with that."}],
        "refusal",
    )


@pytest.mark.parametrize("arguments", ["not json", "[1, 2]", "", None])
def test_tool_arguments_that_are_not_an_object_become_empty_input(arguments: object) -> None:
    body = openai_completion(
        {"role": "assistant", "tool_calls": [{"id": "c", "function": {"name": "f", "arguments": arguments}}]},
        "tool_calls",
    )
    assert from_openai_result(body, "a", Tokens())["content"] == [
        {"type": "tool_use", "id": "c", "name": "f", "input": {}}
    ]


# --- streams ------------------------------------------------------------------------------------------------


def parse_sse(data: bytes) -> list[tuple[str, dict[str, Any]]]:
    events = []
    for block in data.decode().split("\n\n"):
        if block:
            name, payload = block.split("\n")
            assert name.startswith("event: ") and payload.startswith("data: ")
            events.append((name[7:], json.loads(payload[6:])))
            assert events[-1][0] == events[-1][1]["type"]
    return events


def test_openai_chunks_become_anthropics_events_in_order() -> None:
    stream = MessagesStream("claude-alias", message_id="msg_7", input_tokens=10)
    out = stream.start()
    second_call = openai_chunk(
        {"tool_calls": [{"index": 1, "id": "call_2", "function": {"name": "time", "arguments": "{}"}}]}
    )
    for piece in [*TOOL_CHUNKS[:-1], second_call, TOOL_CHUNKS[-1]]:
        out += stream.feed(piece)
    out += stream.finish(USAGE)
    assert stream.finish(USAGE) == b""  # once

    events = parse_sse(out)
    assert [name for name, _ in events] == [
        "message_start",
        "content_block_start", "content_block_delta", "content_block_delta", "content_block_stop",
        "content_block_start", "content_block_delta", "content_block_delta", "content_block_stop",
        "content_block_start", "content_block_delta", "content_block_stop",
        "message_delta", "message_stop",
    ]  # fmt: skip
    start = events[0][1]["message"]
    assert (start["id"], start["model"], start["content"], start["usage"]["input_tokens"]) == (
        "msg_7",
        "claude-alias",
        [],
        10,
    )
    assert events[1][1] == {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}
    assert events[2][1]["delta"] == {"type": "text_delta", "text": "Let me "}
    assert events[5][1]["content_block"] == {"type": "tool_use", "id": "call_1", "name": "weather", "input": {}}
    assert [e[1]["delta"]["partial_json"] for e in events[6:8]] == ['{"city": "Os', 'lo", "days": 2}']
    assert events[9][1]["index"] == 2
    assert events[12][1] == {
        "type": "message_delta",
        "delta": {"stop_reason": "tool_use", "stop_sequence": None},
        "usage": {
            "input_tokens": 11,
            "cache_creation_input_tokens": 100,
            "cache_read_input_tokens": 900,
            "output_tokens": 25,
            "output_tokens_details": {"thinking_tokens": 5},
        },
    }


def test_an_empty_stream_is_still_a_whole_message() -> None:
    stream = MessagesStream("a")
    events = parse_sse(stream.finish(Tokens(input=3)))
    assert [name for name, _ in events] == ["message_start", "message_delta", "message_stop"]
    assert events[1][1]["delta"]["stop_reason"] == "end_turn"


def test_hostile_chunks_are_skipped() -> None:
    stream = MessagesStream("a")
    out = b"".join(
        stream.feed(c)
        for c in [
            {},
            {"choices": "x"},
            {"choices": [{"delta": "x"}]},
            openai_chunk({"content": 5, "tool_calls": "x"}),
            openai_chunk({"tool_calls": [7]}),
        ]
    )
    assert [name for name, _ in parse_sse(out)] == ["message_start"]


def test_a_length_finish_is_max_tokens() -> None:
    stream = MessagesStream("a")
    out = stream.feed(openai_chunk({"content": "x"}, "length")) + stream.finish(Tokens(output=1))
    assert parse_sse(out)[-2][1]["delta"]["stop_reason"] == "max_tokens"


# --- errors -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (400, "invalid_request_error"),
        (401, "authentication_error"),
        (403, "permission_error"),
        (404, "not_found_error"),
        (413, "request_too_large"),
        (429, "rate_limit_error"),
        (500, "api_error"),
        (502, "api_error"),
        (503, "overloaded_error"),
        (529, "overloaded_error"),
        (422, "invalid_request_error"),
    ],
)
def test_error_bodies_have_anthropics_shape(status: int, kind: str) -> None:
    assert error_body(status, "why") == {"type": "error", "error": {"type": kind, "message": "why"}}


def test_budget_exhaustion_is_a_spend_limit_reached() -> None:
    assert budget_error_body("budget team:eng is spent", request_id="req_1") == {
        "type": "error",
        "error": {
            "type": "rate_limit_error",
            "message": "budget team:eng is spent",
            "details": {"error_code": "enforced_spend_limit_reached"},
        },
        "request_id": "req_1",
    }


def test_an_error_event_is_one_well_formed_event() -> None:
    assert parse_sse(error_event("overloaded_error", "line\nbreak")) == [
        ("error", {"type": "error", "error": {"type": "overloaded_error", "message": "line\nbreak"}})
    ]
