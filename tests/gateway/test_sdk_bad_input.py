"""Bad input on every gateway route, over real HTTP: malformed JSON, an unknown model, a body over 1 MB, wrong
types, a missing or malformed key. Each is answered in the client's API's own error shape (OpenAI's
`{"error": {message, type, param, code}}`, Anthropic's `{"type": "error", "error": {type, message}}`), nothing is
recorded as spend, and the refusal is audited: one `gateway.request` entry for a known key, the gatekeeper's
aggregate `auth.refused` count for a bad one. The official SDKs raise their own exception classes for them."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx2
import openai
import pytest
import sqlalchemy as sa

from podium import Settings
from podium.store import tables

from .conftest import AGENT, Served, Upstreams, remote_model, served_with, serving
from .openai_server import OpenAIServer

OVER_A_MEGABYTE = "x" * (1024 * 1024 + 1)
OPENAI_ROUTES = ("/v1/chat/completions", "/v1/embeddings")
GOOD: dict[str, dict[str, Any]] = {
    "/v1/chat/completions": {"model": "gpt-test", "messages": [{"role": "user", "content": "Hi"}]},
    "/v1/embeddings": {"model": "gpt-test", "input": ["Hi"]},
    "/v1/messages": {"model": "gpt-test", "max_tokens": 10, "messages": [{"role": "user", "content": "Hi"}]},
}
WRONG_TYPES: dict[str, dict[str, Any]] = {
    "/v1/chat/completions": {"messages": "Hi", "max_tokens": "ten"},
    "/v1/embeddings": {"input": 42},
    "/v1/messages": {"max_tokens": "ten", "messages": {"role": "user"}},
}


@pytest.fixture(scope="module")
def module_served(module_settings: Settings, module_upstreams: Upstreams) -> Iterator[Served]:
    config = remote_model("gpt", module_upstreams.openai.base_url) + '[gateway.aliases]\n"gpt-test" = ["gpt"]\n'
    with served_with(module_settings, config) as running:
        yield running


@pytest.fixture
def served(module_served: Served, upstreams: Upstreams) -> Served:
    return module_served.fresh()


def post(served: Served, path: str, content: bytes, key: str | None) -> httpx2.Response:
    headers = {"Content-Type": "application/json"}
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    return httpx2.post(f"{served.url}{path}", content=content, headers=headers, timeout=30)


def assert_openai_error(answer: httpx2.Response, status: int, code: str | None) -> str:
    """The answer is OpenAI's error shape, with this status and code; its message."""
    assert answer.status_code == status, answer.text
    body = answer.json()
    assert list(body) == ["error"] and set(body["error"]) == {"message", "type", "param", "code"}
    assert body["error"]["code"] == code and body["error"]["type"]
    message: str = body["error"]["message"]
    assert message
    return message


def assert_anthropic_error(answer: httpx2.Response, status: int, kind: str) -> str:
    """The answer is Anthropic's error shape, with this status and error type; its message."""
    assert answer.status_code == status, answer.text
    body = answer.json()
    assert body["type"] == "error" and body["error"]["type"] == kind
    message: str = body["error"]["message"]
    assert message
    return message


def refusals(served: Served) -> list[dict[str, str]]:
    """The audit log's `gateway.request` refusals of the agent's key, their details."""
    return [json.loads(e.detail) for e in served.audit(f"agent:{AGENT}") if e.action == "gateway.request"]


def assert_nothing_spent(served: Served, upstream: OpenAIServer) -> None:
    assert served.ledger() == []
    assert upstream.requests == []
    reservations = tables.reservations
    with served.pod.engine.connect() as conn:
        made = conn.execute(sa.select(reservations.c.id).where(reservations.c.created_at >= served.since))
        assert list(made) == []


def test_each_route_answers_bad_bodies_in_its_own_apis_shape_and_audits_them(
    served: Served, openai_upstream: OpenAIServer
) -> None:
    key = served.agent_key
    for path in OPENAI_ROUTES:
        message = assert_openai_error(post(served, path, b'{"model": "gpt-test", "mess', key), 400, None)
        assert "not valid JSON" in message
        unknown = json.dumps({**GOOD[path], "model": "gpt-9"}).encode()
        assert "no model named 'gpt-9'" in assert_openai_error(post(served, path, unknown, key), 404, "model_not_found")
        wrong = json.dumps({**GOOD[path], **WRONG_TYPES[path]}).encode()
        assert_openai_error(post(served, path, wrong, key), 400, None)
        assert_openai_error(post(served, path, b"[1, 2]", key), 400, None)
    path = "/v1/messages"
    message = assert_anthropic_error(post(served, path, b"{not json", key), 400, "invalid_request_error")
    assert "not valid JSON" in message
    unknown = json.dumps({**GOOD[path], "model": "claude-9"}).encode()
    assert_anthropic_error(post(served, path, unknown, key), 404, "not_found_error")
    wrong = json.dumps({**GOOD[path], **WRONG_TYPES[path]}).encode()
    assert_anthropic_error(post(served, path, wrong, key), 400, "invalid_request_error")
    audited = refusals(served)
    assert [(r["status"], r["request_id"] != "") for r in audited] == [
        ("400", True), ("404", True), ("400", True), ("400", True),  # chat completions
        ("400", True), ("404", True), ("400", True), ("400", True),  # embeddings
        ("400", True), ("404", True), ("400", True),  # messages
    ]  # fmt: skip
    assert_nothing_spent(served, openai_upstream)


