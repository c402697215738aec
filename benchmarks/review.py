"""Corrections teach: the exception rate and the accuracy of what is resolved alone, over a stream of tickets, with
learning on and off.

    python -m benchmarks.review [--per-intent 5] [--tickets 2000] [--window 200]

The support-triage example's classifier starts weak: trained on `--per-intent` BANKING77 tickets per intent.
Then a stream of other BANKING77 training tickets is triaged under the example's exception rules (unsure, a
sensitive intent, or a card number in the reply: a person looks). A simulated reviewer decides every exception
through the review queue with the dataset's label: approve when the model's intent was right, reject with the
right label when it was not. With learning on, the classifier is retrained on those labels after each window of
tickets (`Podium.learn`, what `podium worker` does once PODIUM_RETRAIN_AFTER labels arrived); with learning off it
is not. Replies are drafted from a template instead of the local LLM, so the run measures the loop, not the LLM.
SQLite. Writes benchmarks/results/review.json, RESULTS.md, and the plot docs/review.svg.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import threading
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import podium
from benchmarks._report import write_result
from podium._charts import Series, line_chart
from podium.testing import sign_in
from podium_examples.support_triage import workflow as wf
from podium_examples.support_triage.tickets import TRAIN_CSV, Ticket, load_tickets

PLOT = Path(__file__).parent.parent / "docs" / "review.svg"
REVIEW_MINUTES = 1.5  # what each simulated decision is recorded as taking


@podium.step(name="bench.review.draft")
def template_draft(intent: str) -> str:
    return f"Thank you for your message about {intent.replace('_', ' ')}. We are looking into it and will reply soon."


@podium.workflow(name="bench.review.triage", exceptions=wf.RULES)
def triage(ticket: Ticket) -> wf.TriageOutcome:
    """The example's triage workflow, with a template draft in place of the LLM's."""
    prediction = wf.classify(ticket)
    facts = podium.assess(
        judgement=podium.Judgement(wf.INTENT_MODEL, ticket.text, prediction.label, prediction.confidence),
        flags={f"intent:{prediction.label}"},
    )
    draft = template_draft(prediction.label)
    reasons = wf.RULES.reasons(facts, {"customer_id": ticket.customer, "body": draft})
    try:
        wf.deliver(ticket.customer, draft)
    except podium.ActionRejected as rejected:
        return wf.TriageOutcome(ticket.id, prediction.label, prediction.confidence, rejected.status, reasons[0])  # type: ignore[attr-defined]
    outcome = "sent_after_review" if reasons else "sent"
    return wf.TriageOutcome(
        ticket.id, prediction.label, prediction.confidence, outcome, reasons[0] if reasons else None
    )


@dataclass(frozen=True)
class Window:
    tickets: int
    exception_rate: float
    low_confidence_rate: float
    auto_accuracy: float


class Reviewer(threading.Thread):
    """Decides every open request with the dataset's label, as a person would with the ticket in front of them."""

    def __init__(self, pod: podium.Podium, truth: dict[str, str]) -> None:
        super().__init__(daemon=True)
        self.pod, self.truth, self.stop = pod, truth, threading.Event()
        self.me = sign_in(pod, wf.SUPPORT_LEAD)  # in the triage workflow's escalation chain

    def run(self) -> None:
        while not self.stop.is_set():
            for request in self.pod.reviews.list(status="open", limit=1000):
                assert request.judgement is not None
                label = self.truth[request.run_id]
                decide = self.pod.reviews.approve if request.judgement["label"] == label else self.pod.reviews.reject
                decide(request.id, by=self.me, label=label, minutes=REVIEW_MINUTES)
            time.sleep(0.05)


