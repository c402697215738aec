"""The gatekeeper's refusal counts and client addresses, and the names the server answers to."""

from __future__ import annotations

import asyncio
import json
import logging

import pytest
import sqlalchemy as sa
from fastapi import Request
from fastapi.testclient import TestClient

from podium import Podium
from podium.api import Gatekeeper, create_app
from podium.api._auth import AuthError
from podium.store import tables
from podium.testing import key_for


def asking(client: str, key: str | None = None) -> Request:
    """A request from `client`, as the server reads it off the socket."""
    headers = [(b"authorization", f"Bearer {key}".encode())] if key else []
    return Request({"type": "http", "client": (client, 40000), "headers": headers})


def answer(gate: Gatekeeper, client: str, key: str | None = None) -> int:
    try:
        gate.identity(asking(client, key))
    except AuthError as refused:
        return refused.status
    return 200


def refused_counts(pod: Podium) -> list[int]:
    log = tables.audit_log
    with pod.engine.connect() as conn:
        details = conn.execute(sa.select(log.c.detail).where(log.c.action == "auth.refused").order_by(log.c.seq))
        return [int(json.loads(d)["count"]) for (d,) in details]


def test_a_failed_audit_write_keeps_the_counts_for_the_next(pod: Podium, caplog: pytest.LogCaptureFixture) -> None:
    gate = Gatekeeper(pod, window_s=0.05)
    for n in range(3):
        answer(gate, f"10.0.0.{n}")
    with pod.engine.begin() as conn:  # the audit log cannot be written for a while
        conn.execute(sa.text("ALTER TABLE podium_audit_log RENAME TO podium_audit_log_away"))
    with pytest.raises(sa.exc.DBAPIError):
        gate.flush()
    answer(gate, "10.0.0.9")

    async def a_few_windows() -> bool:
        flushing = asyncio.create_task(gate.flush_every_window())
        await asyncio.sleep(0.3)
        alive = not flushing.done()
        flushing.cancel()
        return alive

    with caplog.at_level(logging.WARNING, logger="podium.api._auth"):
        assert asyncio.run(a_few_windows()), "the flushing loop outlives a failed write"
    assert "kept for the next window" in caplog.text
    with pod.engine.begin() as conn:
        conn.execute(sa.text("ALTER TABLE podium_audit_log_away RENAME TO podium_audit_log"))
    assert gate.flush() == 4
    assert refused_counts(pod) == [4], "every refusal counted once, in one entry"


@pytest.mark.parametrize("settings", ["sqlite"], indirect=True)
def test_ipv6_clients_are_limited_by_their_64_and_the_tracked_addresses_are_capped(
    pod: Podium, monkeypatch: pytest.MonkeyPatch
) -> None:
    gate = Gatekeeper(pod, window_s=3600, max_refusals=1)
    assert [answer(gate, f"2001:db8:0:1::{n}") for n in range(1, 4)] == [401, 429, 429], "one /64, one limit"
    assert answer(gate, "2001:db8:0:2::1") == 401, "another /64"
    monkeypatch.setattr("podium.api._auth.MAX_TRACKED_CLIENTS", 3)
    for n in range(4):
        assert answer(gate, f"10.0.1.{n}") == 401
    assert answer(gate, "10.0.1.3") == 429, "the latest addresses are remembered"
    assert answer(gate, "2001:db8:0:1::1") == 401, "the least recently refused are forgotten past the cap"


@pytest.mark.parametrize("settings", ["sqlite"], indirect=True)
def test_an_allowed_host_may_name_a_port(pod: Podium) -> None:
    app = create_app(pod, allowed_hosts=["Example.com.:8000"])
    with TestClient(app, base_url="http://example.com:8000", raise_server_exceptions=False) as client:
        auth = {"Authorization": f"Bearer {key_for(pod, 'rita@example.com')}"}
        assert client.get("/v1/reviews", headers=auth).status_code == 200
        assert client.get("/v1/reviews", headers=auth | {"Host": "example.com"}).status_code == 200
        assert client.get("/v1/reviews", headers=auth | {"Host": "evil.example"}).status_code == 421
