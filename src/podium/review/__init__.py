"""Humans on the loop: exception rules, durable reviews bound to the exact action, and what people decide."""

from podium.review._context import approvals_scope, assess, workflow_scope
from podium.review._metrics import Fatigue, ReviewMetrics
from podium.review._queue import BulkDecision, DecisionDetails, ReviewRequest, Reviews, wake_withdrawn, withdraw_reviews
from podium.review._rules import DATA_CLASSES, NO_RULES, OWNER, Escalation, ExceptionRules, Facts, Judgement
from podium.review._schema import problems
from podium.review._stage import ExceptionStage
from podium.review._wait import await_decision

__all__ = [
    "DATA_CLASSES",
    "NO_RULES",
    "OWNER",
    "BulkDecision",
    "DecisionDetails",
    "Escalation",
    "ExceptionRules",
    "ExceptionStage",
    "Facts",
    "Fatigue",
    "Judgement",
    "ReviewMetrics",
    "ReviewRequest",
    "Reviews",
    "approvals_scope",
    "assess",
    "await_decision",
    "problems",
    "wake_withdrawn",
    "withdraw_reviews",
    "workflow_scope",
]
