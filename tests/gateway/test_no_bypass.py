"""No bypass: every gateway route with every kind of key either passes budget and policy (a ledger row, charged to
exactly the budgets that cover the call) or is refused and audited, and nothing reaches the upstream unrecorded.

    key                     a route that spends (chat, streamed or whole; embeddings; Anthropic's messages)
    person, agent           200: one ledger row; its cost added to key:, person: or agent:, team: and model: budgets
    admin                   403: Cedar's admin-keys-call-no-models, audited by the governor
    exhausted budget        429 (OpenAI insufficient_quota / Anthropic enforced_spend_limit_reached, not retried)
    killed person or key    403: the kill switch, audited by the governor
    revoked, expired, none,
    malformed, revoked agent's   401: counted in the gatekeeper's `auth.refused` entry, written at its flush
    person, unknown model   404: audited by the route as `gateway.request` (refused before the governor)

The reading routes (models, audit proofs) spend nothing: a key lists what it may call, and finds its own requests'
proofs only (another key's request is a 404, audited). With the database out of reach the gateway fails closed:
503 on every route, and nothing sent upstream.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from podium import Podium, Settings
from podium.api import create_app
from podium.audit import StoredEntry
from podium.store import tables
from podium.testing import key_for
from tests.conftest import POSTGRES_URL

from .conftest import serving
from .openai_server import OpenAIServer
from .remote_model import MODEL, write_project

TEAM = "support"
PERSON = "pat@example.com"
AGENT = "helpdesk-bot"
ADMIN = "admin@podium.test"


@dataclass(frozen=True)
class Route:
    name: str
    method: str
    path: str  # as the app declares it
    spends: bool  # it calls a model

    @property
    def anthropic(self) -> bool:
        return self.path == "/v1/messages"

    @property
    def streams(self) -> bool:
        return self.name.endswith("stream")


ROUTES = (
    Route("chat", "POST", "/v1/chat/completions", spends=True),
    Route("chat stream", "POST", "/v1/chat/completions", spends=True),
    Route("embeddings", "POST", "/v1/embeddings", spends=True),
    Route("messages", "POST", "/v1/messages", spends=True),
    Route("messages stream", "POST", "/v1/messages", spends=True),
    Route("models", "GET", "/v1/models", spends=False),
    Route("audit proof", "GET", "/v1/podium/audit/{request_id}", spends=False),
    Route("feedback", "POST", "/v1/podium/feedback", spends=False),  # on a podium/auto answer: the person's is not
)
PASSING = ("person", "agent")
GOVERNOR_REFUSES = {"admin": "denied", "exhausted": "over_budget", "killed person": "stopped", "killed key": "stopped"}
GATEKEEPER_REFUSES = ("revoked", "expired", "none", "malformed", "revoked agent")
UNKNOWN_MODEL = "person, unknown model"


@dataclass(frozen=True)
class Gate:
    """A served podium in front of an OpenAI-shaped upstream, with a key of every kind."""

    pod: Podium
    url: str
    upstream: OpenAIServer
    keys: dict[str, str | None]  # kind -> the key (None: send none)
    actors: dict[str, str]  # kind -> who the key proves, as the audit log names them
    scopes: dict[str, set[str]]  # kind -> the budgets its calls are charged to
    own_request: str  # a request the person made, whose proof only the person's key finds


def _wait_for_expiry(pod: Podium, key_id: str) -> None:
    deadline = time.monotonic() + 5
    while pod.keys.get(key_id).state() != "expired":
        assert time.monotonic() < deadline, "the key did not expire"
        time.sleep(0.01)


@contextmanager
def gate_on(settings: Settings, home: Path) -> Iterator[Gate]:
    """A podium over `settings`' database (not yet served: `served`), with keys of every kind and budgets on every
    scope the passing keys' calls count against (generous, so they pass, and show what each call is charged to)."""
    with OpenAIServer() as upstream:
        config, policies = write_project(home, upstream.base_url)
        settings = settings.model_copy(update={"config": config, "policies": policies})
        with Podium.connect(settings) as pod:
            admin_key = key_for(pod, ADMIN)
            admin = pod.authenticate(admin_key)
            person_key = key_for(pod, PERSON, teams=[TEAM])
            _, first = pod.agents.add(AGENT, owner="ops@example.com", team=TEAM, models=[MODEL], by=admin)
            agent_key = pod.agents.rotate_key(AGENT, by=admin).secret  # the first key is revoked
            revoked = key_for(pod, PERSON)
            pod.keys.revoke(pod.authenticate(revoked).key_id, by=admin)
            expired = pod.keys.issue(PERSON, by=admin, expires_days=1e-9)
            _wait_for_expiry(pod, expired.id)
            exhausted = key_for(pod, "bo@example.com", teams=[TEAM])
            pod.budgets.set(f"key:{pod.authenticate(exhausted).key_id}", 0, by=admin)
            killed_person = key_for(pod, "kim@example.com", teams=[TEAM])
            pod.kill("person:kim@example.com", by=admin, reason="no bypass test")
            killed_key = key_for(pod, "kay@example.com", teams=[TEAM])
            pod.kill(f"key:{pod.authenticate(killed_key).key_id}", by=admin, reason="no bypass test")
            keys: dict[str, str | None] = {
                "person": person_key,
                "agent": agent_key,
                "admin": admin_key,
                "exhausted": exhausted,
                "killed person": killed_person,
                "killed key": killed_key,
                "revoked": revoked,
                "expired": expired.key,
                "none": None,
                "malformed": "sk-not-a-podium-key",
                "revoked agent": first.secret,
            }
            actors = {kind: pod.authenticate(key).actor for kind, key in keys.items() if kind in GOVERNOR_REFUSES}
            actors |= {kind: pod.authenticate(keys[kind] or "").actor for kind in PASSING}
            scopes = {
                "person": {f"key:{pod.authenticate(person_key).key_id}", f"person:{PERSON}"},
                "agent": {f"key:{pod.authenticate(agent_key).key_id}", f"agent:{AGENT}"},
            }
            for kind in PASSING:
                scopes[kind] |= {f"team:{TEAM}", f"model:{MODEL}"}
                for scope in scopes[kind]:
                    pod.budgets.set(scope, 100, by=admin)
            yield Gate(pod, "", upstream, keys, actors, scopes, "")


