"""Exceptions that wait for a person, durably, bound to the exact action proposed.

A workflow calls `request_review(...)`; its run waits (for days if need be, across restarts) until a person
approves or rejects, or the deadline passes. The decision, its audit entry and the message that wakes the run
are written in one transaction, so no decision is lost and none is delivered without its record.
"""

from __future__ import annotations

import builtins
import json
import time
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from dbos import DBOS, DBOSClient

from podium import _current
from podium.audit import actor_name, canonical_json, digest, record
from podium.cost import NANO
from podium.errors import NotFoundError, UsageError
from podium.governance._policy import Authorizer, review_entity
from podium.store import insert_if_absent, tables
from podium.workflows._api import step
from podium.workflows._context import current_step

DEFAULT_DEADLINE_SECONDS = 7 * 24 * 3600


@dataclass(frozen=True)
class ReviewRequest:
    id: str
    run_id: str
    agent: str
    reason: str
    summary: str
    action: dict[str, Any]
    action_digest: str
    status: str
    created_at: float
    deadline_at: float
    decided_by: str | None
    decided_at: float | None
    rationale: str | None
    workflow: str | None = None


@dataclass(frozen=True)
class Decision:
    """What the person decided about the exact action they were shown."""

    status: str  # approved | rejected | expired
    by: str | None
    rationale: str | None
    action_digest: str

    @property
    def approved(self) -> bool:
        return self.status == "approved"


def request_review(
    *,
    agent: str,
    reason: str,
    summary: str,
    action: dict[str, Any],
    deadline_seconds: float = DEFAULT_DEADLINE_SECONDS,
) -> Decision:
    """Stop this run as an exception and wait for a person's decision on `action`.

    Call it from a workflow body (not from inside a step). On expiry the request is marked expired and the
    decision says so; the workflow chooses what that means.
    """
    review_id = _open_review(agent, reason, summary, action, deadline_seconds)
    message = DBOS.recv(topic=review_id, timeout_seconds=deadline_seconds)
    decision = Decision(**message) if message is not None else _expire_review(review_id)
    if decision.action_digest != digest(action):
        # The person decided on something other than what this run proposes: never act on it.
        return Decision("rejected", decision.by, "the decision was for a different action", decision.action_digest)
    return decision


@step(name="podium.review.open")
def _open_review(agent: str, reason: str, summary: str, action: dict[str, Any], deadline_seconds: float) -> str:
    run_id = DBOS.workflow_id
    assert run_id is not None
    review_id = f"{run_id}/review-{DBOS.step_id}"
    now = time.time()
    with _current.get().engine.begin() as conn:
        if insert_if_absent(
            conn,
            tables.reviews,
            id=review_id,
            run_id=run_id,
            agent=agent,
            reason=reason,
            summary=summary,
            action=canonical_json(action),
            action_digest=digest(action),
            status="pending",
            created_at=now,
            deadline_at=now + deadline_seconds,
            workflow=scope.workflow if (scope := current_step()) else None,
        ):
            record(
                conn,
                f"agent:{agent}",
                "review.request",
                f"review:{review_id}",
                decision="pending",
                input_digest=digest(action),
                detail={"reason": reason},
            )
    return review_id


@step(name="podium.review.expire")
def _expire_review(review_id: str) -> Decision:
    with _current.get().engine.begin() as conn:
        expired = conn.execute(
            tables.reviews.update()
            .where(tables.reviews.c.id == review_id, tables.reviews.c.status == "pending")
            .values(status="expired", decided_at=time.time())
        ).rowcount
        row = conn.execute(sa.select(tables.reviews).where(tables.reviews.c.id == review_id)).one()
        if expired:
            record(
                conn,
                "system",
                "review.expire",
                f"review:{review_id}",
                decision="expired",
                input_digest=row.action_digest,
            )
    return Decision(row.status, row.decided_by, row.rationale, row.action_digest)


