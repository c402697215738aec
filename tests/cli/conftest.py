"""A home full of hostile text, made once for the package on each database: every display command is driven over it.

The text goes in where a person, a model or a ticket can put it: a customer's name and note (a review request's
summary, its action's arguments, the model judgement's input), a failed run's error, a person's and an agent's
display name, an agent's purpose, the note of a kill (an audit entry's detail), and a reviewer's note and an error
whose newline would start a forged line.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import podium
from podium import Podium, Settings
from podium.cli._common import console, err
from podium.store import tables
from podium.testing import TEST_ADMIN, key_for, sign_in, temporary_postgres_database
from tests.review import _app
from tests.review.test_review import waiting

POSTGRES_URL = os.environ.get("PODIUM_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")

# What a name may hold (names refuse C0 controls): markup, an emoji code, a link, bidi and zero-width characters.
MARKUP = "[internal note: fraud suspect] [/] [link=http://evil.example]click here[/link] :x:"
HIDDEN = "\u202eevil\u202c zero\u200bwidth"
NAME_TEXT = f"{MARKUP} {HIDDEN}"
# What free text may hold besides: ANSI colours, an OSC 8 hyperlink, a bell, a carriage return, a C1 CSI.
ANSI = "\x1b[32mALL CHECKS PASSED - SAFE TO APPROVE\x1b[0m"
OSC_LINK = "\x1b]8;;http://evil.example\x1b\\open\x1b]8;;\x1b\\"
FREE_TEXT = f"{NAME_TEXT} {ANSI} {OSC_LINK} bell\x07 over\rwrite \x9b31m"

# How each shows in a terminal: literally, the hidden characters as escapes.
SHOWN = (
    "[internal note: fraud suspect]",
    "[/]",
    "[link=http://evil.example]click here[/link]",
    ":x:",
    "\\u202eevil\\u202c",
    "zero\\u200bwidth",
)
SHOWN_FREE = (
    *SHOWN,
    "\\x1b[32mALL CHECKS PASSED",
    "\\x1b]8;;http://evil.example",
    "bell\\x07",
    "over\\x0dwrite",
    "\\x9b31m",
)
# Free text that would forge a line of podium's if a newline in it were printed as one (a reviewer's note, an error).
FORGED_LINE = "approved with edits: to=attacker@evil"
FORGING_TEXT = f"ok\n{FORGED_LINE}"
NEVER_RAW = ("\x1b", "\x07", "\r", "\u202e", "\u200b", "\x9b", "\u274c")  # ❌: `:x:` made an emoji


@dataclass(frozen=True)
class HostileHome:
    pod: Podium
    admin_key: str
    review_id: str
    failed_run: str
    decided_review: str
    waiting_run: str
    kill_seq: int

    @property
    def url(self) -> str:
        return self.pod.settings.resolved_database_url


@podium.workflow(name="tests.cli.fails")
def fails(message: str) -> str:
    raise ValueError(message)


@pytest.fixture(scope="package", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def hostile(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[HostileHome]:
    home = tmp_path_factory.mktemp("hostile") / "home"
    if request.param == "sqlite":
        yield from _make(Settings(home=home))
    else:
        with temporary_postgres_database(POSTGRES_URL, prefix="podium_hostile") as url:
            yield from _make(Settings(home=home, database_url=url))


def _make(settings: Settings) -> Iterator[HostileHome]:
    with podium.launch(settings, _app.app) as pod:
        _app.tamper["extra_usd"] = 0.0
        admin = sign_in(pod, TEST_ADMIN)
        owner = "owner@example.com"
        key_for(pod, owner, teams=["refunds"])
        pod.people.add("reviewer@example.com", teams=["refunds"], by=admin, display_name=NAME_TEXT)
        pod.agents.add("hostile-bot", owner=owner, team="refunds", display_name=NAME_TEXT, purpose=FREE_TEXT, by=admin)
        pod.budgets.set("agent:hostile-bot", 5.0, by=admin)
        pod.kill("agent:hostile-bot", by=admin, reason=FREE_TEXT)
        pod.restore("agent:hostile-bot", by=admin, reason=FREE_TEXT)
        kill_seq = max(s.seq for s in pod.audit.entries(actor=admin.actor) if s.entry.action == "governance.kill")
        waiting_run = _app.refund_flow.start(FREE_TEXT, 640.0, note=FREE_TEXT)
        request = waiting(pod, waiting_run.id)
        decided = waiting(pod, _app.refund_flow.start("forger", 640.0).id)
        pod.reviews.reject(decided.id, by=sign_in(pod, owner), rationale=FORGING_TEXT)
        failed = fails.start(f"{FREE_TEXT} {FORGING_TEXT}")
        with pytest.raises(ValueError, match="ALL CHECKS PASSED"):
            failed.result()
        routed = [
            {"id": f"hostile-route-{i}", "router": f"hostile-bot:{NAME_TEXT}|strong", "run_id": None,
             "model": NAME_TEXT, "features": "[]", "success": i % 2, "at": float(i)}
            for i in range(3)
        ]  # fmt: skip
        with pod.engine.begin() as conn:
            conn.execute(tables.routed.insert(), routed)  # a router over a model named like an attack
        admin_key = key_for(pod, TEST_ADMIN)
        yield HostileHome(pod, admin_key, request.id, failed.id, decided.id, waiting_run.id, kill_seq)


@pytest.fixture(autouse=True)
def wide_consoles(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tables as wide as their text, so that a check for a string is not defeated by a line break in a cell."""
    for shown in (console, err):
        monkeypatch.setattr(shown, "_width", 2000)


def home_args(home: HostileHome) -> list[str]:
    return ["--database-url", home.url, "--home", str(Path(home.pod.settings.home))]