@contextmanager
def served(gate: Gate) -> Iterator[Gate]:
    """`gate` served on loopback (refusals not rate-limited: the matrix sends many on purpose), with a request of
    the person's made, whose audit proof the matrix asks for with every key."""
    with serving(gate.pod, max_refusals=1000) as url:
        running = replace(gate, url=url)
        own = send(running, ROUTES[0], "person", "own-request")
        assert own.status_code == 200, own.text
        yield replace(running, own_request="own-request")


def send(gate: Gate, route: Route, kind: str, request_id: str) -> httpx.Response:
    """`route` as its API's own clients call it, with the key of `kind`, as request `request_id`."""
    key = gate.keys.get(kind, gate.keys["person"])
    headers = {"Idempotency-Key": request_id}
    if key is not None:
        headers |= {"x-api-key": key} if route.anthropic else {"Authorization": f"Bearer {key}"}
    model = "no-such-model" if kind == UNKNOWN_MODEL else MODEL
    messages = [{"role": "user", "content": f"Say hello ({request_id})."}]
    body: dict[str, Any] | None = None
    if route.name == "feedback":
        body = {"request_id": gate.own_request, "good": True}
    elif route.name == "embeddings":
        body = {"model": model, "input": ["hello"]}
    elif route.anthropic:
        body = {"model": model, "max_tokens": 64, "messages": messages, "stream": route.streams}
    elif route.spends:
        body = {"model": model, "max_tokens": 64, "messages": messages}
        body |= {"stream": True, "stream_options": {"include_usage": True}} if route.streams else {}
    path = route.path.replace("{request_id}", gate.own_request or request_id)
    return httpx.request(route.method, gate.url + path, json=body, headers=headers, timeout=30)


# -- what a request left behind ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Trace:
    """Everything a request can leave behind: budgets, ledger rows, audit entries, upstream calls."""

    spent: dict[str, int]
    reserved: int
    ledger: list[Any]
    audit_size: int
    upstream_calls: int


def trace(gate: Gate) -> Trace:
    budgets = gate.pod.budgets.list()
    with gate.pod.engine.connect() as conn:
        ledger = list(conn.execute(sa.select(tables.ledger).order_by(tables.ledger.c.call_key)))
    return Trace(
        {b.scope: b.spent_nano_usd for b in budgets},
        sum(b.reserved_nano_usd for b in budgets),
        ledger,
        gate.pod.audit.size(),
        len(gate.upstream.requests),
    )


def new_entries(gate: Gate, before: Trace) -> list[StoredEntry]:
    return list(gate.pod.audit.entries(after=before.audit_size))


def detail(entry: StoredEntry) -> dict[str, str]:
    loaded: dict[str, str] = json.loads(entry.entry.detail)
    return loaded


