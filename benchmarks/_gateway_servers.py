"""The servers the gateway benchmark measures, each in a process of its own: the stub upstream, the LiteLLM proxy
and `podium serve` (on SQLite or PostgreSQL), each started, probed until it answers, and stopped.

LiteLLM lives in a virtualenv of its own (never podium's), made on first use under ~/.cache/podium, and starts
offline (LITELLM_LOCAL_MODEL_COST_MAP=True, or it downloads its price list). It keeps virtual keys only in a
database reached through Prisma, which its `proxy` extra does not install and which fetches engine binaries from
the network; so it runs with its master key and no database: no per-key budget, spend log or rate limit.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

LITELLM_VERSION = "1.108.7"  # the newest 1.108 whose proxy extra resolves offline; 1.108.8+ pin missing wheels
LITELLM_VENV = Path.home() / ".cache" / "podium" / f"litellm-{LITELLM_VERSION}"
LITELLM_MASTER_KEY = "sk-bench-master"  # loopback only, for one run
STUB_MODEL = "stub-model"
BENCH_ADMIN = "bench-admin@example.com"
BENCH_PERSON = "bench-user@example.com"
BENCH_TEAM = "bench"
BENCH_AGENT = "bench-agent"
BUDGET_USD = 1_000_000.0  # generous: reserve and settle run on every request, nothing is ever refused
START_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class Running:
    """A server that answers: where, and with which key and model name a client reaches the stub through it."""

    name: str
    port: int
    key: str
    model: str
    pid: int
    budgets: tuple[str, ...] = ()  # the budget scopes every request reserves against and settles


class ServerFailed(Exception):
    """A server did not start, or stopped; the message ends with the tail of its log."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _tail(log: Path, lines: int = 15) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


@contextmanager
def _process(command: Sequence[str], log: Path, *, env: dict[str, str], cwd: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A child in a session of its own (so stopping it stops what it started), stopped on the way out."""
    with log.open("wb") as out:
        child = subprocess.Popen(
            list(command), stdout=out, stderr=subprocess.STDOUT, env=env, cwd=cwd, start_new_session=True
        )
    try:
        yield child
    finally:
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGTERM)
            try:
                child.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(child.pid, signal.SIGKILL)
                child.wait()


def _wait_listening(child: subprocess.Popen[bytes], port: int, log: Path, what: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if child.poll() is not None:
            raise ServerFailed(f"{what} exited with {child.returncode}:\n{_tail(log)}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)
    raise ServerFailed(f"{what} did not listen on port {port} within {START_TIMEOUT_S:.0f} s:\n{_tail(log)}")


@contextmanager
def stub(folder: Path) -> Iterator[Running]:
    port = free_port()
    log = folder / "stub.log"
    command = [sys.executable, "-m", "benchmarks._gateway_stub", "--port", str(port)]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent.parent)}
    with _process(command, log, env=env, cwd=folder) as child:
        _wait_listening(child, port, log, "the stub upstream")
        yield Running("direct", port, "sk-stub", STUB_MODEL, child.pid)


def litellm_command() -> Path:
    """The `litellm` script of the benchmark's own LiteLLM virtualenv, made on first use (~90 s, ~760 MB)."""
    script = LITELLM_VENV / "bin" / "litellm"
    if script.exists():
        return script
    print(f"Installing litellm[proxy]=={LITELLM_VERSION} into {LITELLM_VENV} (once; ~90 s, ~760 MB)…", flush=True)
    base = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base, "-m", "venv", str(LITELLM_VENV)], check=True)
    pip = [str(LITELLM_VENV / "bin" / "python"), "-m", "pip", "--disable-pip-version-check", "install", "--quiet"]
    subprocess.run([*pip, f"litellm[proxy]=={LITELLM_VERSION}"], check=True)
    return script


@contextmanager
def litellm(folder: Path, upstream: Running) -> Iterator[Running]:
    """The LiteLLM proxy, one uvicorn worker (as podium serve has), the stub as its only model, `stub`."""
    port = free_port()
    config = folder / "litellm.yaml"
    config.write_text(
        "\n".join(
            [
                "model_list:",
                "  - model_name: stub",
                "    litellm_params:",
                f"      model: openai/{STUB_MODEL}",
                f"      api_base: http://127.0.0.1:{upstream.port}/v1",
                f"      api_key: {upstream.key}",
                "general_settings:",
                f"  master_key: {LITELLM_MASTER_KEY}",
                "",
            ]
        )
    )
    env = {key: value for key, value in os.environ.items() if not key.startswith(("DATABASE_URL", "LITELLM", "PODIUM"))}
    env.update(LITELLM_LOCAL_MODEL_COST_MAP="True", LITELLM_LOG="ERROR", NO_DOCS="True")
    command = [
        str(litellm_command()),
        *("--config", str(config), "--host", "127.0.0.1", "--port", str(port), "--num_workers", "1"),
    ]
    log = folder / "litellm.log"
    with _process(command, log, env=env, cwd=folder) as child:
        _wait_listening(child, port, log, f"LiteLLM {LITELLM_VERSION}")
        yield Running("litellm", port, LITELLM_MASTER_KEY, "stub", child.pid)


