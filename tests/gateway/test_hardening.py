"""What a review of the gateway found an attacker or a careless upstream could do, each shown not to work: held
tool calls and log probabilities cannot leak past the output guard, an answer without usage is not free, a secret
in a tool's description does not leave, a body nested to exhaust the stack is a clear 400, and a kill cuts a stream
whose upstream has gone quiet."""

from __future__ import annotations

import json
import re
import time

import httpx2 as httpx
import openai
import pytest

from podium import Settings
from podium.agents import KEYS as AGENT_KEYS
from podium.gateway._guardrails import ChunkGuard, OutputBlocked, OutputGuard
from podium.testing import sign_in
from tests.gateway.conftest import AGENT, remote_model, served_with
from tests.gateway.openai_server import OpenAIServer, Script

AWS_KEY = "AKIAIOSFODNN7EXAMPLE"


def _chunk(delta: dict[str, object], *, finish: str | None = None, logprobs: object = None) -> dict[str, object]:
    choice = {"index": 0, "delta": delta, "finish_reason": finish, "logprobs": logprobs}
    return {"id": "c", "object": "chat.completion.chunk", "choices": [choice]}


def test_hold_mode_lets_no_tool_call_or_log_probability_through_unchecked() -> None:
    guard = ChunkGuard(lambda: OutputGuard("hold"))
    sent = [
        guard.filter(chunk)
        for chunk in (
            _chunk({"role": "assistant", "content": "ok "}, logprobs={"content": [{"token": AWS_KEY}]}),
            _chunk({"tool_calls": [{"index": 0, "id": "t1", "function": {"name": "f", "arguments": '{"k": "'}}]}),
            _chunk({"tool_calls": [{"index": 0, "function": {"arguments": AWS_KEY + '"}'}}]}),
        )
    ]
    assert AWS_KEY not in json.dumps(sent)
    with pytest.raises(OutputBlocked):
        guard.filter(_chunk({}, finish="tool_calls"))


def test_a_clean_tool_call_is_released_whole_when_its_choice_finishes() -> None:
    guard = ChunkGuard(lambda: OutputGuard("window", window_tokens=4))
    pieces = [
        _chunk(
            {"tool_calls": [{"index": 0, "id": "t1", "type": "function", "function": {"name": "f", "arguments": ""}}]}
        ),
        _chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"city": '}}]}),
        _chunk({"tool_calls": [{"index": 0, "function": {"arguments": '"Paris"}'}}]}),
        _chunk({}, finish="tool_calls"),
    ]
    out = [o for o in (guard.filter(c) for c in pieces) if o is not None]
    assert len(out) == 1
    [call] = out[0]["choices"][0]["delta"]["tool_calls"]
    assert call == {
        "index": 0,
        "id": "t1",
        "type": "function",
        "function": {"name": "f", "arguments": '{"city": "Paris"}'},
    }


def _config(upstream: OpenAIServer) -> str:
    return remote_model("remote", upstream.base_url) + '[gateway.guardrails]\noutput = "off"\n'


def test_an_answer_without_usage_is_charged_an_estimate_not_nothing(settings: Settings) -> None:
    with OpenAIServer() as upstream, served_with(settings, _config(upstream)) as served:
        upstream.script = Script(text="a reply of some length " * 4, usage=None)
        client = openai.OpenAI(base_url=served.openai_base, api_key=served.agent_key, max_retries=0)
        client.chat.completions.create(model="remote", messages=[{"role": "user", "content": "hello"}], max_tokens=50)
        [row] = served.ledger()
        assert row.input_tokens > 0 and row.output_tokens > 0 and row.cost_nano_usd > 0


def test_a_secret_in_a_tool_description_does_not_leave(settings: Settings) -> None:
    with OpenAIServer() as upstream, served_with(settings, _config(upstream)) as served:
        client = openai.OpenAI(base_url=served.openai_base, api_key=served.agent_key, max_retries=0)
        tool = {"type": "function", "function": {"name": "deploy", "description": f"uses key {AWS_KEY}"}}
        with pytest.raises(openai.PermissionDeniedError, match="aws_key"):
            client.chat.completions.create(model="remote", messages=[{"role": "user", "content": "go"}], tools=[tool])
        assert upstream.chat_requests() == []


def test_a_body_nested_to_exhaust_the_stack_is_a_clear_400_and_audited(settings: Settings) -> None:
    with OpenAIServer() as upstream, served_with(settings, _config(upstream)) as served:
        deep = '{"model": "remote", "messages": ' + "[" * 100_000 + "]" * 100_000 + "}"
        answer = httpx.post(
            f"{served.openai_base}/chat/completions",
            content=deep,
            headers={"Authorization": f"Bearer {served.agent_key}", "Content-Type": "application/json"},
        )
        assert answer.status_code == 400 and "nests deeper" in answer.json()["error"]["message"]
        refusals = [
            e.entry for e in served.pod.audit.entries(actor=f"agent:{AGENT}") if e.entry.action == "gateway.request"
        ]
        assert len(refusals) == 1


def test_a_kill_cuts_a_stream_whose_upstream_has_gone_quiet(settings: Settings) -> None:
    with OpenAIServer() as upstream, served_with(settings, _config(upstream)) as served:
        upstream.script = Script(text="one two three", chunks=3, chunk_delay_s=5.0)  # a long silence after each
        client = openai.OpenAI(base_url=served.openai_base, api_key=served.agent_key, max_retries=0)
        key_id, _ = AGENT_KEYS.split(served.agent_key)
        admin = sign_in(served.pod, "admin@podium.test")
        stream = client.chat.completions.create(
            model="remote", messages=[{"role": "user", "content": "x"}], stream=True
        )
        started = time.monotonic()
        served.pod.kill(f"key:{key_id}", by=admin, reason="test")
        with pytest.raises(openai.APIError, match="kill switch"):
            for _ in stream:
                pass
        assert time.monotonic() - started < 4.0  # cut at the next check, not when the upstream next speaks


