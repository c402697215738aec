"""Who may act: every acting CLI command and every HTTP route, tried with no key, a wrong key, a revoked key, an
expired key, another person's key and the right key. Only the right key acts; the others change nothing, and the
audit log records the action as the right key's person."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2
import pytest
import sqlalchemy as sa
import uvicorn
from typer.testing import CliRunner

import podium
from podium import Podium, Settings
from podium.api import LOOPBACK_NAMES, Gatekeeper, create_app
from podium.cli import app as cli_app
from podium.store import tables
from podium.testing import TEST_ADMIN, key_for, sign_in
from tests.review import _app
from tests.review.test_review import waiting

BAD = ("none", "wrong", "revoked", "expired", "other")
LEAD = _app.LEAD  # in every refund review's chain
NOBODY = "eve@example.com"  # in the directory, in no chain, not an admin
WRONG_KEY = "podp_000000000000_" + "x" * 43
CHANGING = [t for t in tables.metadata.sorted_tables if t.name not in ("podium_audit_log", "podium_audit_size")]


def keys(pod: Podium, person: str) -> dict[str, str | None]:
    """A key of each kind for `person`, and one of someone else's."""
    admin = sign_in(pod, TEST_ADMIN)
    revoked, expired = key_for(pod, person), key_for(pod, person)
    pod.keys.revoke(revoked.split("_")[1], by=admin)
    with pod.engine.begin() as conn:
        k = tables.person_keys
        conn.execute(k.update().where(k.c.id == expired.split("_")[1]).values(expires_at=time.time() - 1))
    return {
        "none": None,
        "wrong": WRONG_KEY,
        "revoked": revoked,
        "expired": expired,
        "other": key_for(pod, NOBODY),
        "right": key_for(pod, person),
    }


def snapshot(pod: Podium) -> dict[str, list[tuple[Any, ...]]]:
    """Every podium table but the audit log's (refusals are audited), and the runs DBOS holds: what a refused action
    must leave as it was."""
    with pod.engine.connect() as conn:
        tables_now = {t.name: sorted(map(tuple, conn.execute(sa.select(t))), key=repr) for t in CHANGING}
    return {**tables_now, "runs": sorted((r.id,) for r in pod.runs.list(limit=1000))}


def settled(pod: Podium, timeout: float = 60.0) -> dict[str, list[tuple[Any, ...]]]:
    """The snapshot once every run has finished or waits for a person (a decision resumes its run, which then
    writes for a while): what nothing but the next command may change."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        waiting_runs = {r.run_id for r in pod.reviews.list(status="open", limit=1000)}
        busy = [
            r.id for r in pod.runs.list(limit=1000) if r.status in ("PENDING", "ENQUEUED") and r.id not in waiting_runs
        ]
        if not busy:
            return snapshot(pod)
        time.sleep(0.1)
    raise AssertionError(f"runs still busy after {timeout} s")


def entries(pod: Podium, action: str) -> list[tuple[str, str]]:
    log = tables.audit_log
    with pod.engine.connect() as conn:
        query = sa.select(log.c.actor, log.c.decision).where(log.c.action == action).order_by(log.c.seq)
        return [(str(a), str(d)) for a, d in conn.execute(query)]


@pytest.fixture
def refunds(settings: Settings) -> Iterator[Podium]:
    """A launched podium with refund runs to decide; LEAD in the chain, NOBODY in the directory only."""
    with podium.launch(settings, _app.app) as pod:
        _app.tamper["extra_usd"] = 0.0
        sign_in(pod, LEAD, teams=["refunds"])
        sign_in(pod, NOBODY, teams=["sales"])
        yield pod


def pending(pod: Podium, n: int) -> list[str]:
    runs = [_app.refund_flow.start(f"c-{i}", 500.0 + i) for i in range(n)]
    return [waiting(pod, run.id).id for run in runs]


# -- the command line ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Command:
    args: tuple[str, ...]
    audited_as: str
    person: str = TEST_ADMIN
    refused: tuple[str, ...] = BAD  # the keys that may not act (another person's may, where anyone may)


def cli_commands(pod: Podium) -> list[Command]:
    """Every command that acts, in an order in which each one's right key has something to act on (the kill
    last: it cancels the agent's runs)."""
    a, b, c, d, e = pending(pod, 5)
    run = _app.refund_flow.start("c-run", 900.0)
    waiting(pod, run.id)
    log = pod.settings.home / "access.log"  # a proxy log for `podium discover`, which stores who used what
    log.write_text(f"1772442000.123 250 10.0.0.5 TCP_TUNNEL/200 5120 CONNECT chat.openai.com:443 {NOBODY} -\n")
    return [
        Command(("budgets", "set", "workflow:tests.refund", "5"), "budget.set"),
        Command(("agents", "add", "bot", "--owner", "ops@example.com"), "registry.add"),
        Command(("agents", "grant", "bot", "--tool", "log_note"), "registry.grant"),
        Command(("agents", "revoke", "bot", "--tool", "log_note"), "registry.revoke"),
        Command(("agents", "suspend", "bot"), "registry.suspend"),
        Command(("agents", "resume", "bot"), "registry.resume"),
        Command(("agents", "rotate-key", "bot"), "registry.rotate-key"),
        Command(("agents", "retire", "bot"), "registry.retire"),
        Command(("people", "add", "zoe@example.com", "--team", "refunds"), "people.change"),
        Command(("people", "remove", "zoe@example.com"), "people.remove"),
        Command(("keys", "issue", "--person", NOBODY), "keys.issue"),
        Command(("discover", str(log)), "discovery.scan"),
        Command(("review", "claim", a), "review.claim", LEAD),
        Command(("review", "approve", a, "--note", "ok"), "review.approve", LEAD),
        Command(("review", "reject", b), "review.reject", LEAD),
        Command(("review", "edit", c, "--set", "amount_usd=10"), "review.correct", LEAD),
        Command(("review", "reassign", d, "--to", "team:refunds"), "review.reassign", LEAD),
        Command(("review", "approve", e, "--minutes", "1"), "review.approve", LEAD),
        Command(("runs", "start", "tests.refund", '"c-cli"', "20"), "run.start", refused=BAD[:-1]),  # anyone's
        Command(("runs", "cancel", run.id), "run.cancel"),
        Command(("runs", "resume", run.id), "run.resume"),
        Command(("kill", "--agent", "refunder", "--note", "drill"), "governance.kill"),
        Command(("restore", "--agent", "refunder", "--note", "drill over"), "governance.restore"),
    ]


