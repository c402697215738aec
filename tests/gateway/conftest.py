"""`podium serve` on loopback (uvicorn in a thread, a real socket), over SQLite and PostgreSQL, with the keys a
gateway test needs: a person's, an agent's and an admin's."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import uvicorn

from podium import Podium, Settings
from podium.api import Gatekeeper, create_app
from podium.testing import key_for

PERSON = "pat@example.com"  # a person in team support, with a key: the local tier is theirs by default
AGENT = "helpdesk-bot"


@dataclass(frozen=True)
class Served:
    pod: Podium
    url: str  # http://127.0.0.1:<port>
    person_key: str
    agent_key: str
    admin_key: str

    @property
    def openai_base(self) -> str:
        return f"{self.url}/v1"


@contextmanager
def serving(pod: Podium, **gatekeeper: float) -> Iterator[str]:
    """`podium serve`'s app over `pod`, on a free loopback port, until the block ends."""
    app = create_app(pod, gatekeeper=Gatekeeper(pod, **gatekeeper) if gatekeeper else None)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("podium serve did not start")
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def write_config(home: Path, text: str) -> Path:
    home.mkdir(parents=True, exist_ok=True)
    path = home / "podium.toml"
    path.write_text(text, encoding="utf-8")
    return path


@contextmanager
def served_pod(settings: Settings) -> Iterator[Served]:
    with Podium.connect(settings) as pod:
        admin_key = key_for(pod, "admin@podium.test")
        person_key = key_for(pod, PERSON, teams=["support"])
        admin = pod.authenticate(admin_key)
        _, issued = pod.agents.add(
            AGENT, owner="ops@example.com", team="support", models=["smollm2-135m", "tier:intermediate"], by=admin
        )
        with serving(pod) as url:
            yield Served(pod, url, person_key, issued.secret, admin_key)


@pytest.fixture
def served(settings: Settings) -> Iterator[Served]:
    with served_pod(settings) as running:
        yield running