def _post(served: object, body: str) -> httpx.Response:
    return httpx.post(
        f"{served.openai_base}/chat/completions",  # type: ignore[attr-defined]
        content=body.encode(),
        headers={"Authorization": f"Bearer {served.agent_key}", "Content-Type": "application/json"},  # type: ignore[attr-defined]
    )


def test_personal_data_in_an_image_s_address_goes_as_it_always_has(settings: Settings) -> None:
    """Only what the policy blocks refuses a request from a message's other fields: a number in an image's address
    (which podium cannot redact) is not a reason to refuse the picture."""
    with OpenAIServer() as upstream, served_with(settings, _config(upstream)) as served:
        image = {"type": "image_url", "image_url": {"url": "https://media.example.com/p/2125550123/photo.png"}}
        message = {"role": "user", "content": [{"type": "text", "text": "what is this?"}, image]}
        assert _post(served, json.dumps({"model": "remote", "messages": [message]})).status_code == 200


@pytest.mark.parametrize(
    "message",
    [
        {"role": "user", "content": "hi", "name": AWS_KEY},
        {"role": "user", "content": "hi", "x_note": AWS_KEY},
        {"role": "assistant", "content": None, "refusal": AWS_KEY},
        {"role": "user", "content": [{"type": "refusal", "refusal": AWS_KEY}]},
        {"role": "user", "content": [{"type": "image_url", "image_url": {"url": f"data:text/plain,{AWS_KEY}"}}]},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [{"id": "t1", "type": "function", "function": {"name": AWS_KEY, "arguments": "{}"}}],
        },
    ],
    ids=["name", "unknown-field", "refusal", "refusal-part", "data-url", "tool-call-name"],
)
def test_a_secret_anywhere_in_a_message_does_not_leave(settings: Settings, message: dict[str, object]) -> None:
    with OpenAIServer() as upstream, served_with(settings, _config(upstream)) as served:
        messages = [message] if message["role"] == "user" else [{"role": "user", "content": "go"}, message]
        answer = _post(served, json.dumps({"model": "remote", "messages": messages}))
        assert answer.status_code == 403 and "aws_key" in answer.json()["error"]["message"]
        assert upstream.chat_requests() == []


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ('{"model": "remote", "messages": [{"role": "user", "content": "hi"}], "temperature": NaN}', "NaN"),
        ('{"model": "remote", "messages": [{"role": "user", "content": "hi"}], "seed": -Infinity}', "-Infinity"),
        ('{"model": "remote", "messages": [{"role": "user", "content": "hi"}], "seed": ' + "9" * 5000 + "}", "digits"),
        ('{"model": "remote", "messages": [{"role": "user", "content": "a \\ud800 b"}]}', "surrogate"),
        ('{"model": "remote", "messages": [{"role": "user", "content": "hi"}], "temperature": 1e999}', "finite"),
    ],
    ids=["nan", "infinity", "long-integer", "lone-surrogate", "overflowing-float"],
)
def test_a_body_that_is_not_standard_json_is_a_clear_400_and_audited(settings: Settings, body: str, says: str) -> None:
    with OpenAIServer() as upstream, served_with(settings, _config(upstream)) as served:
        answer = _post(served, body)
        assert answer.status_code == 400 and says in answer.json()["error"]["message"]
        refusals = [
            e.entry for e in served.pod.audit.entries(actor=f"agent:{AGENT}") if e.entry.action == "gateway.request"
        ]
        assert len(refusals) == 1 and upstream.chat_requests() == []
        paired = '{"model": "remote", "messages": [{"role": "user", "content": "a \\ud83d\\ude00 b"}]}'
        assert _post(served, paired).status_code == 200  # an emoji escaped as a surrogate pair is text


@pytest.mark.parametrize("request_id", ["abc%0d%0aSet-Cookie:%20x=1", "abc%00", "%C4%80"])
def test_a_request_id_in_the_audit_path_is_never_copied_into_a_header(settings: Settings, request_id: str) -> None:
    """Nor does it fail the refusal's audit entry (PostgreSQL takes no NUL): a clear 400 for a key, 401 without."""
    with OpenAIServer() as upstream, served_with(settings, _config(upstream)) as served:
        for key in (served.agent_key, "not-a-key"):
            answer = httpx.get(
                f"{served.openai_base}/podium/audit/{request_id}", headers={"Authorization": f"Bearer {key}"}
            )
            assert answer.status_code == (400 if key == served.agent_key else 401), answer.text
            assert re.fullmatch(r"[0-9a-f]{32}", answer.headers["x-podium-request-id"])


def test_a_revoked_key_s_stream_stops_at_the_next_check(settings: Settings) -> None:
    """A key revoked (here, by rotating it) stops what it opened, as a kill of `key:<id>` does."""
    with OpenAIServer() as upstream, served_with(settings, _config(upstream)) as served:
        upstream.script = Script(text="one two three", chunks=3, chunk_delay_s=5.0)
        client = openai.OpenAI(base_url=served.openai_base, api_key=served.agent_key, max_retries=0)
        stream = client.chat.completions.create(
            model="remote", messages=[{"role": "user", "content": "x"}], stream=True
        )
        started = time.monotonic()
        served.pod.agents.rotate_key(AGENT, by=sign_in(served.pod, "admin@podium.test"))
        with pytest.raises(openai.APIError, match="was revoked"):
            for _ in stream:
                pass
        assert time.monotonic() - started < 4.0
