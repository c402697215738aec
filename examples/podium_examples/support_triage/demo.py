"""`podium demo`: triage a sample of BANKING77 tickets and report what happened, from the database."""

from __future__ import annotations

import statistics
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

import podium
from podium.audit import Verification
from podium.cost import usd
from podium.models import Prediction
from podium.store import tables
from podium_examples.support_triage import workflow as wf
from podium_examples.support_triage.tickets import TEST_CSV, TRAIN_CSV, Ticket, load_tickets, sample

Progress = Callable[[int, int], None]
SETTLED = ("SUCCESS", "ERROR", "CANCELLED", "MAX_RECOVERY_ATTEMPTS_EXCEEDED")


@dataclass(frozen=True)
class DemoReport:
    tickets: int
    auto_resolved: int
    resolved_after_review: int
    waiting_for_person: int
    exceptions_by_reason: dict[str, int]  # reason kind (low_confidence, compliance, data_class …) -> requests
    closed_without_reply: int
    failed: int
    intent_accuracy: float
    calls_by_tier: dict[str, int]
    tokens: int
    cost_usd: float
    strongest_model: str
    strongest_cost_usd: float  # the same model calls, all on the strongest draft model available
    cycle_p50_s: float
    cycle_p95_s: float
    replies_in_outbox: int
    audit: Verification
    seconds: float

    @property
    def cost_per_ticket_usd(self) -> float:
        return self.cost_usd / self.tickets


def ensure_intent_model(settings: podium.Settings, train_file: Path = TRAIN_CSV) -> bool:
    """Train the intent classifier on labelled tickets unless podium already has one; return True if trained."""
    with podium.connect(settings) as pod:
        if pod.trained.has(wf.INTENT_MODEL):
            return False
        train_intent_model(pod, load_tickets(train_file))
        return True


def train_intent_model(pod: podium.Podium, examples: list[Ticket]) -> Path:
    """Train the intent classifier on labelled tickets and record its file; return the file's path."""
    return pod.trained.train_classifier(wf.INTENT_MODEL, [t.text for t in examples], [t.category for t in examples])


def run_demo(
    settings: podium.Settings,
    *,
    tickets: int = 40,
    seed: int = 7,
    ticket_file: Path = TEST_CSV,
    progress: Progress | None = None,
) -> DemoReport:
    """Triage `tickets` tickets and wait until each is resolved or waiting for a person.

    Run ids come from ticket ids, so running the demo again re-uses the finished runs: no reply is sent twice.
    """
    chosen = sample(load_tickets(ticket_file), tickets, seed)
    started = time.perf_counter()
    with podium.launch(settings, wf.app) as pod:
        run_ids = [
            wf.triage_ticket.options(run_id=f"triage-{ticket.id}", queued=True).start(ticket).id for ticket in chosen
        ]
        wait_until_settled(pod, run_ids, progress)
        return _report(pod, chosen, run_ids, time.perf_counter() - started)


def waiting_for_person(pod: podium.Podium, run_ids: list[str]) -> set[str]:
    """The runs among `run_ids` that wait for a review decision."""
    return {r.run_id for r in pod.reviews.list(status="open", limit=100_000)} & set(run_ids)


def wait_until_settled(pod: podium.Podium, run_ids: list[str], progress: Progress | None = None) -> None:
    """Return once every run has finished or waits for a person."""
    while True:
        done = {r.id for r in pod.runs.by_ids(run_ids) if r.status in SETTLED}
        settled = len(done | waiting_for_person(pod, run_ids))
        if progress is not None:
            progress(settled, len(run_ids))
        if settled == len(run_ids):
            return
        time.sleep(0.25)


