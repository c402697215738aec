"""kill -9 at every step boundary and inside steps: every run completes, every side effect happens once.

Each crash point gets its own ticket. A podium process triages it and freezes at the chosen event; the test
kills it with SIGKILL; a fresh process (which takes back the same executor id) recovers the run. Then the
outbox, the ledger and the audit log are checked for exactly-once effects. A run waiting for a person is killed
too, approved from a separate CLI process, and resumed.
"""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import sqlalchemy as sa

from podium import Podium, Settings
from podium.models import ClassifierModel
from podium.store import tables
from podium.testing import key_for
from podium_examples.support_triage.tickets import TEST_CSV, Ticket, load_tickets
from podium_examples.support_triage.workflow import INTENT_MODEL, SENSITIVE_INTENTS, SUPPORT_LEAD
from tests._driver import drive_process
from tests.conftest import IntentModelFile
from tests.examples.test_rules_hold import answered_alone

pytestmark = pytest.mark.slow

FREEZE_POINTS = [
    ("workflow_started", 1),  # before the first step
    ("call_recorded", 1),  # inside classify, after its model call was recorded, before the step's checkpoint
    ("step_started", 2),  # between classify and draft
    ("call_recorded", 2),  # inside draft
    ("step_started", 3),  # between draft and send
    ("call_recorded", 3),  # inside send: the outbox row and its records are written, the checkpoint is not
    ("workflow_returning", 1),  # after the last step, before the run's result is recorded
]
CALLS_PER_SENT_RUN = [("model", 1), ("model", 2), ("tool", 3)]  # (kind, step) of classify, draft, send


def pick_tickets(model: IntentModelFile) -> tuple[list[Ticket], Ticket]:
    """Tickets the classifier is sure about: ones it resolves alone, and one with a sensitive intent."""
    auto: list[Ticket] = []
    sensitive: Ticket | None = None
    served = ClassifierModel(INTENT_MODEL, model.classifier)
    for ticket in load_tickets(TEST_CSV):
        prediction = model.classifier.predict(ticket.text)
        if prediction.confidence < 0.8 or prediction.label != ticket.category:
            continue
        if prediction.label in SENSITIVE_INTENTS:
            sensitive = sensitive or ticket
        elif len(auto) < len(FREEZE_POINTS) and answered_alone(served, ticket.text):  # no part of it is sensitive
            auto.append(ticket)
        if sensitive and len(auto) == len(FREEZE_POINTS):
            return auto, sensitive
    raise AssertionError("not enough confidently classified tickets")


def drive(settings: Settings, model: IntentModelFile, ticket: Ticket, freeze_at: tuple[str, int] | None) -> str:
    """Run the driver until it settles, or until it freezes and is killed; return its last line."""
    spec = {
        "database_url": settings.resolved_database_url,
        "home": str(settings.home),
        "model": str(model.path),
        "sha256": model.sha256,
        "tickets": [ticket.__dict__],
        "freeze_at": freeze_at,
    }
    return drive_process("tests.durability.driver", spec, "SETTLED")


def test_runs_survive_kill_9_at_every_step_boundary(settings: Settings, intent_model_file: IntentModelFile) -> None:
    auto, sensitive = pick_tickets(intent_model_file)
    for ticket, point in zip(auto, FREEZE_POINTS, strict=True):
        assert drive(settings, intent_model_file, ticket, point).startswith(f"FROZEN {point[0]}")
        assert drive(settings, intent_model_file, ticket, None) == "SETTLED"

    # A run waiting for a person: its process dies, a person approves from another process, a third resumes it.
    assert drive(settings, intent_model_file, sensitive, None) == "SETTLED"
    with Podium.connect(settings) as pod:
        (request,) = pod.reviews.list()
        assert request.run_id == f"crash-{sensitive.id}"
        lead = key_for(pod, SUPPORT_LEAD)
    approve = subprocess.run(
        [
            str(Path(sys.executable).parent / "podium"),
            "--database-url",
            settings.resolved_database_url,
            "--key",
            lead,
            "review",
            "approve",
            request.id,
            "--note",
            "checked the account",
            "--minutes",
            "3",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert approve.returncode == 0, approve.stderr
    assert drive(settings, intent_model_file, sensitive, None) == "SETTLED"

    with Podium.connect(settings) as pod:
        runs = {r.id: r for r in pod.runs.list(prefix="crash-", limit=100)}
        assert len(runs) == len(auto) + 1
        assert {r.status for r in runs.values()} == {"SUCCESS"}
        outcomes = Counter(pod.runs.get(run_id).output.outcome for run_id in runs)  # a list leaves outputs out
        assert outcomes == {"sent": len(auto), "sent_after_review": 1}

        outbox = Counter(m.run_id for m in pod.outbox.messages())
        assert outbox == {run_id: 1 for run_id in runs}, "a reply was sent twice or not at all"

        with pod.engine.connect() as conn:
            ledger = list(
                conn.execute(sa.select(tables.ledger.c.run_id, tables.ledger.c.kind, tables.ledger.c.step_id))
            )
            audit = list(
                conn.execute(
                    sa.select(tables.audit_log.c.run_id, tables.audit_log.c.action, tables.audit_log.c.step_id).where(
                        tables.audit_log.c.decision == "allowed"
                    )
                )
            )
        for run_id in runs:
            calls = sorted((kind, step) for rid, kind, step in ledger if rid == run_id)
            audited = sorted((action.split(".")[0], step) for rid, action, step in audit if rid == run_id)
            if run_id == request.run_id:  # classify, draft, the person's review (costed), send after it
                assert [kind for kind, _ in calls] == ["model", "model", "review", "tool"], run_id
                review_cost = conn_scalar(
                    pod, sa.select(tables.ledger.c.cost_nano_usd).where(tables.ledger.c.kind == "review")
                )
                assert review_cost == 3_000_000_000  # 3 minutes at the default loaded rate of $60 an hour
                calls = [(kind, step) for kind, step in calls if kind != "review"]  # audited as review.approve
            else:
                assert calls == CALLS_PER_SENT_RUN, f"{run_id}: ledger {calls}"
            assert audited == calls, f"{run_id}: audit {audited} vs ledger {calls}"
        verification = pod.verify_audit()
        assert verification.ok, verification.problem
        entries = [r for r in conn_rows(pod) if r.resource == f"review:{request.id}"]
        assert [r.action for r in entries] == ["review.request", "review.approve"], [
            (r.seq, r.actor, r.action, r.decision, r.call_key, r.at) for r in entries
        ]


def conn_scalar(pod: Podium, query: sa.Select[tuple[int]]) -> int:
    with pod.engine.connect() as conn:
        return int(conn.execute(query).scalar_one())


def conn_rows(pod: Podium) -> list[sa.Row[tuple[object, ...]]]:
    with pod.engine.connect() as conn:
        return list(conn.execute(sa.select(tables.audit_log).order_by(tables.audit_log.c.seq)))
