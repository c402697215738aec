"""Every Python block of docs/gateway.md runs as written against a real `podium serve`, as a person would run it.

The page's clients (the `openai` and `anthropic` SDKs, LangChain, pydantic-ai) each run in a process of their own,
with the key in the variables the page exports (`OPENAI_API_KEY`, `ANTHROPIC_API_KEY`) and the page's port 8000
made the server's. A block passes when it exits 0 having been answered: the ledger has rows it did not have before.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
import sqlalchemy as sa

from podium import Podium, Settings
from podium.store import tables
from podium.testing import key_for
from tests.docs._pages import Block, blocks
from tests.gateway.conftest import serving

PAGE = "docs/gateway.md"
SHOWN = [b for b in blocks(PAGE) if b.language == "python"]


def _ledger_rows(pod: Podium) -> int:
    with pod.engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(tables.ledger)).scalar_one())


def _environment(key: str) -> dict[str, str]:
    """Without podium's settings or a base URL of the reader's own: the block's own lines must point at podium."""
    kept = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PODIUM_", "OPENAI_", "ANTHROPIC_")) and k.lower() not in ("http_proxy", "https_proxy")
    }
    return {**kept, "OPENAI_API_KEY": key, "ANTHROPIC_API_KEY": key, "NO_PROXY": "127.0.0.1"}


def test_the_page_shows_each_client() -> None:
    shown = "".join(b.text for b in SHOWN)
    for client in ("from openai import OpenAI", "import anthropic", "ChatOpenAI", "OpenAIChatModel", "stream=True"):
        assert client in shown, f"{PAGE} no longer shows {client}"


@pytest.mark.slow
def test_the_python_blocks_run_against_podium_serve(sqlite_settings: Settings) -> None:
    with Podium.connect(sqlite_settings) as pod:
        key = key_for(pod, "ana@example.com", teams=["support"])
        with serving(pod) as url:
            port = url.rsplit(":", 1)[1]
            for block in SHOWN:
                _run(block, port, key, pod)


def _run(block: Block, port: str, key: str, pod: Podium) -> None:
    code = re.sub(r"(?<=[ :])8000\b", port, block.text)
    before = _ledger_rows(pod)
    done = subprocess.run(
        [sys.executable, "-c", code],
        env=_environment(key),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    where = f"{PAGE}:{block.line}"
    assert done.returncode == 0, f"{where} failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}"
    assert done.stdout.strip(), f"{where} printed nothing"
    assert _ledger_rows(pod) > before, f"{where} ran, but podium recorded no call"