@pytest.mark.parametrize("settings", ["sqlite"], indirect=True)
def test_every_acting_command_acts_only_with_the_right_key(refunds: Podium, monkeypatch: pytest.MonkeyPatch) -> None:
    pod = refunds
    monkeypatch.delenv("PODIUM_KEY", raising=False)
    runner = CliRunner()
    home = ["--home", str(pod.settings.home)]
    if pod.settings.database_url:
        home += ["--database-url", pod.settings.database_url]
    by_person = {person: keys(pod, person) for person in (TEST_ADMIN, LEAD)}
    for command in cli_commands(pod):
        creds = by_person[command.person]
        before, audited = settled(pod), len(entries(pod, command.audited_as))
        for kind in command.refused:
            key = creds[kind]
            result = runner.invoke(cli_app, [*home, *(["--key", key] if key else []), *command.args])
            assert result.exit_code == 1, (command.args, kind, result.output)
            assert snapshot(pod) == before, f"{command.args} with {kind} key changed something"
            assert all(d == "denied" for _, d in entries(pod, command.audited_as)[audited:]), (command.args, kind)
        result = runner.invoke(cli_app, [*home, "--key", str(creds["right"]), *command.args])
        assert result.exit_code == 0, (command.args, result.output)
        assert snapshot(pod) != before, f"{command.args} with the right key changed nothing"
        assert entries(pod, command.audited_as)[-1][0] == f"person:{command.person}", command.args


