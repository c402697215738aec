"""The run's side of a review: open the request, wait durably, escalate at each deadline, apply the default.

`@podium.step` calls `await_decision` when one of its calls raised ReviewRequired. Everything here is either a
step (recorded once) or a durable DBOS receive, so a run killed while it waits resumes waiting where it was,
for days if need be, and sees each decision exactly once.
"""

from __future__ import annotations

import json
import time
from typing import Any

import sqlalchemy as sa
from dbos import DBOS

from podium import _current
from podium.audit import canonical_json, record
from podium.errors import ActionRejected, ProposedAction, ReviewRequired
from podium.governance import Approval
from podium.review._context import current_workflow
from podium.review._rules import OWNER
from podium.store import insert_if_absent, tables

HOLD_SECONDS = 30 * 24 * 3600.0  # a held request waits in slices this long, with no further escalation
DECISION_IN_FLIGHT_SECONDS = 60.0  # a decision committed as a deadline passed: its message is already there


def await_decision(needed: ReviewRequired) -> Approval:
    """Wait for a person's decision on the action `needed` describes; return the approval, or raise
    ActionRejected (rejected, or expired with the default "reject")."""
    workflow = current_workflow()
    # Outside a workflow nothing waits (the governor denies instead), so there always is one here.
    assert workflow is not None, "await_decision runs in a workflow body"
    escalation = workflow.rules.escalation_for(needed.request.reasons)
    seconds = escalation.deadline.total_seconds()
    review_id, wait = _open_review(needed.request, escalation.chain, seconds, escalation.on_expiry)
    message: dict[str, Any] | None = None
    while message is None:
        message = DBOS.recv(topic=review_id, timeout_seconds=wait)
        if message is not None and message["status"] == "cancelled":
            # The run was cancelled while it waited, and has been resumed since: it asks a person afresh.
            review_id, wait = _open_review(needed.request, escalation.chain, seconds, escalation.on_expiry)
            message = None
        elif message is None:
            next_wait = _deadline_passed(review_id)
            if next_wait is None:
                message = {"status": "expired", "by": None, "rationale": "nobody decided in time", "edited": False}
            wait = next_wait or 0.0
    approved = message["status"] == "approved"
    if message["status"] in ("approved", "rejected"):
        _credit_routes(approved and not message.get("edited", False))
    if not approved or message.get("proposed_digest") != needed.request.input_digest:
        reasons = needed.request.reasons
        why = message.get("rationale") or ""
        raise ActionRejected(
            f"review {review_id} was {message['status']}"
            + (f" by {message['by']}" if message.get("by") else "")
            + (f": {why}" if why else "")
            + f" (reasons: {', '.join(reasons)}). The action was not performed.",
            review_id=review_id,
            status=message["status"] if not approved else "rejected",
            by=message.get("by"),
            rationale=why,
            reasons=reasons,
        )
    return Approval(
        review_id,
        needed.request.resource,
        message["proposed_digest"],
        message["arguments"],
        message["approved_digest"],
        frozenset(needed.request.reasons),
    )


@DBOS.step(name="podium.review.credit_routes")
def _credit_routes(success: bool) -> None:
    """The person judged the routed answers this action carries: the routers learn (an edit is a miss). A step,
    so a replayed run does not credit again (nor credit calls made after it)."""
    _current.get().route_outcome(str(DBOS.workflow_id), success)


