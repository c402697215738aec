"""Bad input never breaks or lies: every CLI command and every HTTP route, given out-of-range, wrong-typed,
oversized and malformed values, answers one line naming the fix (exit 2, or a 4xx) and leaves the database as it
was, byte for byte, table by table.

One home per database kind holds what the commands act on: a real pending review of a real run, an agent, a
person, a budget, a trained classifier's labels. It is made once (launching the refund workflows) and then only
read by `podium.connect`ed processes, the way the CLI and `podium serve` use it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2
import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

import podium
from podium import Podium, Settings
from podium.api import Gatekeeper
from podium.cli import app
from podium.testing import key_for, temporary_postgres_database
from tests.conftest import POSTGRES_URL
from tests.review import _app
from tests.review.test_review import waiting
from tests.test_auth_matrix import serving

runner = CliRunner()
ACTOR = _app.LEAD  # in the refund review's chain, and an admin here: whoever could act, were the input right


def acting_key(pod: Podium) -> str:
    """The key every command and request acts with (the one place to change who acts)."""
    return key_for(pod, ACTOR, teams=["refunds", "admins"])


@dataclass(frozen=True)
class Home:
    settings: Settings
    key: str
    review: str  # a pending review request, of a run waiting for it
    run: str
    folder: Path  # a folder, where a file is expected
    dump: Dump


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def home(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Home]:
    folder = tmp_path_factory.mktemp("bad-input")
    with temporary_postgres_database(POSTGRES_URL) if request.param == "postgres" else _no_server() as url:
        settings = Settings(home=folder / "home", database_url=url)
        with podium.launch(settings, _app.app) as pod:
            key = acting_key(pod)
            run = _app.refund_flow.start("c-1", 640.0)
            review = waiting(pod, run.id)
            pod.trained.train_classifier(_app.INTENT_MODEL, ["refund me", "where is it"], ["refund", "delivery"])
            pod.people.add("bob@example.com", teams=["refunds"], by=pod.authenticate(key))
        (folder / "a-folder").mkdir()
        dump = Dump(settings)
        yield Home(settings, key, review.id, run.id, folder / "a-folder", dump)
        dump.engine.dispose()


class _no_server:  # noqa: N801 - a context manager standing in for a PostgreSQL database: SQLite needs none
    def __enter__(self) -> None:
        return None

    def __exit__(self, *_: object) -> None:
        return None


class Dump:
    """Every row of every table in the database (podium's and DBOS's), in a stable order; the tables are read
    once, their rows at each call."""

    def __init__(self, settings: Settings) -> None:
        url = sa.make_url(settings.resolved_database_url)
        self.engine = sa.create_engine(
            url.set(drivername="postgresql+psycopg") if url.drivername == "postgresql" else url
        )
        schemas = [None] + (["dbos"] if self.engine.dialect.name == "postgresql" else [])
        metadata = sa.MetaData()
        for schema in schemas:
            metadata.reflect(self.engine, schema=schema)
        self.tables = list(metadata.sorted_tables)

    def __call__(self) -> dict[str, list[str]]:
        with self.engine.connect() as conn:
            return {t.fullname: sorted(repr(tuple(row)) for row in conn.execute(sa.select(t))) for t in self.tables}


# -- the command line ----------------------------------------------------------------------------------------

REVIEW, RUN, FOLDER = "{review}", "{run}", "{folder}"
WHERE = re.compile(r"^home .*, database .*$")  # the line a command starts with, naming the home it reads
HUGE = "x" * 100_000
BIG_JSON = json.dumps("x" * 100_000)

CLI_CASES: list[tuple[tuple[str, ...], str]] = [
    # runs
    (("runs", "list", "--limit", "100000000000000000000"), "--limit"),
    (("runs", "list", "--limit", "abc"), "--limit"),
    (("runs", "list", "--status", "bogus"), "--status"),
    (("runs", "list", "--workflow", HUGE), "--workflow"),
    (("runs", "show", "no-such-run"), "`podium runs list` shows run ids"),
    (("runs", "show", "\udcff"), "lone surrogate"),
    (("runs", "show", HUGE), "characters long"),
    (("runs", "start", "tests.refund", "5"), "argument 1 (customer): expected string, got int 5"),
    (("runs", "start", "tests.refund", '{"id": 1}'), "expected string, got dict"),
    (("runs", "start", "tests.refund"), "missing customer, amount_usd"),
    (("runs", "start", "tests.refund", '"c"', BIG_JSON), "give at most"),
    (("runs", "start", "tests.refund", '"c"', "NaN"), "finite number"),
    (("runs", "start", "tests.refund", "not json"), "is not a JSON value"),
    (("runs", "start", "no.such.workflow"), "no workflow named"),
    (("runs", "start", "tests.refund", '"c"', "1", "--run-id", HUGE), "--run-id"),
    (("runs", "cancel", "no-such-run"), "`podium runs list` shows run ids"),
    (("runs", "resume", "\udcff"), "lone surrogate"),
    # review
    (("review", "list", "--limit", "0"), "--limit"),
    (("review", "list", "--limit", "100000000000000000000"), "--limit"),
    (("review", "list", "--min-value", "nan"), "--min-value"),
    (("review", "list", "--min-value", "1e400"), "--min-value"),
    (("review", "list", "--older-than", "5 fortnights"), "duration"),
    (("review", "list", "--older-than", "99999999999999999999d"), "--older-than"),
    (("review", "list", "--status", "bogus"), "--status"),
    (("review", "list", "--reason", HUGE), "--reason"),
    (("review", "show", "no-such-review"), "no review request"),
    (("review", "show", HUGE), "characters long"),
    (("review", "stats", "--since", "99999999999999999999d"), "since"),
    (("review", "stats", "--since", "yesterday"), "duration"),
    (("review", "approve", REVIEW, "--minutes", "1e20"), "give a number from 0 to 1440"),
    (("review", "approve", REVIEW, "--minutes", "150000000"), "give a number from 0 to 1440"),
    (("review", "approve", REVIEW, "--minutes", "nan"), "minutes"),
    (("review", "approve", REVIEW, "--minutes", "inf"), "minutes"),
    (("review", "approve", REVIEW, "--minutes", "-1"), "minutes"),
    (("review", "approve", REVIEW, "--minutes", "ten"), "--minutes"),
    (("review", "approve", REVIEW, "--label", "banana"), "is not one of the 2 labels of intent-model"),
    (("review", "approve", REVIEW, "--digest", "abc"), "at least 8 characters"),
    (("review", "approve", REVIEW, "--note", HUGE), "the note is 100,000 characters long"),
    (("review", "approve", REVIEW, "--note", "\udcff"), "lone surrogate"),
    (("review", "approve", REVIEW, "no-such-review"), "--yes"),
    (("review", "reject", REVIEW, "no-such-review"), "--yes"),
    (("review", "reject", REVIEW, "--minutes", "1e20"), "give a number from 0 to 1440"),
    (("review", "approve"), "name the requests to decide"),
    (("review", "edit", REVIEW, "--set", "amount_usd=NaN"), "finite number"),
    (("review", "edit", REVIEW, "--set", "amount_usd=1e400"), "finite number"),
    (("review", "edit", REVIEW, "--set", "amount_usd=lots"), "amount_usd: expected number"),
    (("review", "edit", REVIEW, "--set", "nonsense"), "name=value"),
    (("review", "edit", REVIEW, "--set", f"note={HUGE}"), "give at most"),
    (("review", "reassign", REVIEW, "--to", HUGE), "--to"),
    (("review", "reassign", REVIEW, "--to", "nobody@example.com"), "nobody by that name is in the directory"),
    (("review", "reassign", REVIEW, "--to", "team:nobody"), "no one in the directory is in that team"),
    (("review", "claim", "no-such-review"), "no review request"),
    # people
    (("people", "add", "zoe@example.com", "--rate", "nan"), "--rate"),
    (("people", "add", "zoe@example.com", "--rate", "1e308"), "--rate"),
    (("people", "add", "zoe@example.com", "--display-name", HUGE), "characters long"),
    (("people", "add", "zo\x01e@example.com"), "control character"),
    (("people", "remove", "\udcff"), "lone surrogate"),
    # budgets
    (("budgets", "set", "agent:refunder", "nan"), "give a number from 0 to 1e+09"),
    (("budgets", "set", "agent:refunder", "1e300"), "give a number from 0 to 1e+09"),
    (("budgets", "set", "agent:refunder", "--", "-5"), "give a number from 0 to 1e+09"),
    (("budgets", "set", "agent:refunder", "five"), "LIMIT_USD"),
    (("budgets", "set", "agent:nobody", "5"), "no agent 'nobody' to budget"),
    (("budgets", "set", "workflow:no.such.workflow", "5"), "no workflow 'no.such.workflow' to budget"),
    (("budgets", "set", "team:nobody", "5"), "no team 'nobody' to budget"),
    (("budgets", "set", "key:nope", "5"), "no key 'nope' to budget"),
    (("budgets", "set", "banana", "5"), "is not kind:name"),
    (("budgets", "set", "agent:refunder", "5", "--on-exhausted", "explode"), "'explode' is not one of 'stop'"),
    # agents
    (("agents", "add", "x3", "--owner", "o@example.com", "--budget-usd", "-5"), "give a number from 0"),
    (("agents", "add", "x3", "--owner", "o@example.com", "--budget-usd", "nan"), "give a number from 0"),
    (("agents", "add", "Not A Name", "--owner", "o@example.com"), "is not valid"),
    (("agents", "add", "x3", "--owner", "o@example.com", "--purpose", HUGE), "characters long"),
    (("agents", "add", "x3", "--owner", "o@example.com", "--tier-ceiling", "galactic"), "'galactic' is not one of"),
    (("agents", "show", "nobody"), "no agent named 'nobody'"),
    (("agents", "grant", "nobody", "--tool", "refund"), "no agent named 'nobody'"),
    (("agents", "suspend", "nobody"), "no agent named 'nobody'"),
    (("agents", "rotate-key", "nobody"), "no agent named 'nobody'"),
    # kill switch
    (("kill",), "--agent"),
    (("kill", "--agent", "nobody"), "no agent named 'nobody'"),
    (("kill", "--agent", "refunder", "--note", HUGE), "characters long"),
    (("restore", "--team", "\udcff"), "lone surrogate"),
    # audit, policy, governance
    (("audit", "list", "--limit", "100000000000000000000"), "--limit"),
    (("audit", "list", "--limit", "-5"), "--limit"),
    (("audit", "prove", "100000000000000000000"), "entry"),
    (("audit", "prove", "--", "-1"), "entry"),
    (("audit", "consistency", "100000000000000000000"), "old"),
    (("audit", "export", "/proc/podium-export"), "/proc/podium-export"),
    (("audit", "export", "/proc"), "/proc"),
    (("audit", "verify", "/no/such/export"), "/no/such/export"),
    (("policy", "explain", "100000000000000000000"), "entry"),
    (("policy", "explain", "--", "-1"), "entry"),
    (("policy", "test", "/no/such/folder"), "/no/such/folder"),
    (("governance", "report", "--stale-days", "-99999999999999999"), "--stale-days"),
    (("governance", "report", "--markdown", FOLDER), "a-folder"),
    # models, routing, costs, keys
    (("models", "learn", "--min-new", "100000000000000000000"), "--min-new"),
    (("models", "train-intents", FOLDER), "a-folder"),
    (("route", "eval", FOLDER, "--weak", "a", "--strong", "b"), "a-folder"),
    (("route", "eval", "/no/such.csv", "--weak", "a", "--strong", "b"), "/no/such.csv"),
    (("costs", "--per", "bogus"), "--per"),
    (("keys", "issue", "--person", "zoe@example.com", "--expires", "99999"), "--expires"),
    (("keys", "issue", "--person", "zoe@example.com", "--expires", "nan"), "--expires"),
    (("keys", "revoke", "nope"), "nope"),
    # processes
    (("demo", "--tickets", "0"), "--tickets"),
    (("demo", "--ticket-file", FOLDER), "a-folder"),
    (("serve", "--port", "99999"), "--port"),
    (("worker", "no.such.module:app"), "cannot load"),
]


def _args(home: Home, args: tuple[str, ...]) -> list[str]:
    return [a.replace(REVIEW, home.review).replace(RUN, home.run).replace(FOLDER, str(home.folder)) for a in args]


@pytest.mark.parametrize(("args", "fix"), CLI_CASES, ids=lambda v: " ".join(v)[:60] if isinstance(v, tuple) else None)
def test_every_command_says_what_to_fix_in_one_line_and_changes_nothing(
    home: Home, args: tuple[str, ...], fix: str
) -> None:
    before = home.dump()
    result = runner.invoke(
        app,
        [
            "--database-url",
            home.settings.resolved_database_url,
            "--home",
            str(home.settings.home),
            "--key",
            home.key,
            *_args(home, args),
        ],
    )
    lines = [line for line in result.output.splitlines() if not WHERE.match(line)]
    assert result.exit_code == 2, result.output
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    assert fix in lines[0], lines[0]
    assert "Traceback" not in result.output
    assert home.dump() == before


# -- HTTP ----------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def client(home: Home) -> Iterator[httpx2.Client]:
    """`podium serve`'s app over real HTTP on loopback, with the acting key."""
    with Podium.connect(home.settings) as pod, serving(pod, Gatekeeper(pod)) as url:
        headers = {"Authorization": f"Bearer {home.key}"}
        with httpx2.Client(base_url=url, headers=headers, timeout=30) as http:
            yield http