def test_a_body_over_a_megabyte_is_refused_in_the_routes_own_shape(
    served: Served, openai_upstream: OpenAIServer
) -> None:
    for path in OPENAI_ROUTES:
        big = json.dumps({**GOOD[path], "user": OVER_A_MEGABYTE}).encode()
        answer = post(served, path, big, served.agent_key)
        assert "over 1,048,576 bytes" in assert_openai_error(answer, 413, "request_too_large")
        assert answer.headers["x-should-retry"] == "false"
    big = json.dumps({**GOOD["/v1/messages"], "system": OVER_A_MEGABYTE}).encode()
    assert_anthropic_error(post(served, "/v1/messages", big, served.agent_key), 413, "request_too_large")
    # the same through the SDKs, which raise their own classes for it
    with pytest.raises(openai.APIStatusError) as too_big:
        openai.OpenAI(base_url=served.openai_base, api_key=served.agent_key, max_retries=0).chat.completions.create(
            model="gpt-test", messages=[{"role": "user", "content": OVER_A_MEGABYTE}]
        )
    assert too_big.value.status_code == 413 and too_big.value.code == "request_too_large"
    with pytest.raises(anthropic.APIStatusError) as too_big_too:
        anthropic.Anthropic(base_url=served.url, api_key=served.agent_key, max_retries=0).messages.create(
            model="gpt-test", max_tokens=10, messages=[{"role": "user", "content": OVER_A_MEGABYTE}]
        )
    assert too_big_too.value.status_code == 413 and str(too_big_too.value.type) == "request_too_large"
    # podium's own API, under /v1 too, keeps its one shape
    answer = httpx2.post(f"{served.url}/v1/reviews/x/approve", content=OVER_A_MEGABYTE.encode(), timeout=30)
    assert answer.status_code == 413 and answer.json()["error"].keys() == {"code", "message"}
    assert answer.json()["error"]["code"] == "too_large"
    assert_nothing_spent(served, openai_upstream)


def test_a_missing_or_malformed_key_is_refused_in_each_shape_and_counted_in_aggregate(
    served: Served, openai_upstream: OpenAIServer
) -> None:
    with serving(served.pod) as url:  # a server of its own, whose refusal counts are written when it stops
        bad = dataclasses.replace(served, url=url)
        for path in OPENAI_ROUTES:
            body = json.dumps(GOOD[path]).encode()
            assert_openai_error(post(bad, path, body, None), 401, "invalid_api_key")
            assert_openai_error(post(bad, path, body, "not a key at all"), 401, "invalid_api_key")
            assert_openai_error(post(bad, path, body, "podp_0123456789ab_" + "A" * 43), 401, "invalid_api_key")
        models = httpx2.get(f"{url}/v1/models", headers={"Authorization": "Bearer nope"})
        assert_openai_error(models, 401, "invalid_api_key")
        messages = json.dumps(GOOD["/v1/messages"]).encode()
        assert_anthropic_error(post(bad, "/v1/messages", messages, None), 401, "authentication_error")
        wrong_key = anthropic.Anthropic(base_url=url, api_key="sk-ant-wrong", max_retries=0)
        with pytest.raises(anthropic.AuthenticationError):
            wrong_key.messages.create(**GOOD["/v1/messages"])
        with pytest.raises(openai.AuthenticationError) as refused:
            openai.OpenAI(base_url=f"{url}/v1", api_key="sk-wrong", max_retries=0).models.list()
        assert refused.value.code == "invalid_api_key"
    [counted] = [entry for entry in served.audit("anonymous") if entry.action == "auth.refused"]
    assert counted.decision == "denied"
    detail = json.loads(counted.detail)
    assert int(detail["count"]) == 6 + 1 + 1 + 2
    assert json.loads(detail["clients"]) == {"127.0.0.1": 10}
    assert refusals(served) == []  # no key proved anyone: nothing in anyone's name
    assert_nothing_spent(served, openai_upstream)


def test_an_admins_and_a_persons_key_are_refused_where_policy_says_and_audited(
    served: Served, openai_upstream: OpenAIServer
) -> None:
    with pytest.raises(openai.PermissionDeniedError, match="admin-keys-call-no-models"):
        openai.OpenAI(base_url=served.openai_base, api_key=served.admin_key, max_retries=0).embeddings.create(
            model="gpt-test", input=["Hi"]
        )
    with pytest.raises(anthropic.PermissionDeniedError):  # people use local models by default, not this one
        anthropic.Anthropic(base_url=served.url, api_key=served.person_key, max_retries=0).messages.create(
            **GOOD["/v1/messages"]
        )
    denied = [entry for entry in served.audit() if entry.decision == "denied"]
    assert [(e.actor.split(":")[0], e.resource) for e in denied] == [("person", "gpt"), ("person", "gpt")]
    assert_nothing_spent(served, openai_upstream)