class Reviews:
    """The review queue as people see it."""

    def __init__(
        self,
        engine: sa.Engine,
        client: DBOSClient,
        usd_per_hour: float,
        authorizer: Authorizer,
    ) -> None:
        self._engine = engine
        self._client = client
        self._usd_per_hour = usd_per_hour
        self._authorizer = authorizer

    def list(self, *, status: str | None = "pending", limit: int = 100) -> builtins.list[ReviewRequest]:
        query = sa.select(tables.reviews).order_by(tables.reviews.c.created_at).limit(limit)
        if status is not None:
            query = query.where(tables.reviews.c.status == status)
        with self._engine.connect() as conn:
            return [_request(row) for row in conn.execute(query)]

    def get(self, review_id: str) -> ReviewRequest:
        with self._engine.connect() as conn:
            row = conn.execute(sa.select(tables.reviews).where(tables.reviews.c.id == review_id)).first()
        if row is None:
            raise NotFoundError(
                f"no review request {review_id!r}. `podium review list` shows the pending ones.",
                review_id=review_id,
            )
        return _request(row)

    def approve(self, review_id: str, *, by: str, rationale: str = "", minutes: float = 0.0) -> ReviewRequest:
        """Approve; `minutes` the person spent is costed in the ledger at the loaded hourly rate."""
        return self._decide(review_id, "approved", by, rationale, minutes)

    def reject(self, review_id: str, *, by: str, rationale: str = "", minutes: float = 0.0) -> ReviewRequest:
        return self._decide(review_id, "rejected", by, rationale, minutes)

    def _decide(self, review_id: str, status: str, by: str, rationale: str, minutes: float) -> ReviewRequest:
        if not by.strip():
            raise UsageError("a decision needs the name of the person who made it (--by).")
        if minutes < 0:
            raise UsageError(f"minutes={minutes} is negative; give the minutes the decision took (>= 0).")
        request = self.get(review_id)
        with self._engine.connect() as conn:
            team = conn.execute(sa.select(tables.agents.c.team).where(tables.agents.c.name == request.agent)).scalar()
        permitted = self._authorizer.check(
            by,
            "review.decide",
            review_entity(review_id, workflow=request.workflow or "", team=team or "", reason=request.reason),
            {"decision": status},
            resource_name=f"review:{review_id}",
        )
        now = time.time()
        with self._engine.begin() as conn:
            decided = conn.execute(
                tables.reviews.update()
                .where(tables.reviews.c.id == review_id, tables.reviews.c.status == "pending")
                .values(status=status, decided_by=by, decided_at=now, rationale=rationale)
            ).rowcount
            if not decided:
                current = self.get(review_id)
                raise UsageError(
                    f"review {review_id} is already {current.status}"
                    + (f" by {current.decided_by}" if current.decided_by else "")
                    + "; a request is decided once."
                )
            conn.execute(
                tables.ledger.insert().values(
                    call_key=f"review:{review_id}",
                    run_id=request.run_id,
                    step_id=None,
                    agent=request.agent,
                    kind="review",
                    resource=f"person:{by}",
                    tier="human",
                    input_tokens=0,
                    output_tokens=0,
                    compute_seconds=0.0,
                    cost_nano_usd=round(minutes / 60 * self._usd_per_hour * NANO),
                    at=now,
                    wall_seconds=minutes * 60,
                    wasted=0,
                    workflow=request.workflow,
                    team=team or None,
                )
            )
            action = {"approved": "review.approve", "rejected": "review.reject"}[status]
            record(
                conn,
                actor_name(by),
                action,
                f"review:{review_id}",
                decision=status,
                input_digest=request.action_digest,
                policies=permitted.policies,
                detail={"rationale": rationale},
            )
            message = {
                "status": status,
                "by": by,
                "rationale": rationale,
                "action_digest": request.action_digest,
            }
            self._client.send_in_transaction(
                conn, request.run_id, message, topic=review_id, idempotency_key=f"decision:{review_id}"
            )
        return self.get(review_id)


def _request(row: sa.Row[Any]) -> ReviewRequest:
    return ReviewRequest(
        id=row.id,
        run_id=row.run_id,
        agent=row.agent,
        reason=row.reason,
        summary=row.summary,
        action=json.loads(row.action),
        action_digest=row.action_digest,
        status=row.status,
        created_at=row.created_at,
        deadline_at=row.deadline_at,
        decided_by=row.decided_by,
        decided_at=row.decided_at,
        rationale=row.rationale,
        workflow=row.workflow,
    )
