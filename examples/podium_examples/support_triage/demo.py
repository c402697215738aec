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
    strongest: StrongestTier | None  # the dearest draft model the router could have used, if it is not local
    cycle_p50_s: float
    cycle_p95_s: float
    replies_in_outbox: int
    one_reply_per_answered_ticket: bool  # every ticket answered has one reply in the outbox, no other has any
    audit: Verification
    seconds: float

    @property
    def cost_per_ticket_usd(self) -> float:
        return self.cost_usd / self.tickets

    def call_rows(self) -> list[tuple[str, str]]:
        """The ledger's rows by tier, each named for what it counts (the ledger files tool calls under the tier
        `tool` and review decisions under `human`)."""
        names = {"tool": "tool calls", "human": "review decisions"}
        return [
            (names.get(tier, f"model calls, {tier} tier"), f"{n}") for tier, n in sorted(self.calls_by_tier.items())
        ]

    def replies_row(self) -> tuple[str, str]:
        """The outbox count, and whether it is what exactly-once promises (checked here, not assumed)."""
        check = "one per answered ticket" if self.one_reply_per_answered_ticket else "NOT one per answered ticket"
        return "replies in outbox", f"{self.replies_in_outbox} ({check})"

    def baseline_rows(self) -> list[tuple[str, str]]:
        """The ledger's cost set against every draft on the strongest tier declared, with that model's price."""
        s = self.strongest
        if s is None:
            return [("drafts on a stronger tier", "none declared (podium.toml, docs/costs.md)")]
        return [
            (
                f"cost, all tickets, every draft on {s.model}",
                f"${s.cost_usd:.6f} ({s.cost_usd / (self.cost_usd or 1):.1f}x)",
            ),
            (
                f"{s.model}'s price ({s.tier} tier)",
                f"${s.input_per_mtok:g} / ${s.output_per_mtok:g} per M tokens in / out",
            ),
        ]


@dataclass(frozen=True)
class StrongestTier:
    """The most expensive model the router could have drafted with, and what the runs would have cost on it."""

    model: str
    tier: str
    input_per_mtok: float
    output_per_mtok: float
    cost_usd: float


def ensure_demo_admin(settings: podium.Settings) -> bool:
    """Give a new demo home its admin: the support lead, in team support (the first level of every review chain
    here), with their key stored for the command line, so `podium review approve ID` then acts as them. A home
    that has an admin already is left alone. Returns True if it made one."""
    with podium.connect(settings) as pod:
        if settings.key_file.exists() or pod.people.admins():
            return False
        pod.keys.bootstrap(wf.SUPPORT_LEAD, store_in=settings.key_file, teams=["support"])
        return True


def ensure_intent_model(settings: podium.Settings, train_file: Path = TRAIN_CSV) -> bool:
    """Train the intent classifier on labelled tickets unless podium already has one; return True if trained."""
    with podium.connect(settings) as pod:
        if pod.trained.has(wf.INTENT_MODEL):
            return False
        train_intent_model(pod, load_tickets(train_file))
        return True


def train_intent_model(pod: podium.Podium, examples: list[Ticket], *, by: podium.Identity | None = None) -> Path:
    """Train the intent classifier on labelled tickets and record its file (as `by`, if a person asked: see
    `TrainedModels`); return the file's path."""
    texts, categories = [t.text for t in examples], [t.category for t in examples]
    return pod.trained.train_classifier(wf.INTENT_MODEL, texts, categories, by=by)


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
    ensure_demo_admin(settings)
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
    answered = {r.id for r in runs.values() if r.status == "SUCCESS" and r.output.outcome.startswith("sent")}
    replies = Counter(m.run_id for m in pod.outbox.messages(run_ids=run_ids))
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
        strongest=_strongest(pod, run_ids),
        cycle_p50_s=statistics.median(cycles),
        cycle_p95_s=cycles[min(len(cycles) - 1, round(0.95 * (len(cycles) - 1)))],
        replies_in_outbox=sum(replies.values()),
        one_reply_per_answered_ticket=replies == Counter(answered),
        audit=_sign_and_verify(pod),
        seconds=seconds,
    )


def _reasons(pod: podium.Podium, run_ids: list[str]) -> dict[str, int]:
    ours = set(run_ids)
    kinds = Counter(
        r.reason.split(":", 1)[0] for r in pod.reviews.list(status=None, limit=1_000_000) if r.run_id in ours
    )
    return dict(kinds.most_common())


def _strongest(pod: podium.Podium, run_ids: list[str]) -> StrongestTier | None:
    """What the runs' ledger would hold had every draft gone to the dearest model the router could have used, at
    the same token counts (a remote model's tokenizer counts somewhat differently); classifications, tool fees
    and review minutes are the same either way. None when that model is local: there is no stronger tier."""
    drafters = pod.models.expand_tiers(wf.DRAFT_MODELS)
    entry = pod.models.entry(drafters[-1])
    if entry.tier == "local":
        return None
    t = tables.ledger
    with pod.engine.connect() as conn:
        rows = conn.execute(
            sa.select(t.c.kind, t.c.resource, t.c.input_tokens, t.c.output_tokens, t.c.cost_nano_usd).where(
                t.c.run_id.in_(run_ids)
            )
        ).all()
    total = sum(
        entry.price.cost_nano_usd(r.input_tokens, r.output_tokens, 0.0)
        if r.kind == "model" and r.resource in drafters
        else r.cost_nano_usd
        for r in rows
    )
    price = entry.price
    return StrongestTier(entry.name, entry.tier, price.input_per_mtok, price.output_per_mtok, usd(total))


def _sign_and_verify(pod: podium.Podium) -> Verification:
    """Sign the audit log's Merkle root as the demo leaves it (a checkpoint), then verify everything before it."""
    pod.audit.checkpoint()
    return pod.verify_audit()