def error_code(route: Route, response: httpx.Response) -> str | None:
    error = response.json().get("error") or {}
    return str((error.get("details") or {}).get("error_code")) if route.anthropic else error.get("code")


def check(gate: Gate, route: Route, kind: str, request_id: str, response: httpx.Response, before: Trace) -> list[str]:
    """What is wrong with how the request went (nothing: it passed budget and policy, or was refused and
    audited, as its key's kind should be)."""
    after = trace(gate)
    entries = new_entries(gate, before)
    rows = [row for row in after.ledger if row not in before.ledger]
    charged = {scope: after.spent[scope] - before.spent.get(scope, 0) for scope in after.spent}
    charged = {scope: amount for scope, amount in charged.items() if amount}
    called = after.upstream_calls - before.upstream_calls
    status = response.status_code
    problems: list[str] = []

    def expect(condition: bool, what: str) -> None:
        if not condition:
            problems.append(what)

    expect(after.reserved == 0, f"{after.reserved} left reserved")
    if kind in PASSING and route.spends:
        expect(status == 200, f"status {status}: {response.text[:200]}")
        expect(len(rows) == 1 and called == 1, f"{len(rows)} ledger rows for {called} upstream calls")
        cost = int(rows[0].cost_nano_usd) if len(rows) == 1 else -1
        expect(cost > 0 and charged == dict.fromkeys(gate.scopes[kind], cost), f"cost {cost} charged as {charged}")
        expect(all(e.entry.actor == gate.actors[kind] for e in entries), "audited as someone else")
        expect([e.entry.decision for e in entries] == ["allowed"], f"audited {[e.entry.decision for e in entries]}")
        return problems
    expect(not rows and not charged and called == 0, f"spent: {len(rows)} rows, {charged}, {called} upstream calls")
    if kind in GATEKEEPER_REFUSES:
        expect(status == 401, f"status {status}")
        expect(not entries, "audited one by one (the gatekeeper counts bad keys in aggregate, at its flush)")
    elif not route.spends and status == 200:
        lists = route.name == "models"
        offered = [m["id"] for m in response.json()["data"]] if lists else []
        expect(lists or kind == "person", f"{kind} found the person's request {gate.own_request}")
        if lists:  # what the key may call: nothing, if a policy or a kill stops it
            expect((MODEL in offered) == (kind in ("person", "agent", "exhausted")), f"{kind} is offered {offered}")
    elif kind == UNKNOWN_MODEL or route.name in ("audit proof", "feedback"):
        expect(status == 404, f"status {status}")
        audited = [(e.entry.actor, e.entry.action, e.entry.decision) for e in entries]
        actor = gate.actors.get(kind, gate.actors["person"])
        expect(audited == [(actor, "gateway.request", "denied")], f"audited as {audited}")
    else:
        outcome = GOVERNOR_REFUSES[kind]
        expect(status == (429 if outcome == "over_budget" else 403), f"status {status}: {response.text[:200]}")
        audited = [(e.entry.actor, e.entry.decision, detail(e).get("stage")) for e in entries]
        stage = {"over_budget": "budgets", "denied": "authorisation", "stopped": "authorisation"}[outcome]
        expect(audited == [(gate.actors[kind], outcome, stage)], f"audited as {audited}")
        expect(all(request_id in e.entry.call_key for e in entries), "the audit entry does not name the request")
        if outcome == "over_budget":
            code = "enforced_spend_limit_reached" if route.anthropic else "insufficient_quota"
            expect(error_code(route, response) == code, f"error code {error_code(route, response)}")
            expect(response.headers.get("x-should-retry") == "false", "the client is not told not to retry")
    return problems


@pytest.fixture
def gate(settings: Settings, tmp_path: Path) -> Iterator[Gate]:
    with gate_on(settings, tmp_path) as prepared:
        yield prepared


def test_the_matrix_covers_every_gateway_route(gate: Gate) -> None:
    """Every route the app declares under the gateway's tag (its OpenAPI schema) is in the matrix."""
    paths = create_app(gate.pod).openapi()["paths"]
    declared = {
        (method.upper(), path)
        for path, item in paths.items()
        for method, op in item.items()
        if "gateway" in op.get("tags", ())
    }
    assert declared == {(route.method, route.path) for route in ROUTES}


