"""What human oversight costs and yields: exception rates, review latency, SLA breaches, judgment yield, and
"guardrail fatigue" (rules people approve almost always unchanged, which should be relaxed).

All of it is computed from the review requests and DBOS's run table, so it is live and needs no bookkeeping.
"""

from __future__ import annotations

import json
import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass, field

import sqlalchemy as sa

from podium.store import tables, workflow_status

# Reasons whose stakes make a person's time well spent even when they approve unchanged.
HIGH_STAKES = ("high_value", "compliance:", "data_class:", "policy:", "guardrail:")
FATIGUE_MIN_DECISIONS = 20
FATIGUE_APPROVAL_SHARE = 0.95


@dataclass(frozen=True)
class Fatigue:
    """A rule people approve almost always unchanged: it costs their attention and teaches nothing."""

    reason: str
    decisions: int
    approved_unchanged: float  # share

    @property
    def advice(self) -> str:
        return (
            f"reviewers approved {self.approved_unchanged:.0%} of {self.decisions} '{self.reason}' exceptions "
            "unchanged: relax that rule (or let the agent act and sample afterwards)"
        )


@dataclass(frozen=True)
class ReviewMetrics:
    runs: dict[str, int]  # per workflow
    runs_with_exception: dict[str, int]
    exceptions_by_reason: dict[str, int]  # requests naming each reason (a request may name several)
    decided: int
    open: int
    latency_p50_s: float | None
    latency_p95_s: float | None
    sla_breaches: int  # escalated, expired, or decided after the first deadline
    human_minutes: float
    judgment_minutes: float
    judgment_decisions: int
    fatigue: list[Fatigue] = field(default_factory=list)

    @property
    def exception_rate(self) -> float | None:
        total = sum(self.runs.values())
        return sum(self.runs_with_exception.values()) / total if total else None

    def exception_rate_of(self, workflow: str) -> float | None:
        runs = self.runs.get(workflow, 0)
        return self.runs_with_exception.get(workflow, 0) / runs if runs else None

    @property
    def judgment_yield(self) -> float | None:
        """The share of human review time spent on decisions that needed a person: the stakes were high, or the
        person changed something (rejected, edited, corrected the model). The rest is rubber-stamping."""
        if self.human_minutes > 0:
            return self.judgment_minutes / self.human_minutes
        return self.judgment_decisions / self.decided if self.decided else None


def _high_stakes(reasons: list[str]) -> bool:
    return any(reason.startswith(HIGH_STAKES) for reason in reasons)


def review_metrics(engine: sa.Engine, *, since: float = 0.0) -> ReviewMetrics:
    r = tables.reviews
    status = workflow_status(engine)
    with engine.connect() as conn:
        counted = conn.execute(
            sa.select(status.c.name, sa.func.count())
            .where(status.c.created_at >= since * 1000, status.c.name.in_(sa.select(tables.workflows.c.name)))
            .group_by(status.c.name)
        )
        runs = {str(name): int(count) for name, count in counted}
        rows = conn.execute(sa.select(r).where(r.c.created_at >= since)).all()
    by_run: dict[str, str] = {}
    reasons: Counter[str] = Counter()
    latencies: list[float] = []
    breaches = decided = judgment_decisions = 0
    minutes = judgment_minutes = 0.0
    per_reason: dict[str, list[bool]] = defaultdict(list)  # reason -> approved unchanged, per decision
    for row in rows:
        codes = json.loads(row.reasons) or [row.reason]
        by_run[row.run_id] = row.workflow or "?"
        reasons.update(codes)
        if row.level > 0 or row.status == "expired" or (row.decided_at or 0) > row.deadline_at:
            breaches += 1
        if row.status not in ("approved", "rejected"):
            continue
        decided += 1
        latencies.append(row.decided_at - row.created_at)
        edited = row.approved_digest is not None and row.approved_digest != row.action_digest
        corrected = row.label is not None and row.judgement and json.loads(row.judgement)["label"] != row.label
        unchanged = row.status == "approved" and not edited and not corrected
        for code in codes:
            per_reason[code].append(unchanged)
        spent = float(row.minutes or 0.0)
        minutes += spent
        if _high_stakes(codes) or not unchanged:
            judgment_decisions += 1
            judgment_minutes += spent
    with_exception = Counter(by_run.values())
    fatigue = [
        Fatigue(code, len(outcomes), sum(outcomes) / len(outcomes))
        for code, outcomes in sorted(per_reason.items())
        if len(outcomes) >= FATIGUE_MIN_DECISIONS and sum(outcomes) / len(outcomes) >= FATIGUE_APPROVAL_SHARE
    ]
    return ReviewMetrics(
        runs=runs,
        runs_with_exception=dict(with_exception),
        exceptions_by_reason=dict(reasons.most_common()),
        decided=decided,
        open=sum(row.status in ("pending", "held") for row in rows),
        latency_p50_s=statistics.median(latencies) if latencies else None,
        latency_p95_s=_percentile(latencies, 0.95),
        sla_breaches=breaches,
        human_minutes=minutes,
        judgment_minutes=judgment_minutes,
        judgment_decisions=judgment_decisions,
        fatigue=fatigue,
    )


def _percentile(values: list[float], share: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]
