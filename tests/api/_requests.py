"""Review requests written as a run's exception writes them, without running the workflow: the routes that only
read (or refuse) need nothing else, and a test stays fast."""

from __future__ import annotations

import json

from podium import Podium
from podium.store import tables

LEAD = "lead@example.com"


def add_request(
    pod: Podium,
    review_id: str,
    *,
    created_at: float,
    status: str = "pending",
    reasons: tuple[str, ...] = ("high_value",),
    decided_at: float | None = None,
) -> None:
    action = {"kind": "tool", "resource": "refund", "arguments": {"amount_usd": 500.0}}
    with pod.engine.begin() as conn:
        conn.execute(
            tables.reviews.insert().values(
                id=review_id,
                run_id=f"run-{review_id}",
                agent="refunder",
                reason=reasons[0],
                reasons=json.dumps(list(reasons)),
                summary="refund 500 USD",
                action=json.dumps(action),
                action_digest="d" * 64,
                action_schema="{}",
                facts="{}",
                value_usd=500.0,
                status=status,
                created_at=created_at,
                deadline_at=created_at + 3600,
                chain=json.dumps([LEAD]),
                level=0,
                level_seconds=3600.0,
                level_deadline_at=created_at + 3600,
                on_expiry="reject",
                decided_by=LEAD if decided_at is not None else None,
                decided_at=decided_at,
            )
        )
