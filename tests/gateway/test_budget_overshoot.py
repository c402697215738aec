"""Zero budget overshoot: four `podium serve` processes on one PostgreSQL database, and 200 concurrent requests
with random `max_tokens` (whole, streamed, streams the client abandons, Anthropic's route, embeddings) against
one small budget; 20 seeded runs each for a key's, a team's and a person's budget.

After every run: spent <= the limit, nothing left reserved, the ledger's cost for the scope equals what the budget
says was spent, every call that reached the upstream has its ledger row, and every request that did not get an
answer was refused for the budget (429, not retried). The upstream reports the usage each request asked for (a
random share of its `max_tokens`), so costs vary and a reservation is settled for less than it held.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from podium import Podium, Settings
from podium.store import tables
from podium.testing import key_for, temporary_postgres_database
from tests.conftest import POSTGRES_URL

from .openai_server import OpenAIServer, Script
from .remote_model import MODEL, write_project

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

PROCESSES = 4
REQUESTS = 200
RUNS = 20
MAX_TOKENS = 1024  # requests ask for 1 to this many (at most about $0.01 each), a few for four times as many
ARRIVALS_S = 0.3  # requests arrive over this long, so reservations are taken while others settle
ADMIN = "admin@podium.test"


IMAGE_TOKENS = 1105  # what OpenAI bills for a 2048 x 4096 image in high detail (its documented example)


def usage_asked(body: dict[str, Any]) -> dict[str, Any]:
    """What the upstream says a request used: up to a token per 4 bytes of its messages, IMAGE_TOKENS an image
    (however short its URL), and a share of its max_tokens drawn from its text (the whole of it one time in four:
    the most a reservation has to cover)."""
    text = json.dumps(body.get("messages") or body.get("input"))
    rng = random.Random(text)
    if "input" in body:
        tokens = len(text) // 4 + 1
        return {"prompt_tokens": tokens, "total_tokens": tokens}
    cap = int(body.get("max_completion_tokens") or body.get("max_tokens") or 1)
    made = cap if rng.random() < 0.25 else rng.randint(0, cap)
    prompt = len(text) // 4 + 1 + IMAGE_TOKENS * text.count('"image_url"') // 2  # {"type": "image_url", "image_url":
    return {"prompt_tokens": prompt, "completion_tokens": made, "total_tokens": prompt + made}


@dataclass(frozen=True)
class Cluster:
    pod: Podium  # this test's own connection, for setting up and reading back
    urls: list[str]
    upstream: OpenAIServer
    admin_key: str
    logs: list[Path]  # what each process wrote

    def log_tails(self) -> str:
        return "\n".join(f"{log.name}: ...{log.read_text(errors='replace')[-2000:]}" for log in self.logs)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _serve(home: Path, env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    podium = Path(sys.executable).with_name("podium")
    log = (home / f"serve-{port}.log").open("wb")
    return subprocess.Popen(
        [str(podium), "serve", "--port", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT, cwd=home
    )


def _wait_until_serving(process: subprocess.Popen[bytes], url: str, log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"podium serve exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"podium serve did not answer on {url} within a minute:\n{log.read_text()[-3000:]}")


def _stop(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for process in processes:
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """Four `podium serve` processes on one new PostgreSQL database, in front of one upstream."""
    home = tmp_path_factory.mktemp("overshoot")
    with temporary_postgres_database(POSTGRES_URL) as database, OpenAIServer() as upstream:
        upstream.usage_of = usage_asked
        upstream.script = Script(delay_s=0.02, chunks=4, chunk_delay_s=0.005)
        config, policies = write_project(home, upstream.base_url)
        settings = Settings(home=home / ".podium", database_url=database, config=config, policies=policies)
        env = {name: value for name, value in os.environ.items() if not name.startswith("PODIUM_")}
        env |= {
            "PODIUM_HOME": str(settings.home),
            "PODIUM_DATABASE_URL": database,
            "PODIUM_CONFIG": str(config),
            "PODIUM_POLICIES": str(policies),
        }
        with Podium.connect(settings) as pod:
            admin_key = key_for(pod, ADMIN)  # migrates the database and makes the signing key before the servers
            ports = [_free_port() for _ in range(PROCESSES)]
            processes = [_serve(home, env, port) for port in ports]
            try:
                urls = [f"http://127.0.0.1:{port}" for port in ports]
                for process, url, port in zip(processes, urls, ports, strict=True):
                    _wait_until_serving(process, url, home / f"serve-{port}.log")
                yield Cluster(pod, urls, upstream, admin_key, [home / f"serve-{port}.log" for port in ports])
            finally:
                _stop(processes)


# -- one seeded run ----------------------------------------------------------------------------------------------

KINDS = ("chat", "chat", "chat_stream", "chat_stream", "chat_cut", "messages", "messages_stream", "embeddings")
LIMITS_USD = {"key": 0.015, "person": 0.03, "team": 0.07}  # each binds in turn: see `spenders`
SHARED_IDEMPOTENCY_KEYS = 3  # a fifth of the requests reuse one of these: a client's retries, sent at once
L = tables.ledger


@dataclass(frozen=True)
class Spenders:
    """Who spends in a run, fresh each run, so that each run starts on budgets nothing has touched.

    Person P holds keys K1 and K2; P and two others (one key each) are team T. A request is sent with any of the four
    keys alike, so K1's budget binds first, then P's (K2's requests), then T's (the others')."""

    keys: list[str]
    budgets: dict[str, sa.ColumnElement[bool]]  # each budget's scope -> the ledger rows it covers


def spenders(cluster: Cluster, seed: int) -> Spenders:
    pod, team, person = cluster.pod, f"crew-{seed}", f"pat-{seed}@example.com"
    first, second = key_for(pod, person, teams=[team]), key_for(pod, person)
    others = [key_for(pod, f"member-{seed}-{n}@example.com", teams=[team]) for n in range(2)]
    key_id = pod.authenticate(first).key_id
    budgets = {f"key:{key_id}": L.c.api_key == key_id, f"person:{person}": L.c.person == person}
    budgets[f"team:{team}"] = L.c.team == team
    admin = pod.authenticate(cluster.admin_key)
    for scope in budgets:
        pod.budgets.set(scope, LIMITS_USD[scope.partition(":")[0]], by=admin)
    return Spenders([first, second, *others], budgets)


@dataclass(frozen=True)
class Ask:
    kind: str
    url: str
    key: str
    max_tokens: int
    text: str
    idempotency_key: str | None
    after_s: float  # when it is sent, from the run's start


def plan(cluster: Cluster, keys: list[str], seed: int) -> list[Ask]:
    rng = random.Random(seed)
    return [
        Ask(
            rng.choice(KINDS),
            cluster.urls[n % PROCESSES],
            rng.choice(keys),
            4 * MAX_TOKENS if rng.random() < 0.05 else rng.randint(1, MAX_TOKENS),  # some never fit a key's budget
            f"run {seed} request {n}: " + "word " * rng.randint(1, 40),
            f"retried-{seed}-{rng.randrange(SHARED_IDEMPOTENCY_KEYS)}" if rng.random() < 0.2 else None,
            rng.uniform(0, ARRIVALS_S),
        )
        for n in range(REQUESTS)
    ]


async def send(client: httpx.AsyncClient, ask: Ask) -> str:
    """Make the request; return how it went: "ok", "cut" (a stream the client left), "budget <kind>" (refused for
    the budget of that kind, as the API's convention says), or what else happened."""
    await asyncio.sleep(ask.after_s)
    headers = {"Authorization": f"Bearer {ask.key}"}
    if ask.idempotency_key is not None:
        headers["Idempotency-Key"] = ask.idempotency_key
    messages = [{"role": "user", "content": ask.text}]
    if ask.kind == "embeddings":
        path, body = "/v1/embeddings", {"model": MODEL, "input": [ask.text]}
    elif ask.kind.startswith("messages"):
        path = "/v1/messages"
        body = {"model": MODEL, "max_tokens": ask.max_tokens, "messages": messages, "stream": ask.kind != "messages"}
    else:
        path, body = "/v1/chat/completions", {"model": MODEL, "max_tokens": ask.max_tokens, "messages": messages}
        if ask.kind != "chat":
            body |= {"stream": True, "stream_options": {"include_usage": True}}
    try:
        async with client.stream("POST", ask.url + path, json=body, headers=headers) as response:
            if response.status_code == 200 and ask.kind == "chat_cut":
                async for _ in response.aiter_bytes():
                    return "cut"  # leave after the first bytes: the rest is billed as the upstream produced it
            raw = await response.aread()
    except httpx.TransportError as exc:
        return f"{ask.kind} to {ask.url}: {exc!r}"
    if response.status_code == 200:
        return "ok" if b'"error"' not in raw else f"an error in the stream: {raw[-300:]!r}"
    error = json.loads(raw).get("error") or {}
    code = (error.get("details") or {}).get("error_code") if path == "/v1/messages" else error.get("code")
    expected = "enforced_spend_limit_reached" if path == "/v1/messages" else "insufficient_quota"
    scope = re.match(r"budget (\w+):", str(error.get("message")))
    if response.status_code == 429 and code == expected and response.headers.get("x-should-retry") == "false" and scope:
        return f"budget {scope[1]}"
    return f"{response.status_code} {raw[:300]!r}"


async def run_all(asks: list[Ask]) -> list[str]:
    limits = httpx.Limits(max_connections=REQUESTS, max_keepalive_connections=REQUESTS)
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:
        return await asyncio.gather(*(send(client, ask) for ask in asks))


def upstream_calls(upstream: OpenAIServer) -> int:
    return sum(1 for r in upstream.requests if r.path.endswith(("/chat/completions", "/embeddings")))


@dataclass(frozen=True)
class Spent:
    """One budget after a run, and what the ledger says of the calls it covers."""

    scope: str
    limit: int
    spent: int
    reserved: int
    ledger_cost: int
    ledger_rows: int

    @property
    def overshoot(self) -> int:
        return max(0, self.spent - self.limit)

    def problems(self) -> list[str]:
        found = [f"spent {self.spent} > limit {self.limit}"] if self.overshoot else []
        found += [f"{self.reserved} left reserved"] if self.reserved else []
        found += [f"the ledger says {self.ledger_cost}, not {self.spent}"] if self.ledger_cost != self.spent else []
        return [f"{self.scope}: {problem}" for problem in found]


@dataclass(frozen=True)
class Run:
    seed: int
    outcomes: Counter[str]
    budgets: list[Spent]
    upstream_calls: int

    def problems(self) -> list[str]:
        found = [problem for budget in self.budgets for problem in budget.problems()]
        team = self.budgets[-1]
        if team.ledger_rows != self.upstream_calls:  # the team's rows are every call of the run
            found.append(f"{self.upstream_calls} upstream calls but {team.ledger_rows} ledger rows")
        unexpected = {o: n for o, n in self.outcomes.items() if o not in ("ok", "cut") and not o.startswith("budget")}
        found += [f"unexpected outcomes {unexpected}"] if unexpected else []
        if not self.outcomes["ok"] or len(self.outcomes) < 2:
            found.append(f"the budgets were not contended: {dict(self.outcomes)}")
        return [f"seed {self.seed}: {problem}" for problem in found]


def settled(pod: Podium, scope: str, covered: sa.ColumnElement[bool]) -> Spent:
    """The budget once nothing is reserved against it (the streams clients left are recorded once their upstream
    response is closed, a moment after the client has gone), and its ledger rows."""
    budget, deadline = pod.budgets.get(scope), time.monotonic() + 30
    while budget.reserved_nano_usd and time.monotonic() < deadline:
        time.sleep(0.05)
        budget = pod.budgets.get(scope)
    with pod.engine.connect() as conn:
        query = sa.select(sa.func.count(), sa.func.coalesce(sa.func.sum(L.c.cost_nano_usd), 0)).where(covered)
        rows, cost = conn.execute(query).one()
    return Spent(scope, budget.limit_nano_usd, budget.spent_nano_usd, budget.reserved_nano_usd, int(cost), int(rows))


def seeded_run(cluster: Cluster, seed: int) -> Run:
    who = spenders(cluster, seed)
    before = upstream_calls(cluster.upstream)
    outcomes = Counter(asyncio.run(run_all(plan(cluster, who.keys, seed))))
    budgets = [settled(cluster.pod, scope, covered) for scope, covered in who.budgets.items()]
    return Run(seed, outcomes, budgets, upstream_calls(cluster.upstream) - before)


def test_concurrent_requests_on_four_processes_never_spend_past_a_key_person_or_team_budget(
    cluster: Cluster,
) -> None:
    started = time.monotonic()
    runs = [seeded_run(cluster, seed) for seed in range(RUNS)]
    elapsed = time.monotonic() - started
    outcomes = sum((run.outcomes for run in runs), Counter[str]())
    worst = {kind: max(b.overshoot for r in runs for b in r.budgets if b.scope.startswith(kind)) for kind in LIMITS_USD}
    print(  # the figures, for `pytest -s`
        f"\n{RUNS} runs x {REQUESTS} requests in {elapsed:.1f} s: {dict(outcomes)}; "
        f"largest overshoot (nano-USD): {worst}"
    )
    problems = [problem for run in runs for problem in run.problems()]
    assert problems == [], "\n".join([*problems, cluster.log_tails()])
    # Over the runs, each budget was the one that refused some requests.
    assert {f"budget {kind}" for kind in LIMITS_USD} <= set(outcomes), outcomes


def test_requests_with_images_by_url_never_spend_past_a_budget(cluster: Cluster) -> None:
    pod = cluster.pod
    key = key_for(pod, "pixel@example.com", teams=["pixels"])
    scope = f"key:{pod.authenticate(key).key_id}"
    pod.budgets.set(scope, 0.005, by=pod.authenticate(cluster.admin_key))
    image = {"type": "image_url", "image_url": {"url": "https://example.com/photo.png", "detail": "high"}}
    content = [{"type": "text", "text": "What is in it?"}, image]
    body = {"model": MODEL, "max_tokens": 1, "messages": [{"role": "user", "content": content}]}

    async def send_all() -> list[int]:
        async with httpx.AsyncClient(timeout=60) as client:
            sent = [
                client.post(f"{url}/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {key}"})
                for url in cluster.urls * 10
            ]
            return [response.status_code for response in await asyncio.gather(*sent)]

    assert set(asyncio.run(send_all())) <= {200, 429}
    budget = settled(pod, scope, L.c.api_key == scope.removeprefix("key:"))
    assert budget.problems() == []