def podium_command() -> str:
    beside = Path(sys.executable).with_name("podium")
    if not beside.exists():
        raise ServerFailed("no `podium` command beside this Python: run `make install-test` first.")
    return str(beside)


def _podium(arguments: Sequence[str], env: dict[str, str], cwd: Path) -> str:
    done = subprocess.run([podium_command(), *arguments], env=env, cwd=cwd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise ServerFailed(f"podium {' '.join(arguments[:2])} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return done.stdout


def podium_toml(upstream: Running) -> str:
    """The stub as podium's `stub` model, priced (so every request reserves and settles a real amount)."""
    return "\n".join(
        [
            "[models.stub]",
            'tier = "intermediate"',
            f'base_url = "http://127.0.0.1:{upstream.port}/v1"',
            f'model = "{STUB_MODEL}"',
            "price = { input_per_mtok = 1.0, output_per_mtok = 2.0 }",
            "timeout_s = 30",
            "",
            "[gateway.aliases]",
            'bench = ["stub"]',
            "",
        ]
    )


def _agent_key(env: dict[str, str], work: Path) -> tuple[str, list[str]]:
    """A registered agent's key, the agent allowed the stub, with budgets on the agent, its team and the key."""
    added = _podium(
        [
            *("agents", "add", BENCH_AGENT, "--owner", BENCH_PERSON, "--team", BENCH_TEAM, "--model", "stub"),
            *("--budget-usd", str(BUDGET_USD)),
        ],
        env,
        work,
    )
    lines = [line for line in added.splitlines() if "API key" in line]
    if not lines:
        raise ServerFailed(f"podium agents add printed no API key:\n{added[-2000:]}")
    key = lines[-1].split()[-1]
    key_scope = f"key:{key.split('_')[1]}"
    for scope in (f"team:{BENCH_TEAM}", key_scope):
        _podium(["budgets", "set", scope, str(BUDGET_USD)], env, work)
    return key, [f"agent:{BENCH_AGENT}", f"team:{BENCH_TEAM}", key_scope]


def _person_key(env: dict[str, str], work: Path) -> tuple[str, list[str]]:
    """A non-admin person's key, with a budget on their team (and on them and the key, where this checkout has
    such budgets)."""
    issued = json.loads(_podium(["keys", "issue", "--person", BENCH_PERSON, "--json"], env, work))
    budgets = [f"team:{BENCH_TEAM}"]
    _podium(["budgets", "set", budgets[0], str(BUDGET_USD)], env, work)
    for scope in (f"person:{BENCH_PERSON}", f"key:{issued['id']}"):
        try:
            _podium(["budgets", "set", scope, str(BUDGET_USD)], env, work)
            budgets.append(scope)
        except ServerFailed:
            pass
    return str(issued["key"]), budgets


@contextmanager
def podium_serve(
    folder: Path, upstream: Running, *, database: str, database_url: str | None, key_of: str = "agent"
) -> Iterator[Running]:
    """`podium serve` on a new home: an admin from `podium init`, a person in the team `bench`, and a key that is
    not an admin's (admins' keys are refused at model endpoints): the agent's that person owns (`key_of="agent"`)
    or the person's own; generous budgets on it; the stub behind the alias `bench`."""
    home = folder / f"home-{database}"
    work = folder / f"work-{database}"  # no podium.toml or policies/ of the checkout's leak in
    work.mkdir()
    config = work / "podium.toml"
    config.write_text(podium_toml(upstream))
    env = {key: value for key, value in os.environ.items() if not key.startswith("PODIUM_")}
    env.update(PODIUM_HOME=str(home), PODIUM_CONFIG=str(config), COLUMNS="200")
    if database_url is not None:
        env["PODIUM_DATABASE_URL"] = database_url
    _podium(["init", "--admin", BENCH_ADMIN, "--json"], env, work)
    _podium(["people", "add", BENCH_PERSON, "--team", BENCH_TEAM], env, work)
    key, budgets = _agent_key(env, work) if key_of == "agent" else _person_key(env, work)
    port = free_port()
    log = folder / f"podium-{database}.log"
    command = [podium_command(), "serve", "--host", "127.0.0.1", "--port", str(port)]
    with _process(command, log, env=env, cwd=work) as child:
        _wait_listening(child, port, log, f"podium serve ({database})")
        yield Running(f"podium ({database})", port, key, "bench", child.pid, tuple(budgets))
