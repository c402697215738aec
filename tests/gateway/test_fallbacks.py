"""Fallbacks through `podium serve`, with the official SDKs and real upstream servers on loopback: an alias names
two upstreams; a provider's fault (503) on the first is answered by the second, the failed try kept in the ledger
as waste and in the audit log; the request's own fault (400) is passed on, not retried; and a stream falls back
only until its first chunk has gone to the client, never answering twice."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx2
import openai
import pytest

from podium import Settings
from podium.audit import InclusionProof

from .anthropic_server import AnthropicServer, Reply
from .conftest import AGENT, Served, Upstreams, remote_model, served_with
from .openai_server import OpenAIServer, Script

ASK: Any = {"max_tokens": 50, "messages": [{"role": "user", "content": "Status?"}]}
USAGE = {"prompt_tokens": 10, "completion_tokens": 4, "total_tokens": 14}


@pytest.fixture(scope="module")
def module_served(module_settings: Settings, module_upstreams: Upstreams) -> Iterator[Served]:
    config = (
        remote_model("flaky", module_upstreams.openai.base_url)
        + remote_model("claude", module_upstreams.anthropic.base_url, api="anthropic")
        + remote_model("steady", module_upstreams.second.base_url)
        + '[gateway.aliases]\nresilient = ["flaky", "steady"]\nmixed = ["claude", "steady"]\n'
        + '[gateway.guardrails]\noutput = "off"\n'
        + "[routing]\nbreaker_failures = 1000\n"  # the tests' failures never open a breaker for the next test
    )
    with served_with(module_settings, config) as running:
        admin = running.pod.authenticate(running.admin_key, audit=False)
        running.pod.budgets.set(f"agent:{AGENT}", 50.0, by=admin)
        yield running


@pytest.fixture
def served(module_served: Served, upstreams: Upstreams) -> Served:
    return module_served.fresh()


def sdk(served: Served) -> openai.OpenAI:
    return openai.OpenAI(base_url=served.openai_base, api_key=served.agent_key, max_retries=0)


def audit_trail(served: Served, request_id: str) -> list[dict[str, Any]]:
    """The request's audit entries as its key reads them over HTTP, each with its inclusion proof."""
    answer = httpx2.get(
        f"{served.url}/v1/podium/audit/{request_id}", headers={"Authorization": f"Bearer {served.agent_key}"}
    )
    assert answer.status_code == 200, answer.text
    entries: list[dict[str, Any]] = answer.json()["entries"]
    for entry in entries:
        proof = InclusionProof(**{**entry["proof"], "path": tuple(entry["proof"]["path"])})
        assert proof.seq == entry["seq"] and proof.holds()
    return [e["entry"] for e in entries]


def assert_released(served: Served) -> None:
    """Nothing is held, and the budget spent what the module's calls so far cost."""
    budget = served.pod.budgets.get(f"agent:{AGENT}")
    assert budget.reserved_nano_usd == 0
    assert budget.spent_nano_usd == sum(row.cost_nano_usd for row in served.ledger(since=0))


def test_a_503_from_the_first_upstream_is_answered_by_the_second(
    served: Served, openai_upstream: OpenAIServer, second_upstream: OpenAIServer
) -> None:
    openai_upstream.script = Script(fail_status=503, error_message="overloaded, try later")
    second_upstream.script = Script(text="All systems go.", usage=USAGE)
    raw = sdk(served).chat.completions.with_raw_response.create(model="resilient", **ASK)
    reply = raw.parse()
    assert reply.model == "resilient" and reply.choices[0].message.content == "All systems go."
    assert len(openai_upstream.chat_requests()) == len(second_upstream.chat_requests()) == 1
    failed, answered = served.ledger()
    assert (failed.resource, failed.wasted, failed.cost_nano_usd) == ("flaky", 1, 0)
    assert (answered.resource, answered.wasted, answered.output_tokens) == ("steady", 0, 4)
    first, second = audit_trail(served, raw.headers["x-podium-request-id"])
    assert (first["resource"], first["decision"]) == ("flaky", "failed")
    assert "HTTP 503: overloaded, try later" in json.loads(first["detail"])["error"]
    assert (second["resource"], second["decision"], second["cost_nano_usd"]) == (
        "steady", "allowed", answered.cost_nano_usd
    )  # fmt: skip
    assert_released(served)


def test_when_every_upstream_fails_the_client_gets_a_503_naming_each(
    served: Served, openai_upstream: OpenAIServer, second_upstream: OpenAIServer
) -> None:
    openai_upstream.script = Script(fail_status=503)
    second_upstream.script = Script(fail_status=502)
    with pytest.raises(openai.InternalServerError) as caught:
        sdk(served).chat.completions.create(model="resilient", **ASK)
    assert caught.value.status_code == 503 and caught.value.code == "service_unavailable"
    assert "flaky: upstream flaky answered HTTP 503" in caught.value.message
    assert "steady: upstream steady answered HTTP 502" in caught.value.message
    assert caught.value.response.headers["retry-after"] == "5"
    assert [(row.resource, row.wasted) for row in served.ledger()] == [("flaky", 1), ("steady", 1)]
    assert_released(served)


def test_a_400_from_the_upstream_is_passed_on_and_not_retried(
    served: Served, openai_upstream: OpenAIServer, second_upstream: OpenAIServer
) -> None:
    openai_upstream.script = Script(fail_status=400, error_message="temperature is out of range for this model")
    with pytest.raises(openai.BadRequestError) as caught:
        sdk(served).chat.completions.create(model="resilient", **ASK)
    assert "temperature is out of range for this model" in caught.value.message
    assert caught.value.code == "upstream_refused"
    assert second_upstream.chat_requests() == []  # no other upstream would take it either
    [row] = served.ledger()
    assert (row.resource, row.wasted, row.cost_nano_usd) == ("flaky", 1, 0)
    assert_released(served)


def test_a_stream_falls_back_before_its_first_chunk(
    served: Served, openai_upstream: OpenAIServer, second_upstream: OpenAIServer
) -> None:
    openai_upstream.script = Script(fail_status=503)
    second_upstream.script = Script(text="Streamed by the second.", chunks=3, usage=USAGE)
    chunks = list(sdk(served).chat.completions.create(model="resilient", stream=True, **ASK))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Streamed by the second."
    assert [(row.resource, row.wasted) for row in served.ledger()] == [("flaky", 1), ("steady", 0)]
    assert_released(served)


def test_a_stream_that_fails_after_its_first_chunk_ends_with_an_error_not_a_second_answer(
    served: Served, anthropic_upstream: AnthropicServer, second_upstream: OpenAIServer
) -> None:
    anthropic_upstream.reply = Reply(text="First part, then trouble.", deltas=3, error_mid_stream="overloaded_error")
    second_upstream.script = Script(text="A second answer must not follow.", usage=USAGE)
    received: list[str] = []

    def read() -> None:
        for chunk in sdk(served).chat.completions.create(model="mixed", stream=True, **ASK):
            received.append(chunk.choices[0].delta.content or "" if chunk.choices else "")

    with pytest.raises(openai.APIError, match="overloaded_error"):
        read()
    assert "".join(received) == "First par"  # the first delta, then the error event
    assert second_upstream.chat_requests() == []
    [row] = served.ledger()
    assert (row.resource, row.wasted) == ("claude", 0)
    assert row.cost_nano_usd > 0  # what the first upstream produced is charged
    [entry] = [entry for entry in served.audit(f"agent:{AGENT}") if entry.call_key == row.call_key]
    assert json.loads(entry.detail)["stream_end"].startswith("cut: ")
    assert_released(served)
