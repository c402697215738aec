"""Requests and tokens a minute per key and per team ([gateway.limits]): over the limit, a 429 with Retry-After in
the client's API's shape, audited by the governor with the stage that refused; counted in the database, so two
processes share one window."""

from __future__ import annotations

import json

import openai
import pytest

from podium import Podium, Settings
from podium.agents import KEYS as AGENT_KEYS
from tests.gateway.conftest import AGENT, remote_model, served_with, serving
from tests.gateway.openai_server import OpenAIServer

HELLO = [{"role": "user", "content": "hello"}]


def _refusals(pod: Podium) -> list[dict[str, str]]:
    entries = pod.audit.entries(actor=f"agent:{AGENT}")
    return [json.loads(e.entry.detail) for e in entries if e.entry.decision == "denied"]


def test_a_key_over_its_requests_a_minute_gets_429_with_retry_after(settings: Settings) -> None:
    with OpenAIServer() as upstream:
        config = remote_model("remote", upstream.base_url) + "[gateway.limits]\nkey = { rpm = 2 }\n"
        with served_with(settings, config) as served:
            second_process = Podium.connect(settings.model_copy(update={"config": settings.home / "podium.toml"}))
            with second_process, serving(second_process) as other_url:
                clients = [
                    openai.OpenAI(base_url=f"{url}/v1", api_key=served.agent_key, max_retries=0)
                    for url in (served.url, other_url)
                ]
                clients[0].chat.completions.create(model="remote", messages=HELLO)
                clients[1].chat.completions.create(model="remote", messages=HELLO)  # the same window, elsewhere
                with pytest.raises(openai.RateLimitError, match="requests a minute") as limited:
                    clients[0].chat.completions.create(model="remote", messages=HELLO)
            retry_after = int(limited.value.response.headers["retry-after"])
            assert 1 <= retry_after <= 61
            assert len(upstream.chat_requests()) == 2 and len(served.ledger()) == 2
            key_id, _ = AGENT_KEYS.split(served.agent_key)
            [refused] = _refusals(served.pod)
            assert refused["stage"] == "rate_limits" and f"key:{key_id}" in refused["reason"]


def test_a_team_over_its_tokens_a_minute_is_refused_until_the_window_turns(settings: Settings) -> None:
    with OpenAIServer() as upstream:  # each answer reports 17 tokens
        config = remote_model("remote", upstream.base_url) + "[gateway.limits]\nteam = { tpm = 20 }\n"
        with served_with(settings, config) as served:
            client = openai.OpenAI(base_url=served.openai_base, api_key=served.agent_key, max_retries=0)
            client.chat.completions.create(model="remote", messages=HELLO)  # 17 of 20 used
            client.chat.completions.create(model="remote", messages=HELLO)  # in flight while room: 34 used
            with pytest.raises(openai.RateLimitError, match="team:support is over its limit of 20 tokens"):
                client.chat.completions.create(model="remote", messages=HELLO)
            assert len(upstream.chat_requests()) == 2


def test_no_limits_configured_adds_no_stage(settings: Settings) -> None:
    with OpenAIServer() as upstream, served_with(settings, remote_model("remote", upstream.base_url)) as served:
        assert "rate_limits" not in [stage.name for stage in served.pod.governor.stages]
