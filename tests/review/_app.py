"""Refunds: workflows whose exception rules the review tests exercise (registered with DBOS at import)."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import podium
from podium.models import TrainedClassifier

OWNER = "refunds-owner@example.com"
LEAD = "refunds-lead@example.com"
INTENT_MODEL = "intent-model"


REFUND_FEE_USD = 0.001  # what the payment provider charges a refund: what a budget can run out of


@podium.tool(fee_usd=REFUND_FEE_USD)
def refund(customer: str, amount_usd: float, note: str = "") -> str:
    """Pay `amount_usd` back to `customer` (the side effect: one outbox row per call site)."""
    return "paid" if podium.send_to_outbox("refunds", customer, f"{amount_usd:.2f} {note}".strip()) else "paid before"


def log_note(text: str) -> str:
    """Keep a note on the case (a side effect no rule guards)."""
    return "noted" if podium.send_to_outbox("notes", "case", text) else "noted before"


refunder = podium.Agent("refunder", owner=OWNER, team="refunds", models=[], tools=[refund, log_note])
app = podium.App(agents=[refunder], tools=[refund, log_note], models=[TrainedClassifier(INTENT_MODEL)])

RULES = podium.ExceptionRules(
    value_above_usd=100.0,
    confidence_below=0.5,
    compliance_flags={"chargeback"},
    data_classes={"card_number"},
    escalation=podium.Escalation(("team:refunds", LEAD, podium.OWNER), deadline=timedelta(days=1)),
    escalation_by_reason={"compliance": podium.Escalation(("team:compliance", podium.OWNER))},
    tools={"refund"},
)
QUICK = replace(
    RULES, escalation=podium.Escalation(("team:refunds", LEAD, podium.OWNER), deadline=timedelta(seconds=1))
)
QUICK_HOLD = replace(RULES, escalation=replace(QUICK.escalation, on_expiry="hold"))

tamper = {"extra_usd": 0.0}  # added to the amount the step proposes, to alter an action after its approval


@podium.step(name="tests.review.pay")
def pay(customer: str, amount_usd: float, note: str) -> str:
    return str(refunder.call_tool("refund", customer=customer, amount_usd=amount_usd + tamper["extra_usd"], note=note))


@podium.step(name="tests.review.pay_twice")
def pay_twice(customer: str, amount_usd: float) -> str:
    first = refunder.call_tool("refund", customer=customer, amount_usd=amount_usd)
    second = refunder.call_tool("refund", customer=customer, amount_usd=amount_usd)  # the same action again
    return f"{first}, {second}"


def _refund(customer: str, amount_usd: float, confidence: float, note: str, flags: tuple[str, ...] = ()) -> str:
    podium.assess(
        value_usd=amount_usd,
        flags=flags,
        judgement=podium.Judgement(INTENT_MODEL, f"refund request from {customer}", "refund", confidence),
        summary=f"{customer} asks for {amount_usd:.2f} back",
    )
    try:
        return pay(customer, amount_usd, note)
    except podium.ActionRejected as rejected:
        return f"not paid: {rejected.status}"  # type: ignore[attr-defined]


@podium.workflow(name="tests.refund", exceptions=RULES)
def refund_flow(
    customer: str, amount_usd: float, confidence: float = 0.9, note: str = "", flags: tuple[str, ...] = ()
) -> str:
    return _refund(customer, amount_usd, confidence, note, flags)


@podium.workflow(name="tests.refund_quick", exceptions=QUICK)
def refund_quick(customer: str, amount_usd: float, confidence: float = 0.9, note: str = "") -> str:
    return _refund(customer, amount_usd, confidence, note)


@podium.workflow(name="tests.refund_quick_hold", exceptions=QUICK_HOLD)
def refund_quick_hold(customer: str, amount_usd: float, confidence: float = 0.9, note: str = "") -> str:
    return _refund(customer, amount_usd, confidence, note)


@podium.workflow(name="tests.refund_twice", exceptions=RULES)
def refund_twice(customer: str, amount_usd: float) -> str:
    podium.assess(value_usd=amount_usd)
    return pay_twice(customer, amount_usd)


@podium.step(name="tests.review.note_then_pay")
def note_then_pay(customer: str, amount_usd: float) -> str:
    refunder.call_tool("log_note", text=f"refund of {amount_usd} for {customer}")
    return str(refunder.call_tool("refund", customer=customer, amount_usd=amount_usd))


@podium.workflow(name="tests.refund_after_note", exceptions=RULES)
def refund_after_note(customer: str, amount_usd: float) -> str:
    podium.assess(value_usd=amount_usd)
    return note_then_pay(customer, amount_usd)


@podium.workflow(name="tests.refund_reviewed", exceptions=RULES)
def refund_reviewed(customer: str, amount_usd: float) -> podium.Reviewed[str]:
    """Pay, and tell the caller whether a person was asked first and which review let the payment through."""
    podium.assess(value_usd=amount_usd)
    return pay.reviewed(customer, amount_usd, "")
