"""What the HTTP API answers with: typed views of review requests (times as ISO 8601 UTC strings, never epoch
floats), a page of them with its cursor, and the health report.

Paging: list routes return `{"items": [...], "next_cursor": "..." | null}`, oldest first, in the stable order
(created_at, id). Pass `next_cursor` back as `cursor` for the next page; null means there is none. A cursor is an
opaque position, not a snapshot: requests created later join the end; one decided meanwhile may leave an
`open` list before its page is read.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from podium._bounds import check_name
from podium.errors import UsageError
from podium.review import ReviewMetrics, ReviewRequest

ReviewStatus = Literal["pending", "held", "approved", "rejected", "expired", "cancelled"]
StatusFilter = Literal["open", "all", "pending", "held", "approved", "rejected", "expired", "cancelled"]
_TIMES = ("created_at", "deadline_at", "level_deadline_at", "decided_at")


class Review(BaseModel):
    """A review request: an exception waiting for (or decided by) a person, with the exact action it releases."""

    id: str
    run_id: str
    agent: str
    team: str = Field(description='The agent\'s team ("" if it has none).')
    workflow: str | None
    reasons: list[str]
    summary: str
    action: dict[str, Any] = Field(description="kind, resource, arguments.")
    action_digest: str
    action_schema: dict[str, Any]
    facts: dict[str, Any]
    value_usd: float | None
    judgement: dict[str, Any] | None
    status: ReviewStatus
    created_at: datetime
    deadline_at: datetime = Field(description="The first deadline (the SLA).")
    chain: list[str]
    level: int
    level_deadline_at: datetime
    on_expiry: Literal["reject", "hold"] = Field(description="What happens when nobody decides in time.")
    assignee: str | None
    claimed_by: str | None
    decided_by: str | None
    decided_at: datetime | None
    rationale: str | None
    minutes: float | None
    label: str | None
    approved_action: dict[str, Any] | None
    approved_digest: str | None
    consumed_by: str | None
    waiting_on: str = Field(description="Who is asked now: the reassignee, or the chain's current level.")
    edited: bool

    @classmethod
    def of(cls, request: ReviewRequest) -> Review:
        times = {name: _utc(getattr(request, name)) for name in _TIMES}
        return cls.model_validate(
            {**asdict(request), **times, "waiting_on": request.waiting_on, "edited": request.edited}
        )


class ReviewPage(BaseModel):
    items: list[Review]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null: this is the last.")


class Fatigue(BaseModel):
    reason: str
    decisions: int
    approved_unchanged: float = Field(description="The share approved unchanged.")
    advice: str


class Stats(BaseModel):
    """What human oversight costs and yields (`podium review stats`); durations in seconds, shares from 0 to 1."""

    runs: dict[str, int] = Field(description="Runs per workflow.")
    runs_with_exception: dict[str, int]
    exceptions_by_reason: dict[str, int]
    exception_rate: float | None
    decided: int
    open: int
    latency_p50_s: float | None
    latency_p95_s: float | None
    sla_breaches: int
    human_minutes: float
    judgment_minutes: float
    judgment_decisions: int
    judgment_yield: float | None
    fatigue: list[Fatigue] = Field(description="Rules people approve almost always unchanged.")

    @classmethod
    def of(cls, m: ReviewMetrics) -> Stats:
        fatigue = [{**asdict(f), "advice": f.advice} for f in m.fatigue]
        return cls.model_validate(
            {**asdict(m), "exception_rate": m.exception_rate, "judgment_yield": m.judgment_yield, "fatigue": fatigue}
        )


class Health(BaseModel):
    """A liveness report that tells an outsider nothing but that the server and its database answer."""

    status: Literal["ok"]
    database: Literal["reachable"]
    version: str = Field(description="podium's version.")


def _utc(epoch: float | None) -> datetime | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, UTC)


def cursor_after(request: ReviewRequest) -> str:
    """The opaque cursor of the position just after `request`."""
    raw = json.dumps([request.created_at, request.id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def position(cursor: str) -> tuple[float, str]:
    """The (created_at, id) a cursor of ours names; anything else is bad input."""
    try:
        created_at, review_id = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        number = isinstance(created_at, int | float) and not isinstance(created_at, bool)
        if number and math.isfinite(created_at) and isinstance(review_id, str):
            return float(created_at), check_name(review_id, "query cursor: its review id")
    except (ValueError, TypeError, binascii.Error):
        pass
    raise UsageError("query cursor: not a cursor this API gave; pass a page's `next_cursor` as it is, or omit it.")
