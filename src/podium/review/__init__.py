"""Humans on the loop: exception rules, durable reviews bound to the exact action, and what people decide."""

from podium.review._metrics import Fatigue, ReviewMetrics
from podium.review._queue import BulkDecision, DecisionDetails, ReviewRequest, Reviews
from podium.review._rules import DATA_CLASSES, OWNER, Escalation, ExceptionRules, Facts, Judgement, assess
from podium.review._stage import ExceptionStage

__all__ = [
    "DATA_CLASSES",
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
    "assess",
]