def run_stream(
    seed_set: list[Ticket], stream: list[Ticket], window: int, *, learning: bool
) -> tuple[list[Window], dict[str, float]]:
    with tempfile.TemporaryDirectory() as home, podium.launch(podium.Settings(home=Path(home)), wf.app) as pod:
        pod.trained.train_classifier(wf.INTENT_MODEL, [t.text for t in seed_set], [t.category for t in seed_set])
        truth: dict[str, str] = {}
        reviewer = Reviewer(pod, truth)
        reviewer.start()
        windows: list[Window] = []
        for start in range(0, len(stream), window):
            batch = stream[start : start + window]
            runs = []
            for ticket in batch:
                run_id = f"{'learn' if learning else 'fixed'}-{ticket.id}"
                truth[run_id] = ticket.category
                runs.append((ticket, triage.options(run_id=run_id).start(ticket)))
            outcomes = [(ticket, run.result()) for ticket, run in runs]
            auto = [(t, o) for t, o in outcomes if o.exception is None]
            windows.append(
                Window(
                    len(batch),
                    1 - len(auto) / len(batch),
                    sum(o.exception == "low_confidence" for _, o in outcomes) / len(batch),
                    sum(o.intent == t.category for t, o in auto) / len(auto) if auto else 0.0,
                )
            )
            print(
                f"{'learning' if learning else 'fixed   '} tickets {start + len(batch):5d}: {windows[-1]}", flush=True
            )
            if learning:
                pod.learn(min_new=1)
        reviewer.stop.set()
        reviewer.join()
        metrics = pod.reviews.metrics()
        summary = {
            "judgment_yield": metrics.judgment_yield or 0.0,
            "review_latency_p50_s": metrics.latency_p50_s or 0.0,
            "fatigue_rules": float(len(metrics.fatigue)),
        }
        for signal in metrics.fatigue:
            print(f"guardrail fatigue: {signal.advice}")
        return windows, summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-intent", type=int, default=5, help="training tickets per intent at the start")
    parser.add_argument("--tickets", type=int, default=2000, help="tickets in the stream")
    parser.add_argument("--window", type=int, default=200, help="tickets between retrainings (and per data point)")
    args = parser.parse_args()
    tickets = load_tickets(TRAIN_CSV)
    random.Random(7).shuffle(tickets)
    seen: dict[str, int] = defaultdict(int)
    seed_set, rest = [], []
    for ticket in tickets:
        (seed_set if seen[ticket.category] < args.per_intent else rest).append(ticket)
        seen[ticket.category] += 1
    stream = rest[: args.tickets]
    learned, summary = run_stream(seed_set, stream, args.window, learning=True)
    fixed, _ = run_stream(seed_set, stream, args.window, learning=False)

    points = [(i + 1) * args.window for i in range(len(learned))]
    tail = max(1, len(learned) // 5)  # "end": the last fifth of the stream (one window is noisy)

    def end(windows: list[Window], attribute: str) -> float:
        return round(sum(getattr(w, attribute) for w in windows[-tail:]) / tail, 3)

    PLOT.write_text(
        line_chart(
            "Exceptions and auto-resolved accuracy as reviewers' labels retrain the classifier",
            "tickets triaged",
            "share",
            [
                Series("exception rate, learning", list(zip(points, [w.exception_rate for w in learned], strict=True))),
                Series(
                    "exception rate, no learning",
                    list(zip(points, [w.exception_rate for w in fixed], strict=True)),
                    dashed=True,
                ),
                Series(
                    "auto-resolved accuracy, learning",
                    list(zip(points, [w.auto_accuracy for w in learned], strict=True)),
                ),
                Series(
                    "auto-resolved accuracy, no learning",
                    list(zip(points, [w.auto_accuracy for w in fixed], strict=True)),
                    dashed=True,
                ),
            ],
            x_range=(0, points[-1]),
            y_range=(0.0, 1.0),
        )
    )
    rows = [
        (
            f"{p}",
            f"{a.exception_rate:.1%}",
            f"{b.exception_rate:.1%}",
            f"{a.auto_accuracy:.1%}",
            f"{b.auto_accuracy:.1%}",
        )
        for p, a, b in zip(points, learned, fixed, strict=True)
    ]
    write_result(
        "review",
        title="Corrections teach: exception rate and auto-resolved accuracy, learning on vs off",
        method=(
            f"Classifier trained on {args.per_intent} BANKING77 tickets per intent ({len(seed_set)} in all); then "
            f"{len(stream)} other training tickets triaged under the support example's exception rules, in windows "
            f"of {args.window}. A simulated reviewer decides each exception through the review queue with the "
            "dataset's label (approve if the intent was right, else reject with the right label); with learning on, "
            "the classifier is retrained on those labels after each window. Template drafts (no LLM); SQLite. "
            "Sensitive intents always go to a person, so the exception rate cannot fall below their share. "
            f"'end' figures in the JSON are the mean of the last {tail} windows. Plot: docs/review.svg."
        ),
        columns=(
            "tickets",
            "exceptions, learning",
            "exceptions, no learning",
            "auto accuracy, learning",
            "auto accuracy, no learning",
        ),
        rows=rows,
        data={
            "exception_rate_start": round(learned[0].exception_rate, 3),
            "exception_rate_end": end(learned, "exception_rate"),
            "auto_accuracy_end": end(learned, "auto_accuracy"),
            "exception_rate_end_no_learning": end(fixed, "exception_rate"),
            "auto_accuracy_end_no_learning": end(fixed, "auto_accuracy"),
            "auto_accuracy_start": round(learned[0].auto_accuracy, 3),
            "low_confidence_rate_end": end(learned, "low_confidence_rate"),
            "low_confidence_rate_end_no_learning": end(fixed, "low_confidence_rate"),
            "end_means_last_windows": tail,
            "judgment_yield_learning": round(summary["judgment_yield"], 3),
            "series_learning": [{k: round(v, 3) for k, v in w.__dict__.items()} for w in learned],
            "series_no_learning": [{k: round(v, 3) for k, v in w.__dict__.items()} for w in fixed],
            "per_intent": args.per_intent,
            "tickets": len(stream),
            "window": args.window,
        },
    )


if __name__ == "__main__":
    main()