@DBOS.step(name="podium.review.open")
def _open_review(
    needed: ProposedAction, chain: tuple[str, ...], level_seconds: float, on_expiry: str
) -> tuple[str, float]:
    """Record the request (once, even if this step re-runs) and audit it; return its id and the first wait."""
    run_id = DBOS.workflow_id
    assert run_id is not None
    review_id = f"{run_id}/review-{DBOS.step_id}"
    workflow = current_workflow()
    facts = needed.facts
    pod = _current.get()
    now = time.time()
    with pod.engine.begin() as conn:
        owner = conn.execute(sa.select(tables.agents.c.owner).where(tables.agents.c.name == needed.agent)).scalar()
        resolved = [owner or OWNER if decider == OWNER else decider for decider in chain]
        action = {"kind": needed.kind, "resource": needed.resource, "arguments": needed.arguments}
        if insert_if_absent(
            conn,
            tables.reviews,
            id=review_id,
            run_id=run_id,
            agent=needed.agent,
            reason=needed.reasons[0],
            reasons=json.dumps(list(needed.reasons)),
            summary=facts.get("summary") or _summary(action),
            action=canonical_json(action),
            action_digest=needed.input_digest,
            action_schema=canonical_json(needed.schema),
            facts=canonical_json(facts),
            value_usd=facts.get("value_usd"),
            judgement=canonical_json(needed.judgement) if needed.judgement else None,
            status="pending",
            created_at=now,
            deadline_at=now + level_seconds,
            chain=json.dumps(resolved),
            level=0,
            level_seconds=level_seconds,
            level_deadline_at=now + level_seconds,
            on_expiry=on_expiry,
            workflow=workflow.name if workflow else None,
        ):
            record(
                conn,
                f"agent:{needed.agent}",
                "review.request",
                f"review:{review_id}",
                decision="pending",
                input_digest=needed.input_digest,
                detail={"reasons": ", ".join(needed.reasons), "assigned_to": resolved[0]},
            )
        deadline = conn.execute(
            sa.select(tables.reviews.c.level_deadline_at).where(tables.reviews.c.id == review_id)
        ).scalar_one()
    return review_id, max(0.0, float(deadline) - now)


def _summary(action: dict[str, Any]) -> str:
    arguments = ", ".join(f"{k}={v!r}" for k, v in action["arguments"].items())
    return f"{action['resource']}({arguments})"[:500]


@DBOS.step(name="podium.review.deadline")
def _deadline_passed(review_id: str) -> float | None:
    """A level's deadline passed with no decision: escalate to the chain's next level, or at its end apply the
    default (expire, or hold); return how long to wait next (None: expired, stop waiting). Audited."""
    now = time.time()
    with _current.get().engine.begin() as conn:
        row = conn.execute(_locked(conn, sa.select(tables.reviews).where(tables.reviews.c.id == review_id))).one()
        if row.status == "expired":
            return None  # expired by an earlier execution of this step that crashed before it was recorded
        if row.status != "pending":
            # held: no more deadlines; cancelled: its run was cancelled (a resume reopens it); decided as the
            # deadline passed: its message is waiting.
            return HOLD_SECONDS if row.status in ("held", "cancelled") else DECISION_IN_FLIGHT_SECONDS
        if now < row.level_deadline_at:
            return float(row.level_deadline_at - now)  # woken early
        chain = json.loads(row.chain)
        return _escalate(conn, row, chain, now) if row.level + 1 < len(chain) else _apply_default(conn, row, chain, now)


def _escalate(conn: sa.Connection, row: Any, chain: list[str], now: float) -> float:
    level = row.level + 1
    if not _still_pending(conn, row.id, level=level, level_deadline_at=now + row.level_seconds):
        return DECISION_IN_FLIGHT_SECONDS
    record(
        conn,
        "system",
        "review.escalate",
        f"review:{row.id}",
        decision="escalated",
        input_digest=row.action_digest,
        detail={"from": row.assignee or chain[row.level], "to": chain[level], "level": str(level)},
    )
    return float(row.level_seconds)


def _apply_default(conn: sa.Connection, row: Any, chain: list[str], now: float) -> float | None:
    """The end of the chain: the workflow's default. "reject" expires the request; "hold" keeps it open."""
    expired = row.on_expiry == "reject"
    status = "expired" if expired else "held"
    if not _still_pending(conn, row.id, status=status, decided_at=now if expired else None):
        return DECISION_IN_FLIGHT_SECONDS
    record(
        conn,
        "system",
        "review.expire" if expired else "review.hold",
        f"review:{row.id}",
        decision=status,
        input_digest=row.action_digest,
        detail={"default": row.on_expiry, "chain": ", ".join(chain)},
    )
    return None if expired else HOLD_SECONDS


def _still_pending(conn: sa.Connection, review_id: str, **values: Any) -> bool:
    """Update the request only if nobody decided it meanwhile (a decision racing the deadline wins)."""
    reviews = tables.reviews
    changed = conn.execute(
        reviews.update()
        .where(reviews.c.id == review_id, reviews.c.status == "pending")
        .values(claimed_by=None, assignee=None, **values)
    ).rowcount
    return bool(changed)


def _locked(conn: sa.Connection, query: sa.Select[Any]) -> sa.Select[Any]:
    """Lock the row on PostgreSQL (SQLite's write transaction already excludes other writers)."""
    return query.with_for_update() if conn.dialect.name == "postgresql" else query