def _raw(text: str) -> dict[str, Any]:
    """A body sent as written (for JSON the standard library would not write: NaN, a lone surrogate)."""
    return {"content": text.encode("utf-8", "surrogatepass"), "headers": {"Content-Type": "application/json"}}


HTTP_CASES: list[tuple[str, str, dict[str, Any], int, str]] = [
    ("GET", "/v1/reviews?limit=100000000000000000000", {}, 422, "limit"),
    ("GET", "/v1/reviews?limit=abc", {}, 422, "limit"),
    ("GET", "/v1/reviews?status=bogus", {}, 422, "status"),
    ("GET", "/v1/reviews?min_value_usd=nan", {}, 422, "min_value_usd"),
    ("GET", "/v1/reviews?min_value_usd=1e400", {}, 422, "min_value_usd"),
    ("GET", "/v1/reviews?older_than=forever", {}, 422, "older_than"),
    ("GET", "/v1/reviews?older_than=P99999999999D", {}, 422, "older_than"),
    ("GET", f"/v1/reviews?reason={HUGE[:20_000]}", {}, 422, "reason"),
    ("GET", "/v1/reviews?cursor=garbage", {}, 422, "cursor"),
    ("GET", "/v1/reviews/stats?since=yesterday", {}, 422, "since"),
    ("GET", "/v1/reviews/no-such-review", {}, 404, "no review request"),
    ("GET", "/v1/reviews/%ED%A0%80", {}, 404, "no review request"),
    ("GET", f"/v1/reviews/{HUGE[:20_000]}", {}, 422, "characters long"),
    ("POST", f"/v1/reviews/{REVIEW}/approve", {"json": {"minutes": 150000000}}, 422, "from 0 to 1440"),
    ("POST", f"/v1/reviews/{REVIEW}/approve", {"json": {"minutes": 1e11}}, 422, "from 0 to 1440"),
    ("POST", f"/v1/reviews/{REVIEW}/approve", _raw('{"minutes": NaN}'), 422, "minutes"),
    ("POST", f"/v1/reviews/{REVIEW}/approve", _raw('{"minutes": Infinity}'), 422, "minutes"),
    ("POST", f"/v1/reviews/{REVIEW}/approve", _raw('{"minutes": -Infinity}'), 422, "minutes"),
    ("POST", f"/v1/reviews/{REVIEW}/approve", {"json": {"minutes": "ten"}}, 422, "minutes"),
    ("POST", f"/v1/reviews/{REVIEW}/approve", {"json": {"minutes": -1}}, 422, "minutes"),
    ("POST", f"/v1/reviews/{REVIEW}/approve", _raw('{"rationale": "\\ud800"}'), 422, "lone surrogate"),
    ("POST", f"/v1/reviews/{REVIEW}/approve", _raw('{"rationale": "a\\u0000b"}'), 422, "NUL"),
    ("POST", f"/v1/reviews/{REVIEW}/approve", {"json": {"rationale": HUGE}}, 422, "characters long"),
    ("POST", f"/v1/reviews/{REVIEW}/approve", {"json": {"label": "banana"}}, 422, "labels of intent-model"),
    ("POST", f"/v1/reviews/{REVIEW}/approve", {"json": {"expected_digest": "abc"}}, 422, "8 characters"),
    ("POST", f"/v1/reviews/{REVIEW}/approve", {"json": [1, 2]}, 422, "body"),
    ("POST", f"/v1/reviews/{REVIEW}/approve", _raw("{not json"), 422, "not valid JSON"),
    ("POST", f"/v1/reviews/{REVIEW}/approve", {"content": b"x" * 5_000_000}, 413, "at most"),
    ("POST", f"/v1/reviews/{REVIEW}/reject", _raw('{"minutes": NaN}'), 422, "minutes"),
    ("POST", "/v1/reviews/no-such-review/reject", {"json": {}}, 404, "no review request"),
    ("POST", f"/v1/reviews/{REVIEW}/edit", _raw('{"changes": {"amount_usd": NaN}}'), 422, "finite number"),
    ("POST", f"/v1/reviews/{REVIEW}/edit", {"json": {"changes": {"amount_usd": "lots"}}}, 422, "expected number"),
    ("POST", f"/v1/reviews/{REVIEW}/edit", {"json": {"changes": {}}}, 422, "at least one changed argument"),
    ("POST", f"/v1/reviews/{REVIEW}/edit", {"json": {"changes": [1]}}, 422, "changes"),
    ("POST", f"/v1/reviews/{REVIEW}/edit", {"json": {"changes": {"note": HUGE}}}, 422, "give at most"),
    ("POST", f"/v1/reviews/{REVIEW}/reassign", {"json": {"to": HUGE}}, 422, "to"),
    ("POST", f"/v1/reviews/{REVIEW}/reassign", {"json": {"to": 5}}, 422, "to"),
    ("POST", f"/v1/reviews/{REVIEW}/reassign", _raw('{"to": "\\ud800"}'), 422, "lone surrogate"),
    ("POST", "/v1/reviews/no-such-review/claim", {}, 404, "no review request"),
]


@pytest.mark.parametrize(
    ("method", "path", "send", "status", "fix"), HTTP_CASES, ids=[f"{c[0]} {c[1][:50]} {c[3]}" for c in HTTP_CASES]
)
def test_every_route_answers_a_4xx_naming_the_fix_and_changes_nothing(
    home: Home, client: httpx2.Client, method: str, path: str, send: dict[str, Any], status: int, fix: str
) -> None:
    before = home.dump()
    response = client.request(method, path.replace(REVIEW, home.review), **send)
    assert response.status_code == status, response.text
    message = response.json()["error"]["message"]
    assert "\n" not in message and fix in message, message
    assert home.dump() == before