def test_every_route_with_every_key_passes_budget_and_policy_or_is_refused_and_audited(gate: Gate) -> None:
    kinds = [*gate.keys, UNKNOWN_MODEL]
    problems: list[str] = []
    start = gate.pod.audit.size()
    with served(gate) as running:
        for route in ROUTES:
            for kind in kinds:
                if kind == UNKNOWN_MODEL and not route.spends:
                    continue
                request_id = f"{route.name}-{kind}".replace(" ", "-").replace(",", "")
                before = trace(running)
                response = send(running, route, kind, request_id)
                found = check(running, route, kind, request_id, response, before)
                problems += [f"{route.name} x {kind}: {problem}" for problem in found]
    assert problems == [], "\n".join(problems)
    # The gatekeeper's refusals are written in aggregate when the server stops (and once a window while it runs).
    counted = [detail(e) for e in gate.pod.audit.entries(after=start) if e.entry.action == "auth.refused"]
    assert sum(int(entry["count"]) for entry in counted) == len(GATEKEEPER_REFUSES) * len(ROUTES)
    reasons = " ".join(reason for entry in counted for reason in json.loads(entry["reasons"]))
    for why in ("revoked", "expired", "no key", "not a person's key"):
        assert why in reasons, reasons


def test_a_refused_request_sent_again_is_refused_and_audited_again(gate: Gate) -> None:
    """A client (or its SDK) sends a refused request again, under the same idempotency key, one after another and
    several at once: each is refused as the first was, and each is audited."""
    route = ROUTES[0]

    async def at_once(count: int) -> list[int]:
        async with httpx.AsyncClient(timeout=30) as client:
            body = {"model": MODEL, "max_tokens": 64, "messages": [{"role": "user", "content": "Say hello."}]}
            headers = {"Authorization": f"Bearer {gate.keys['exhausted']}", "Idempotency-Key": "sent-again"}
            sent = [client.post(gate.url + route.path, json=body, headers=headers) for _ in range(count)]
            return [response.status_code for response in await asyncio.gather(*sent)]

    with served(gate) as running:
        gate = running
        start = gate.pod.audit.size()
        statuses = [send(gate, route, "exhausted", "sent-again").status_code for _ in range(2)]
        statuses += asyncio.run(at_once(8))
    assert statuses == [429] * 10
    refused = [e.entry for e in gate.pod.audit.entries(after=start) if "sent-again" in e.entry.call_key]
    assert [e.decision for e in refused] == ["over_budget"] * 10
    assert len({e.call_key for e in refused}) == 10


# -- the database out of reach -------------------------------------------------------------------------------------


@contextmanager
def out_of_reach(database_url: str) -> Iterator[None]:
    """PostgreSQL refuses new connections to the database and ends those open to it (the served podium's pool's),
    until the block ends."""
    name = sa.make_url(database_url).database
    server = sa.create_engine(
        sa.make_url(POSTGRES_URL).set(drivername="postgresql+psycopg"), isolation_level="AUTOCOMMIT"
    )
    try:
        with server.connect() as conn:
            conn.execute(sa.text(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS false'))
            conn.execute(
                sa.text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :name"), {"name": name}
            )
        yield
    finally:
        with server.connect() as conn:
            conn.execute(sa.text(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS true'))
        server.dispose()


@pytest.mark.postgres
def test_with_its_database_out_of_reach_the_gateway_fails_closed(postgres_url: str, tmp_path: Path) -> None:
    """Nothing can be authorised, reserved or recorded: every route answers 503 (Retry-After, in its API's shape)
    and nothing is sent upstream; once the database is back, requests pass again."""
    settings = Settings(home=tmp_path / "podium", database_url=postgres_url)
    with gate_on(settings, tmp_path) as prepared, served(prepared) as gate:
        sent = len(gate.upstream.requests)
        answers: dict[str, tuple[int, str | None]] = {}
        with out_of_reach(postgres_url):
            for route in ROUTES:
                for kind in PASSING:
                    response = send(gate, route, kind, f"down-{route.name}-{kind}".replace(" ", "-"))
                    kind_of = response.json()["error"]["type"]
                    answers[f"{route.name} x {kind}"] = (response.status_code, response.headers.get("retry-after"))
                    assert kind_of == ("overloaded_error" if route.anthropic else "server_error"), response.text
            assert len(gate.upstream.requests) == sent
        assert set(answers.values()) == {(503, "5")}, answers
        for attempt in range(5):  # the pool finds its connections ended and opens new ones
            response = send(gate, ROUTES[0], "person", f"back-{attempt}")
            if response.status_code == 200:
                break
        assert response.status_code == 200, response.text
        assert len(gate.upstream.requests) == sent + 1
