"""The kill switch at the gateway: `podium kill --person / --key-id / --team` cuts a stream in flight (within a
check's interval) and refuses new requests; the cut stream is paid for what it produced, and audited."""

from __future__ import annotations

import json
import time

import openai
import pytest

from podium import Settings
from podium.agents import KEYS as AGENT_KEYS
from podium.policy import Identity
from podium.testing import sign_in
from tests.gateway.conftest import AGENT, Served, remote_model, served_with
from tests.gateway.openai_server import OpenAIServer, Script


@pytest.mark.parametrize("scope_of", ["key", "agent", "team"])
def test_a_kill_cuts_a_stream_in_flight_and_refuses_the_next_request(settings: Settings, scope_of: str) -> None:
    with OpenAIServer() as upstream:
        upstream.script = Script(text="word " * 200, chunks=200, chunk_delay_s=0.02)  # ~4 s if left alone
        with served_with(settings, remote_model("remote", upstream.base_url)) as served:
            admin = sign_in(served.pod, "admin@podium.test")
            client = openai.OpenAI(base_url=served.openai_base, api_key=served.agent_key, max_retries=0)
            key_id, _ = AGENT_KEYS.split(served.agent_key)
            scope = {"key": f"key:{key_id}", "agent": f"agent:{AGENT}", "team": "team:support"}[scope_of]
            received, killed_at, error = 0, 0.0, None
            try:
                for _ in client.chat.completions.create(
                    model="remote", messages=[{"role": "user", "content": "talk"}], stream=True
                ):
                    received += 1
                    if received == 5:
                        served.pod.kill(scope, by=admin, reason="test")
                        killed_at = time.monotonic()
            except openai.APIError as exc:
                error = str(exc)
            assert error is not None and "kill switch" in error, error
            # Cut within a few of the watchdog's half-second checks, not left to run its ~4 s (timed from the kill, so
            # a slow start on a busy machine does not count).
            assert time.monotonic() - killed_at < 2.0
            assert received < 150
            _the_cut_stream_is_charged_and_audited(served)
            # A key's kill refuses it; an agent's or its team's kill also revokes the agent's keys.
            refused = openai.PermissionDeniedError if scope_of == "key" else openai.AuthenticationError
            with pytest.raises(refused, match="kill switch" if scope_of == "key" else "revoked"):
                client.chat.completions.create(model="remote", messages=[{"role": "user", "content": "again"}])


def _the_cut_stream_is_charged_and_audited(served: Served) -> None:
    [row] = served.ledger()
    assert row.cost_nano_usd > 0 and row.output_tokens > 0
    entries = [e.entry for e in served.pod.audit.entries(actor=f"agent:{AGENT}") if e.entry.action == "model.call"]
    detail = json.loads(entries[-1].detail)
    assert detail["stream_end"].startswith("cut: ") and "kill switch" in detail["stream_end"]


def test_killing_a_person_refuses_their_requests(served: Served) -> None:
    admin: Identity = sign_in(served.pod, "admin@podium.test")
    client = openai.OpenAI(base_url=served.openai_base, api_key=served.person_key, max_retries=0)
    served.pod.kill("person:pat@example.com", by=admin, reason="left the company")
    with pytest.raises(openai.PermissionDeniedError, match="kill switch covers person"):
        client.chat.completions.create(model="smollm2-135m", messages=[{"role": "user", "content": "hi"}], max_tokens=2)
    served.pod.restore("person:pat@example.com", by=admin)
    assert client.models.list().data  # restored: they may call models again