def test_without_a_key_there_is_no_operator(sqlite_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PODIUM_KEY", raising=False)
    with Podium.connect(sqlite_settings) as pod:
        with pytest.raises(podium.Unauthenticated, match="no key"):
            pod.operator()
        with pytest.raises(podium.UsageError, match="is a name, not an identity"):
            pod.kill("all", by="admin@example.com")  # type: ignore[arg-type]


# -- HTTP ----------------------------------------------------------------------------------------------------


@contextmanager
def serving(pod: Podium, gate: Gatekeeper) -> Iterator[str]:
    """`podium serve`'s app on a real uvicorn server on loopback; yields its URL."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = uvicorn.Config(create_app(pod, gatekeeper=gate), host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture
def served(refunds: Podium) -> Iterator[tuple[Podium, str, Gatekeeper]]:
    """The HTTP API over the launched refunds podium's database."""
    with Podium.connect(refunds.settings) as api_side:
        gate = Gatekeeper(api_side, window_s=3600, max_refusals=10_000)
        with serving(api_side, gate) as url:
            yield refunds, url, gate


Route = tuple[str, Callable[[str], str], dict[str, Any] | None, str | None]  # method, path of a review id, body, audit


ROUTES: list[Route] = [
    ("GET", lambda _: "/v1/reviews", None, None),
    ("GET", lambda _: "/v1/reviews/stats", None, None),
    ("GET", lambda r: f"/v1/reviews/{r}", None, None),
    ("POST", lambda r: f"/v1/reviews/{r}/claim", {}, "review.claim"),
    ("POST", lambda r: f"/v1/reviews/{r}/approve", {"rationale": "ok"}, "review.approve"),
    ("POST", lambda r: f"/v1/reviews/{r}/reject", {}, "review.reject"),
    ("POST", lambda r: f"/v1/reviews/{r}/edit", {"changes": {"amount_usd": 10}}, "review.correct"),
    ("POST", lambda r: f"/v1/reviews/{r}/reassign", {"to": "team:refunds"}, "review.reassign"),
]


def test_every_route_acts_only_with_the_right_key(served: tuple[Podium, str, Gatekeeper]) -> None:
    pod, url, gate = served
    creds = keys(pod, LEAD)
    ids = pending(pod, len(ROUTES))
    with httpx2.Client(base_url=url, timeout=30) as client:
        for (method, path, body, audited_as), review_id in zip(ROUTES, ids, strict=True):
            before = settled(pod)
            for kind in BAD:
                headers = {"Authorization": f"Bearer {creds[kind]}"} if creds[kind] else {}
                answer = client.request(method, path(review_id), json=body, headers=headers)
                if kind == "other" and method == "GET":
                    assert answer.status_code == 200, "any person in the directory reads the queue"
                    continue
                assert answer.status_code == (403 if kind == "other" else 401), (path(review_id), kind, answer.text)
                assert "error" in answer.json()
                assert snapshot(pod) == before, f"{method} {path(review_id)} with {kind} key changed something"
            answer = client.request(
                method, path(review_id), json=body, headers={"Authorization": f"Bearer {creds['right']}"}
            )
            assert answer.status_code == 200, (path(review_id), answer.text)
            if audited_as:
                assert entries(pod, audited_as)[-1][0] == f"person:{LEAD}", path(review_id)
    assert gate.flush() == 4 * len(ROUTES)  # no key, wrong, revoked, expired: counted, and written as one entry
    assert entries(pod, "auth.refused") == [("anonymous", "denied")]


def test_an_agents_key_does_not_operate_podium(served: tuple[Podium, str, Gatekeeper]) -> None:
    pod, url, _ = served
    key = pod.agents.rotate_key("refunder", by=sign_in(pod, TEST_ADMIN)).secret
    with httpx2.Client(base_url=url, timeout=30) as client:
        answer = client.get("/v1/reviews", headers={"Authorization": f"Bearer {key}"})
    assert answer.status_code == 403 and "agent" in answer.json()["error"]["message"]


def test_a_foreign_host_header_is_refused(served: tuple[Podium, str, Gatekeeper]) -> None:
    pod, url, _ = served
    key = key_for(pod, LEAD)
    with httpx2.Client(base_url=url, timeout=30) as client:
        rebound = client.get("/v1/reviews", headers={"Authorization": f"Bearer {key}", "Host": "evil.example"})
        assert rebound.status_code == 421 and "allow-host" in rebound.json()["error"]["message"]
        for name in LOOPBACK_NAMES:
            host = f"[{name}]" if ":" in name else name
            ok = client.get("/v1/reviews", headers={"Authorization": f"Bearer {key}", "Host": f"{host}:8000"})
            assert ok.status_code == 200, name


def test_a_flood_of_bad_keys_is_slowed_and_audited_in_aggregate(sqlite_settings: Settings) -> None:
    with Podium.connect(sqlite_settings) as pod:
        right = {"Authorization": f"Bearer {key_for(pod, LEAD)}"}
        gate = Gatekeeper(pod, window_s=3600, max_refusals=50)
        with serving(pod, gate) as url, httpx2.Client(base_url=url, timeout=30) as client:
            answers = [client.get("/v1/reviews", headers={"Authorization": f"Bearer bad-{n}"}) for n in range(1000)]
            # The same address, as every local user and every web page the operator opens share one:
            assert client.get("/v1/reviews", headers=right).status_code == 200, "a valid key is never limited"
            assert client.get("/v1/reviews").status_code == 429
        codes = [a.status_code for a in answers]
        assert codes[:50] == [401] * 50 and set(codes[50:]) == {429}
        assert int(answers[-1].headers["Retry-After"]) > 0
        log = tables.audit_log  # the server wrote what it counted as it shut down
        with pod.engine.connect() as conn:
            rows = conn.execute(sa.select(log.c.detail).where(log.c.action == "auth.refused")).all()
        assert len(rows) == 1, "one entry, not 1,001"
        assert json.loads(rows[0].detail)["count"] == "1001", "every refusal is counted, the rate-limited too"


def test_serve_does_not_take_a_forwarded_address_as_the_client(tmp_path: Path) -> None:
    """Else each refused request could claim a new address in X-Forwarded-For and never be limited."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-c", "from podium.cli import main; main()", "--home", str(tmp_path), "serve"]
    log = tmp_path / "serve.log"
    with log.open("w") as out:
        server = subprocess.Popen([*command, "--port", str(port)], stdout=out, stderr=out)
    try:
        with httpx2.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            deadline = time.monotonic() + 60
            while True:
                try:
                    client.get("/health")
                    break
                except httpx2.TransportError:
                    assert time.monotonic() < deadline and server.poll() is None, log.read_text()
                    time.sleep(0.1)
            claims = [{"X-Forwarded-For": f"203.0.113.{n}"} for n in range(25)]
            codes = [client.get("/v1/reviews", headers=claim).status_code for claim in claims]
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert codes == [401] * 20 + [429] * 5
