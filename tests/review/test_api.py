"""The review queue over HTTP: a real uvicorn server on loopback, a real HTTP client, runs that resume."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import httpx2
import pytest
import uvicorn

import podium
from podium import Podium, Settings
from podium.api import create_app
from podium.testing import key_for
from tests.review import _app
from tests.review._app import LEAD
from tests.review.test_review import outbox, waiting


@pytest.fixture
def served(settings: Settings) -> Iterator[tuple[Podium, httpx2.Client]]:
    """A launched podium running the refund workflows, and a client of `podium serve`'s app over real HTTP."""
    with podium.launch(settings, _app.app) as pod, Podium.connect(settings) as api_side:
        _app.tamper["extra_usd"] = 0.0
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        server = uvicorn.Server(uvicorn.Config(create_app(api_side), host="127.0.0.1", port=port, log_level="warning"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.02)
        with httpx2.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            yield pod, client
        server.should_exit = True
        thread.join(timeout=10)


def test_a_reviewer_decides_over_http(served: tuple[Podium, httpx2.Client]) -> None:
    pod, client = served
    lead = {"Authorization": f"Bearer {key_for(pod, LEAD)}"}
    mallory = {"Authorization": f"Bearer {key_for(pod, 'mallory')}"}
    big = _app.refund_flow.start("c-50", 800.0, note="late delivery")
    small = _app.refund_flow.start("c-51", 15.0, confidence=0.1)
    request, other = waiting(pod, big.id), waiting(pod, small.id)

    listed = client.get("/v1/reviews", params={"reason": "high_value"}, headers=lead).json()["items"]
    assert [r["id"] for r in listed] == [request.id]
    shown = client.get(f"/v1/reviews/{request.id}", headers=lead).json()
    assert (shown["action"]["arguments"]["amount_usd"], shown["waiting_on"]) == (800.0, "team:refunds")

    assert client.get("/v1/reviews/nope", headers=lead).status_code == 404
    refused = client.post(f"/v1/reviews/{request.id}/approve", json={}, headers=mallory)
    assert refused.status_code == 403 and "person:mallory may not review.decide" in refused.json()["error"]["message"]
    bad = client.post(f"/v1/reviews/{request.id}/edit", json={"changes": {"amount_usd": "a lot"}}, headers=lead)
    assert bad.status_code == 422 and "amount_usd: expected number" in bad.json()["error"]["message"]
    assert client.post(f"/v1/reviews/{request.id}/approve", json={"minutes": 1}).status_code == 401, "no key"
    assert pod.reviews.get(request.id).status == "pending"

    edited = client.post(
        f"/v1/reviews/{request.id}/edit",
        json={"changes": {"amount_usd": 400.0}, "rationale": "half", "minutes": 3},
        headers=lead,
    )
    assert edited.status_code == 200 and edited.json()["edited"] is True
    assert (edited.json()["decided_by"], big.result()) == (LEAD, "paid")
    again = client.post(f"/v1/reviews/{request.id}/approve", json={}, headers=lead)
    assert again.status_code == 409 and "a request is decided once" in again.json()["error"]["message"]

    rejected = client.post(f"/v1/reviews/{other.id}/reject", json={"label": "refund"}, headers=lead)
    assert rejected.status_code == 200, rejected.text
    assert small.result() == "not paid: rejected"
    assert outbox(pod) == ["400.00 late delivery"]
    stats = client.get("/v1/reviews/stats", headers=lead).json()
    assert (stats["decided"], stats["exception_rate"], stats["exceptions_by_reason"]["high_value"]) == (2, 1.0, 1)
