"""Customer-support triage, governed end to end.

Per ticket: the specialised intent classifier labels it (local tier, fractions of a millisecond of CPU), the
router has the reply drafted by the local LLM or by a remote tier declared in podium.toml, and then either the
reply is sent (through a tool that writes to the outbox exactly once) or, when the classifier is unsure or the
intent is sensitive, the run stops as an exception and waits durably for a person to approve or reject the exact
reply it would send.
"""

from __future__ import annotations

from dataclasses import dataclass

import podium
from podium.models import Prediction, TrainedClassifier
from podium_examples.support_triage.tickets import Ticket

INTENT_MODEL = "intent-classifier"
DRAFT_MODEL = "smollm2-135m"
# Drafts are routed: the local LLM, or any intermediate or frontier model podium.toml declares (docs/costs.md).
DRAFT_MODELS = (DRAFT_MODEL, "tier:intermediate", "tier:frontier")
CONFIDENCE_FLOOR = 0.5
REVIEW_DEADLINE_SECONDS = 3 * 24 * 3600

# Fraud, loss and disputed money: a person looks before anything is said to the customer.
SENSITIVE_INTENTS = frozenset(
    {
        "lost_or_stolen_card",
        "lost_or_stolen_phone",
        "compromised_card",
        "card_payment_not_recognised",
        "cash_withdrawal_not_recognised",
        "direct_debit_payment_not_recognised",
        "transaction_charged_twice",
        "request_refund",
    }
)

DRAFT_INSTRUCTIONS = (
    "You are a helpful customer-support agent at a bank. Write a short, polite reply (two or three "
    "sentences) to the customer's message. Do not ask for passwords or card numbers."
)


def send_reply(customer_id: str, body: str) -> str:
    """Send `body` to the customer. Queued in the outbox; a retried step never sends twice."""
    return "queued" if podium.send_to_outbox("email", customer_id, body) else "already queued"


triage_agent = podium.Agent(
    "support-triage",
    owner="support-operations-lead@example.com",
    models=[INTENT_MODEL, *DRAFT_MODELS],
    tools=[send_reply],
    instructions=DRAFT_INSTRUCTIONS,
)

app = podium.App(agents=[triage_agent], tools=[send_reply], models=[TrainedClassifier(INTENT_MODEL)])
"""What a process needs to run this workflow: `podium worker podium_examples.support_triage.workflow:app`."""


@dataclass(frozen=True)
class TriageOutcome:
    ticket_id: str
    intent: str
    confidence: float
    outcome: str  # sent | sent_after_review | rejected | expired
    exception: str | None


@podium.step(name="support_triage.classify")
def classify(ticket: Ticket) -> Prediction:
    return Prediction.from_text(triage_agent.run(ticket.text, model=INTENT_MODEL))


@podium.step(name="support_triage.draft")
def draft_reply(ticket: Ticket, intent: str) -> str:
    prompt = f"Customer message (topic: {intent.replace('_', ' ')}):\n{ticket.text}"
    return triage_agent.run(prompt, model=DRAFT_MODELS, max_tokens=80)


@podium.step(name="support_triage.send")
def deliver(customer_id: str, body: str) -> None:
    triage_agent.call_tool("send_reply", customer_id=customer_id, body=body)


def exception_reason(prediction: Prediction) -> str | None:
    """Why a person must look at this ticket, or None if the agent may act alone."""
    if prediction.label in SENSITIVE_INTENTS:
        return f"sensitive_intent:{prediction.label}"
    if prediction.confidence < CONFIDENCE_FLOOR:
        return "low_confidence"
    return None


@podium.workflow(name="support_triage")
def triage_ticket(ticket: Ticket) -> TriageOutcome:
    prediction = classify(ticket)
    draft = draft_reply(ticket, prediction.label)
    reason = exception_reason(prediction)
    outcome = "sent"
    if reason is not None:
        decision = podium.request_review(
            agent=triage_agent.name,
            reason=reason,
            summary=f"{ticket.id}: {ticket.text[:200]} (intent {prediction.label}, {prediction.confidence:.0%})",
            action={"tool": "send_reply", "customer_id": ticket.customer, "body": draft},
            deadline_seconds=REVIEW_DEADLINE_SECONDS,
        )
        if decision.status in ("approved", "rejected"):
            podium.route_outcome(decision.approved)  # the person judged the routed draft: the router learns
        if not decision.approved:
            return TriageOutcome(ticket.id, prediction.label, prediction.confidence, decision.status, reason)
        outcome = "sent_after_review"
    deliver(ticket.customer, draft)
    return TriageOutcome(ticket.id, prediction.label, prediction.confidence, outcome, reason)
