"""The official `openai` SDK, unchanged but for base URL and key, against `podium serve` and its in-process local
model: what a fresh home serves with no configuration."""

from __future__ import annotations

import asyncio

import openai
import pytest
import sqlalchemy as sa

from podium.store import tables
from tests.gateway.conftest import PERSON, Served

pytestmark = pytest.mark.slow
LOCAL = "smollm2-135m"


def _client(served: Served, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=served.openai_base, api_key=key, max_retries=0)


def _ledger(served: Served) -> list[sa.Row[tuple[object, ...]]]:
    with served.pod.engine.connect() as conn:
        return list(conn.execute(sa.select(tables.ledger).order_by(tables.ledger.c.at)))


def test_a_person_chats_with_the_local_model_and_is_charged(served: Served) -> None:
    reply = _client(served, served.person_key).chat.completions.create(
        model=LOCAL, messages=[{"role": "user", "content": "Say hello."}], max_tokens=8
    )
    assert reply.model == LOCAL
    assert reply.choices[0].message.role == "assistant"
    assert reply.usage is not None and reply.usage.completion_tokens >= 1
    [row] = _ledger(served)
    assert (row.person, row.agent, row.resource, row.team) == (PERSON, "", LOCAL, "support")
    assert row.output_tokens == reply.usage.completion_tokens
    assert row.cost_nano_usd > 0  # local compute is charged
    [entry] = [e for e in served.pod.audit.entries(actor=f"person:{PERSON}")]
    assert entry.entry.decision == "allowed"
    assert entry.entry.call_key == row.call_key


def test_streaming_with_usage_arrives_chunk_by_chunk(served: Served) -> None:
    stream = _client(served, served.agent_key).chat.completions.create(
        model=LOCAL,
        messages=[{"role": "user", "content": "Count to five."}],
        max_tokens=12,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    [row] = _ledger(served)
    assert row.agent == "helpdesk-bot" and row.output_tokens == chunks[-1].usage.completion_tokens


def test_async_client_and_models_list(served: Served) -> None:
    async def ask() -> tuple[list[str], str]:
        client = openai.AsyncOpenAI(base_url=served.openai_base, api_key=served.person_key, max_retries=0)
        models = [m.id async for m in client.models.list()]
        reply = await client.chat.completions.create(
            model=LOCAL, messages=[{"role": "user", "content": "Hi"}], max_tokens=4
        )
        await client.close()
        return models, reply.model

    models, answered_by = asyncio.run(ask())
    assert LOCAL in models and answered_by == LOCAL


def test_an_admin_key_calls_no_model(served: Served) -> None:
    with pytest.raises(openai.PermissionDeniedError, match="admin-keys-call-no-models"):
        _client(served, served.admin_key).chat.completions.create(
            model=LOCAL, messages=[{"role": "user", "content": "Hi"}], max_tokens=4
        )
    assert _ledger(served) == []
    assert _client(served, served.admin_key).models.list().data == []


def test_bad_requests_get_openai_shaped_errors_and_no_spend(served: Served) -> None:
    client = _client(served, served.person_key)
    with pytest.raises(openai.NotFoundError) as unknown:
        client.chat.completions.create(model="gpt-9", messages=[{"role": "user", "content": "Hi"}])
    assert unknown.value.code == "model_not_found"
    with pytest.raises(openai.BadRequestError, match="not a field this endpoint takes"):
        client.chat.completions.create(
            model=LOCAL, messages=[{"role": "user", "content": "Hi"}], extra_body={"bogus": 1}
        )
    with pytest.raises(openai.BadRequestError, match="role"):
        client.chat.completions.create(model=LOCAL, messages=[{"role": "wizard", "content": "Hi"}])  # type: ignore[list-item,misc]
    with pytest.raises(openai.AuthenticationError):
        _client(served, "pod_nope_nope").chat.completions.create(
            model=LOCAL, messages=[{"role": "user", "content": "x"}]
        )
    assert _ledger(served) == []
    refusals = [
        e.entry for e in served.pod.audit.entries(actor=f"person:{PERSON}") if e.entry.action == "gateway.request"
    ]
    assert len(refusals) == 3 and all(e.decision == "denied" for e in refusals)
