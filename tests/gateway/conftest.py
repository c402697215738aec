"""`podium serve` on loopback (uvicorn in a thread, a real socket), over SQLite and PostgreSQL, with the keys a
gateway test needs: a person's, an agent's and an admin's."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa
import uvicorn

from podium import Podium, Settings
from podium.api import Gatekeeper, create_app
from podium.audit import AuditEntry
from podium.store import tables
from podium.testing import key_for, temporary_postgres_database
from tests.conftest import POSTGRES_URL

from .anthropic_server import AnthropicServer
from .openai_server import OpenAIServer

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

    since: float = 0.0  # what this test made: rows and entries from this time on (a server a module's tests share)

    def fresh(self) -> Served:
        """This server, for a test that reads only what it makes."""
        return dataclasses.replace(self, since=time.time())

    def ledger(self, *, since: float | None = None) -> list[sa.Row[tuple[object, ...]]]:
        """The ledger rows made since `since` (by default the test's start), oldest first."""
        ledger = tables.ledger
        query = sa.select(ledger).where(ledger.c.at >= (self.since if since is None else since))
        with self.pod.engine.connect() as conn:
            return list(conn.execute(query.order_by(ledger.c.at)))

    def audit(self, actor: str | None = None) -> list[AuditEntry]:
        """The audit entries (of `actor`) made since the test's start, in order."""
        return [e.entry for e in self.pod.audit.entries(actor=actor) if e.entry.at >= self.since]


@contextmanager
def serving(pod: Podium, *, port: int = 0, **gatekeeper: float) -> Iterator[str]:
    """`podium serve`'s app over `pod`, on a free loopback port (or `port`), until the block ends."""
    app = create_app(pod, gatekeeper=Gatekeeper(pod, **gatekeeper) if gatekeeper else None)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
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


def remote_model(name: str, base_url: str, *, api: str = "openai", price: str = "", model: str = "") -> str:
    """podium.toml's `[models.<name>]` for an upstream in the intermediate tier (the test agent's), at `price` (an
    inline table; by default $1 in, $2 out per million tokens)."""
    price = price or "{ input_per_mtok = 1.0, output_per_mtok = 2.0 }"
    return (
        f'[models.{name}]\ntier = "intermediate"\nbase_url = "{base_url}"\napi = "{api}"\n'
        f'model = "{model or name + "-upstream"}"\nprice = {price}\n\n'
    )


@contextmanager
def served_with(settings: Settings, config: str) -> Iterator[Served]:
    """`served_pod` with `config` as its podium.toml (upstreams, aliases, prices)."""
    path = write_config(settings.home, config)
    with served_pod(settings.model_copy(update={"config": path})) as running:
        yield running


@dataclass(frozen=True)
class Upstreams:
    """Real provider-shaped servers on loopback: two OpenAI-shaped ones (the second for fallbacks), an Anthropic one."""

    openai: OpenAIServer
    second: OpenAIServer
    anthropic: AnthropicServer

    def reset(self) -> Upstreams:
        for server in (self.openai, self.second, self.anthropic):
            server.reset()
        return self


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def module_settings(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """Settings for an empty database of each kind, shared by a module's tests: a PostgreSQL database costs seconds
    of migrations, so a module's tests share one server and each reads what it made (`Served.fresh`)."""
    home = tmp_path_factory.mktemp("podium") / "podium"
    if request.param == "sqlite":
        yield Settings(home=home)
        return
    with temporary_postgres_database(POSTGRES_URL) as url:
        yield Settings(home=home, database_url=url)


@pytest.fixture(scope="module")
def module_upstreams() -> Iterator[Upstreams]:
    with OpenAIServer() as first, OpenAIServer() as second, AnthropicServer().running() as anthropic:
        yield Upstreams(first, second, anthropic)


@pytest.fixture
def upstreams(module_upstreams: Upstreams) -> Upstreams:
    """The module's upstream servers, with nothing scripted or recorded yet for this test."""
    return module_upstreams.reset()


@pytest.fixture
def openai_upstream(upstreams: Upstreams) -> OpenAIServer:
    return upstreams.openai


@pytest.fixture
def second_upstream(upstreams: Upstreams) -> OpenAIServer:
    return upstreams.second


@pytest.fixture
def anthropic_upstream(upstreams: Upstreams) -> AnthropicServer:
    return upstreams.anthropic
