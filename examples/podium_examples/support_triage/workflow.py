"""Customer-support triage, governed end to end.

Per ticket: the specialised intent classifier labels it (local tier, milliseconds of CPU), the router has the
reply drafted by the local LLM or by a remote tier declared in podium.toml, and the reply is sent through a tool
that writes to the outbox exactly once. The workflow's exception rules decide when a person looks first: the
classifier is unsure, any part of the ticket reads as a sensitive intent, the ticket reads unlike anything the
classifier learned from, or the draft holds a card number. The run then waits durably for a person to approve,
edit or reject the exact reply; their label for the ticket retrains the classifier.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated

from pydantic import Field

import podium
from podium.errors import RequestTooLarge
from podium.models import Lexicon, Prediction, TrainedClassifier
from podium.review import TOO_LARGE
from podium_examples.support_triage.tickets import Ticket

INTENT_MODEL = "intent-classifier"
DRAFT_MODEL = "smollm2-135m"
# Drafts are routed: the local LLM, or any intermediate or frontier model podium.toml declares (docs/costs.md).
DRAFT_MODELS = (DRAFT_MODEL, "tier:intermediate", "tier:frontier")
CONFIDENCE_FLOOR = 0.5
SENSITIVE_SHARE = 0.1
"""A person looks when any part of a ticket reads as a sensitive intent with at least this probability."""
FAMILIAR_FLOOR = 0.6
"""A person looks when fewer of a ticket's word pairs than this share are ones the classifier learned from (word
salad, keyword stuffing, another language): its reading of such text says little."""
UNFAMILIAR = "guardrail:unfamiliar_text"
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

SENSITIVE_TERMS = Lexicon(
    (
        # loss and theft
        "stolen",
        "stole",
        "steal*",
        "theft",
        "thief",
        "thieves",
        "robbed",
        "robbery",
        "mugged",
        "pickpocket*",
        "lost",
        "lose",
        "losing",
        "misplac*",
        "missing|gone card*|phone*|wallet|purse|bag",
        "cant|cannot|couldnt|unable|not find|locate card*|phone*|wallet|purse|bag",
        "freez*|frozen|block* card*|phone*",
        # fraud and someone else
        "fraud*",
        "scam*",
        "fishy",
        "suspicious*",
        "unauthori*",
        "hack*",
        "compromis*",
        "without permission|consent|knowledge|authori*",
        "someone|somebody|stranger using|used|copy|cloned|cloning|access*",
        # payments the customer does not recognise
        "recogni*",
        "unknown|uknown|unfamiliar|strange|unusual|random",
        "didnt|never|not make|made|authori*|perform*|buy|bought|submit*",
        "not|isnt|wasnt|werent mine",
        # charged twice
        "twice",
        "duplicat*",
        "double charg*|payment*|transaction*|paid|billed",
        "two|2|three|multiple|several times charg*|paid|billed|debited",
        # money back
        "refund*",
        "reimburs*",
        "chargeback*",
        "money|funds back",
        "disput*",
        "disagree*",
    )
)
"""Words of fraud, loss and disputed money: a person looks at any ticket one sentence of which holds a term, however
it is cased, spaced or padded, whatever the classifier reads (`podium.models.Lexicon`). Written from the training
split's sensitive tickets; it catches what a classifier misreads even alone ("I cannot find my credit card.")."""
SENSITIVE_WORDING = "sensitive_wording"

RULES = podium.ExceptionRules(
    confidence_below=CONFIDENCE_FLOOR,
    compliance_flags={SENSITIVE_WORDING, *(f"intent:{intent}" for intent in SENSITIVE_INTENTS)},
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


def review_flags(prediction: Prediction, text: str) -> set[str]:
    """The flags RULES read for a ticket, from every part of it: its top intent, each sensitive intent that some
    sentence, clause or run of words reads as (SENSITIVE_SHARE or more), UNFAMILIAR when the classifier barely
    knows its wording, and SENSITIVE_WORDING when a sentence holds one of SENSITIVE_TERMS. Text added around a
    sensitive request cannot lower what its part reads as nor unmatch a term, so a harmless question appended to a
    fraud report does not hide it (docs/review.md, "Rules that input cannot steer")."""
    flags = {f"intent:{prediction.label}"}
    flags |= {f"intent:{label}" for label in prediction.read_as(SENSITIVE_INTENTS, SENSITIVE_SHARE)}
    if prediction.familiar < FAMILIAR_FLOOR:
        flags.add(UNFAMILIAR)
    if SENSITIVE_TERMS.found(text):
        flags.add(SENSITIVE_WORDING)
    return flags


def summary(ticket: Ticket, prediction: Prediction) -> str:
    """What a reviewer reads first: the ticket, its intent, any other sensitive intent a part of it reads as, and
    the sensitive terms it holds."""
    also = sorted(prediction.read_as(SENSITIVE_INTENTS, SENSITIVE_SHARE) - {prediction.label})
    parts = f"; parts read as {', '.join(also)}" if also else ""
    terms = sorted(SENSITIVE_TERMS.found(ticket.text))
    words = f"; terms {', '.join(terms)}" if terms else ""
    return f"{ticket.id}: {ticket.text[:200]} (intent {prediction.label}, {prediction.confidence:.0%}{parts}{words})"


@podium.step(name="support_triage.draft")
def draft_reply(ticket: Ticket, intent: str) -> str:
    prompt = f"Customer message (topic: {intent.replace('_', ' ')}):\n{ticket.text}"
    return triage_agent.run(prompt, model=DRAFT_MODELS, max_tokens=80)


@podium.step(name="support_triage.send")
def deliver(customer_id: str, body: str) -> None:
    triage_agent.call_tool("send_reply", customer_id=customer_id, body=body)


@podium.workflow(name="support_triage", exceptions=RULES)
def triage_ticket(ticket: Ticket) -> TriageOutcome:
    try:
        prediction = classify(ticket)
    except RequestTooLarge as too_large:  # more words than the classifier reads part by part: a person reads it
        prediction = Prediction("unread", 0.0)
        podium.assess(
            flags={TOO_LARGE}, summary=f"{ticket.id}: too long for {too_large.model} to read. {ticket.text[:150]}"
        )
    else:
        podium.assess(
            judgement=podium.Judgement(INTENT_MODEL, ticket.text, prediction.label, prediction.confidence),
            flags=review_flags(prediction, ticket.text),
            summary=summary(ticket, prediction),
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
