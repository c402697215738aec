"""Customer-support triage, governed end to end.

Per ticket: the specialised intent classifier labels it (local tier, fractions of a millisecond of CPU), the
router has the reply drafted by the local LLM or by a remote tier declared in podium.toml, and the reply is sent
through a tool that writes to the outbox exactly once. The workflow's exception rules decide when a person looks
first: the classifier is unsure, the intent is sensitive, or the draft holds a card number. The run then waits
durably for a person to approve, edit or reject the exact reply; their label for the ticket retrains the
classifier.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated

from pydantic import Field

import podium
from podium.errors import RequestTooLarge
from podium.models import Prediction, TrainedClassifier
from podium.review import TOO_LARGE
from podium_examples.support_triage.tickets import Ticket

INTENT_MODEL = "intent-classifier"
DRAFT_MODEL = "smollm2-135m"
# Drafts are routed: the local LLM, or any intermediate or frontier model podium.toml declares (docs/costs.md).
DRAFT_MODELS = (DRAFT_MODEL, "tier:intermediate", "tier:frontier")
CONFIDENCE_FLOOR = 0.5
SUPPORT_LEAD = "support-lead@example.com"

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

RULES = podium.ExceptionRules(
    confidence_below=CONFIDENCE_FLOOR,
    compliance_flags={f"intent:{intent}" for intent in SENSITIVE_INTENTS},
    data_classes={"card_number"},
    # The support team first; after a working day the lead; then the agent's owner. Nobody answers the customer
    # on a sensitive ticket by default: an unanswered request is held, not dropped.
    escalation=podium.Escalation(
        ("team:support", SUPPORT_LEAD, podium.OWNER), deadline=timedelta(hours=8), on_expiry="hold"
    ),
)
"""When a person looks before a reply goes out; everything else is answered without one."""

DRAFT_INSTRUCTIONS = (
    "You are a helpful customer-support agent at a bank. Write a short, polite reply (two or three "
    "sentences) to the customer's message. Do not ask for passwords or card numbers."
)


def send_reply(customer_id: str, body: Annotated[str, Field(min_length=1)]) -> str:
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


@podium.workflow(name="support_triage", exceptions=RULES)
def triage_ticket(ticket: Ticket) -> TriageOutcome:
    prediction = classify(ticket)
    podium.assess(
        judgement=podium.Judgement(INTENT_MODEL, ticket.text, prediction.label, prediction.confidence),
        flags={f"intent:{prediction.label}"},
        summary=f"{ticket.id}: {ticket.text[:200]} (intent {prediction.label}, {prediction.confidence:.0%})",
    )
    try:
        draft = draft_reply(ticket, prediction.label)
    except RequestTooLarge as too_large:
        # Longer than the draft model reads: a person writes this reply (nothing is sent that no one wrote).
        podium.assess(
            flags={TOO_LARGE},
            summary=f"{ticket.id}: too long for {too_large.model} to draft a reply ({too_large.tokens:,} tokens, it "
            f"reads {too_large.limit:,}): write it with `podium review edit ID --set body=...`. {ticket.text[:150]}",
        )
        draft = ""
    try:
        sent = deliver.reviewed(ticket.customer, draft)  # waits for a person first if an exception fires
    except podium.ActionRejected as rejected:
        status, reasons = rejected.status, rejected.reasons  # which review said no, and what it was asked about
        return TriageOutcome(ticket.id, prediction.label, prediction.confidence, status, reasons[0])
    # What the send actually went through: any rule, a budget that asks a person, or an `@exception` policy.
    outcome, exception = ("sent_after_review", sent.reasons[0]) if sent.waited else ("sent", None)
    return TriageOutcome(ticket.id, prediction.label, prediction.confidence, outcome, exception)
