"""Acceptance: shadow AI moves onto the gateway, end to end, on SQLite and PostgreSQL.

A Squid log shows pat using ChatGPT directly. `podium discover` finds it; `podium discover sanction chatgpt` makes
the alias, the policy and pat's key; pat's tool, the official openai SDK configured from nothing but pat's
instructions file, asks `podium serve` for the alias, which a real OpenAI-shaped server on loopback answers; and
the migration KPI for pat and ChatGPT moves from 0 to a share of the requests."""

from __future__ import annotations

import json
import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest
from typer.testing import CliRunner

from podium import Podium, Settings
from podium.cli import app
from podium.testing import TEST_ADMIN, key_for
from tests.gateway.conftest import serving
from tests.gateway.openai_server import OpenAIServer

PAT = "pat@example.com"
ADDRESS = "10.1.2.3"


@pytest.fixture
def upstream() -> Iterator[OpenAIServer]:
    with OpenAIServer() as server:
        yield server


@pytest.fixture
def home(settings: Settings, tmp_path: Path, upstream: OpenAIServer, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """A home with a frontier model behind `upstream`, an admin acting on the command line, and nothing else: the
    folder is the working directory, as for an operator (./policies is where the sanction's policy goes)."""
    monkeypatch.chdir(tmp_path)
    config = tmp_path / "podium.toml"
    price, url = "{ input_per_mtok = 1.0, output_per_mtok = 2.0 }", upstream.base_url
    models = [
        f'[models.{name}]\ntier = "{tier}"\nbase_url = "{url}"\nmodel = "{name}-upstream"\nprice = {price}\n'
        for name, tier in (("big", "frontier"), ("mid", "intermediate"))
    ]
    config.write_text("# our models\n" + "".join(models), encoding="utf-8")
    configured = settings.model_copy(update={"config": config})
    with Podium.connect(configured) as pod:
        monkeypatch.setenv("PODIUM_KEY", key_for(pod, TEST_ADMIN))
    monkeypatch.setenv("PODIUM_CONFIG", str(config))
    monkeypatch.setenv("PODIUM_HOME", str(configured.home))
    if configured.database_url:
        monkeypatch.setenv("PODIUM_DATABASE_URL", configured.database_url)
    return configured


def podium(*args: str) -> str:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, (args, result.output)
    return result.output


def gateway_share(tmp_path: Path, by: str, who: str) -> tuple[int, int, float]:
    out = tmp_path / f"kpi-{by}.json"
    podium("discover", "kpi", "--by", by, "--json", str(out))
    rows = [r for r in json.loads(out.read_text())["rows"] if r["service"] == "openai-chatgpt" and r["who"] == who]
    return sum(r["gateway"] for r in rows), sum(r["direct"] for r in rows), rows[-1]["gateway_share"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_a_person_seen_using_chatgpt_moves_onto_the_gateway(
    home: Settings, tmp_path: Path, upstream: OpenAIServer
) -> None:
    now = time.time()
    (tmp_path / "access.log").write_text(
        f"{now - 60:.3f}    812 {ADDRESS} TCP_TUNNEL/200 48213 CONNECT chatgpt.com:443 - HIER_DIRECT/104.18.32.47 -\n"
        f"{now - 30:.3f}    640 {ADDRESS} TCP_TUNNEL/200 9120 CONNECT chatgpt.com:443 - HIER_DIRECT/104.18.32.47 -\n",
        encoding="utf-8",
    )
    (tmp_path / "users.csv").write_text(f"address,person,department,valid_from,valid_to\n{ADDRESS},{PAT},sales,,\n")
    podium("discover", "access.log", "--users", "users.csv")

    url = f"http://127.0.0.1:{free_port()}"
    sanction = ("discover", "sanction", "openai-chatgpt", "--alias", "chatgpt", "--instructions", "keys")
    said = podium(*sanction, "--gateway-url", url)
    assert "openai-chatgpt is sanctioned" in said and PAT in said and "podp_" not in said  # the key: in the file
    again = podium(*sanction, "--gateway-url", url)
    assert "1 already held a live key from a sanction: kept, no second key issued." in again

    direct_before = gateway_share(tmp_path, "person", PAT)
    assert direct_before[0] == 0 and direct_before[1] > 0 and direct_before[2] == 0

    instructions = (tmp_path / "keys" / f"{PAT}.openai-chatgpt.txt").read_text()
    base_url = re.search(r"export OPENAI_BASE_URL=(\S+)", instructions).group(1)  # type: ignore[union-attr]
    key = re.search(r"export OPENAI_API_KEY=(\S+)", instructions).group(1)  # type: ignore[union-attr]
    with Podium.connect(home) as pod, serving(pod, port=int(url.rsplit(":", 1)[1])):  # restarted: reads both
        client = openai.OpenAI(base_url=base_url, api_key=key, max_retries=0)
        reply = client.chat.completions.create(
            model="chatgpt", messages=[{"role": "user", "content": "Draft a polite reminder."}], max_tokens=16
        )
        assert reply.choices[0].message.content == upstream.script.text
        assert upstream.chat_requests()[-1].body["model"] == "big-upstream"
        with pytest.raises(openai.PermissionDeniedError):  # the sanction opened the alias's models, not others
            client.chat.completions.create(model="mid", messages=[{"role": "user", "content": "Hi"}], max_tokens=4)

    gateway, direct, share = gateway_share(tmp_path, "person", PAT)
    assert (gateway, direct) == (1, direct_before[1]) and share == pytest.approx(gateway / (gateway + direct), abs=1e-4)
    assert gateway_share(tmp_path, "team", "sales")[2] > 0
