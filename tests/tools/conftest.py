"""Real servers on loopback for the tools' tests: an MCP server (the `mcp` SDK) in its own process."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class RunningServer:
    url: str
    sent_file: Path
    process: subprocess.Popen[bytes]

    def sent(self) -> list[str]:
        return self.sent_file.read_text().splitlines() if self.sent_file.exists() else []


def start_mcp_server(folder: Path) -> RunningServer:
    port = free_port()
    sent = folder / "sent.jsonl"
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.tools._mcp_server", str(port), str(sent)],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return RunningServer(f"http://127.0.0.1:{port}/mcp", sent, process)
        except OSError:
            if process.poll() is not None:
                raise RuntimeError(f"the test MCP server exited with {process.returncode}") from None
            time.sleep(0.05)
    process.kill()
    raise RuntimeError("the test MCP server did not listen within 30 s")


@pytest.fixture(scope="module")
def mcp_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    server = start_mcp_server(tmp_path_factory.mktemp("mcp"))
    yield server
    server.process.kill()
    server.process.wait()
