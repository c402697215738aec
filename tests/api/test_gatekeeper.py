"""The gatekeeper's client addresses."""

from __future__ import annotations

import pytest
from fastapi import Request

from podium import Podium
from podium.api import Gatekeeper
from podium.api._auth import AuthError


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