def _report(pod: podium.Podium, chosen: list[Ticket], run_ids: list[str], seconds: float) -> DemoReport:
    runs = {r.id: r for r in pod.runs.by_ids(run_ids)}
    outcomes: list[wf.TriageOutcome] = [r.output for r in runs.values() if r.status == "SUCCESS"]
    by_outcome = {name: sum(o.outcome == name for o in outcomes) for name in ("sent", "sent_after_review")}
    correct = 0
    cycles: list[float] = []
    for ticket, run_id in zip(chosen, run_ids, strict=True):
        steps = pod.runs.steps(run_id)
        classified = next((s.output for s in steps if s.name == "support_triage.classify"), None)
        correct += isinstance(classified, Prediction) and classified.label == ticket.category
        if runs[run_id].status == "SUCCESS" and runs[run_id].output.outcome == "sent":
            # Step times have millisecond precision (run times on SQLite only whole seconds).
            cycles.append(max(s.finished_at or 0.0 for s in steps) - min(s.started_at or 0.0 for s in steps))
    cycles = sorted(cycles) or [0.0]
    totals = pod.ledger.totals(run_ids)
    strongest = pod.models.expand_tiers(wf.DRAFT_MODELS)[-1]
    return DemoReport(
        tickets=len(chosen),
        auto_resolved=by_outcome["sent"],
        resolved_after_review=by_outcome["sent_after_review"],
        waiting_for_person=len(waiting_for_person(pod, run_ids)),
        exceptions_by_reason=_reasons(pod, run_ids),
        closed_without_reply=sum(o.outcome in ("rejected", "expired") for o in outcomes),
        failed=sum(r.status in ("ERROR", "MAX_RECOVERY_ATTEMPTS_EXCEEDED") for r in runs.values()),
        intent_accuracy=correct / len(chosen),
        calls_by_tier=totals.calls_by_tier,
        tokens=totals.input_tokens + totals.output_tokens,
        cost_usd=usd(totals.cost_nano_usd),
        strongest_model=strongest,
        strongest_cost_usd=usd(_cost_on(pod, strongest, run_ids)),
        cycle_p50_s=statistics.median(cycles),
        cycle_p95_s=cycles[min(len(cycles) - 1, round(0.95 * (len(cycles) - 1)))],
        replies_in_outbox=len(pod.outbox.messages(run_ids=run_ids)),
        audit=_sign_and_verify(pod),
        seconds=seconds,
    )


def _reasons(pod: podium.Podium, run_ids: list[str]) -> dict[str, int]:
    ours = set(run_ids)
    kinds = Counter(
        r.reason.split(":", 1)[0] for r in pod.reviews.list(status=None, limit=1_000_000) if r.run_id in ours
    )
    return dict(kinds.most_common())


def _cost_on(pod: podium.Podium, model: str, run_ids: list[str]) -> int:
    """What the runs' ledger would hold had every model call gone to `model`, at the same tokens: the baseline
    of "always the strongest tier". A local model's compute is estimated from its own measured seconds per token
    in these runs. Tool fees and review minutes are the same either way and are kept as they are."""
    t = tables.ledger
    with pod.engine.connect() as conn:
        rows = conn.execute(
            sa.select(
                t.c.kind, t.c.resource, t.c.input_tokens, t.c.output_tokens, t.c.compute_seconds, t.c.cost_nano_usd
            ).where(t.c.run_id.in_(run_ids))
        ).all()
    price = pod.models.entry(model).price
    own = [r for r in rows if r.resource == model]
    own_tokens = sum(r.input_tokens + r.output_tokens for r in own)
    seconds_per_token = sum(r.compute_seconds for r in own) / own_tokens if own_tokens else 0.0
    total = 0
    for r in rows:
        if r.kind != "model":
            total += r.cost_nano_usd
        else:
            tokens = r.input_tokens + r.output_tokens
            total += price.cost_nano_usd(r.input_tokens, r.output_tokens, tokens * seconds_per_token)
    return total


def _sign_and_verify(pod: podium.Podium) -> Verification:
    """Sign the audit log's Merkle root as the demo leaves it (a checkpoint), then verify everything before it."""
    pod.audit.checkpoint()
    return pod.verify_audit()
