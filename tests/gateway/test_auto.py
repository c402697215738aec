"""`podium/auto`: the router picks among the models the caller may use, explains itself in the audit entry, and
learns from the client's feedback (once per request), in a way a new process starts from."""

from __future__ import annotations

import json

import httpx2 as httpx
import openai
import pytest
import sqlalchemy as sa

from podium import Settings
from podium.store import tables
from tests.gateway.conftest import AGENT, PERSON, Served, remote_model, served_with
from tests.gateway.openai_server import OpenAIServer

pytestmark = pytest.mark.slow  # the router may choose the local model


def _ask(served: Served, key: str) -> tuple[str, str]:
    client = openai.OpenAI(base_url=served.openai_base, api_key=key, max_retries=0)
    raw = client.chat.completions.with_raw_response.create(
        model="podium/auto", messages=[{"role": "user", "content": "Say yes."}], max_tokens=3
    )
    return raw.headers["x-podium-request-id"], raw.parse().model


def test_auto_routes_within_what_the_caller_may_use_and_learns_from_feedback(settings: Settings) -> None:
    with OpenAIServer() as upstream, served_with(settings, remote_model("remote", upstream.base_url)) as served:
        assert "podium/auto" in [
            m.id for m in openai.OpenAI(base_url=served.openai_base, api_key=served.agent_key).models.list()
        ]
        request_id, answered_as = _ask(served, served.agent_key)
        assert answered_as == "podium/auto"
        [entry] = [e.entry for e in served.pod.audit.entries(actor=f"agent:{AGENT}") if e.entry.action == "model.call"]
        detail = json.loads(entry.detail)
        assert detail["alias"] == "podium/auto" and detail["route"] in ("smollm2-135m", "remote")
        assert detail["router"] == "gateway:smollm2-135m|remote"  # both: the agent's grants allow both tiers

        said = httpx.post(
            f"{served.url}/v1/podium/feedback",
            json={"request_id": request_id, "good": True},
            headers={"Authorization": f"Bearer {served.agent_key}"},
        )
        assert said.status_code == 200 and said.json()["credited"] == 1
        again = httpx.post(
            f"{served.url}/v1/podium/feedback",
            json={"request_id": request_id, "good": False},
            headers={"Authorization": f"Bearer {served.agent_key}"},
        )
        assert again.status_code == 404  # once per request
        with served.pod.engine.connect() as conn:
            [row] = conn.execute(sa.select(tables.routed)).all()
        assert (row.run_id, row.success, row.model) == (
            f"request:key.{served.agent_key.split('_')[1]}:{request_id}",
            1,
            detail["route"],
        )
        assert "Say yes" not in row.features  # hashed features, never the text

        # A person may use the local tier only (the default policy): auto never sends them elsewhere.
        _, _ = _ask(served, served.person_key)
        [person_entry] = [
            e.entry for e in served.pod.audit.entries(actor=f"person:{PERSON}") if e.entry.action == "model.call"
        ]
        assert json.loads(person_entry.detail)["router"] == "gateway:smollm2-135m"
        assert upstream.chat_requests() == [] or detail["route"] == "remote"


def test_feedback_on_another_keys_request_finds_nothing(settings: Settings) -> None:
    with OpenAIServer() as upstream, served_with(settings, remote_model("remote", upstream.base_url)) as served:
        request_id, _ = _ask(served, served.agent_key)
        said = httpx.post(
            f"{served.url}/v1/podium/feedback",
            json={"request_id": request_id, "good": True},
            headers={"Authorization": f"Bearer {served.person_key}"},
        )
        assert said.status_code == 404
        assert said.json()["error"]["type"] == "invalid_request_error" and said.json()["error"]["code"] is None
