"""Humans on the loop: exception rules, durable reviews bound to the exact action, and what people decide.

`await_decision` (the durable wait, DBOS steps) loads on first use: reading the queue does not need DBOS.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from podium.review._context import approvals_scope, assess, workflow_scope
from podium.review._metrics import Fatigue, ReviewMetrics
from podium.review._queue import BulkDecision, DecisionDetails, ReviewRequest, Reviews, wake_withdrawn, withdraw_reviews
from podium.review._rules import DATA_CLASSES, NO_RULES, OWNER, TOO_LARGE, Escalation, ExceptionRules, Facts, Judgement
from podium.review._schema import problems
from podium.review._stage import ExceptionStage

if TYPE_CHECKING:
    from podium.review._wait import await_decision


def __getattr__(name: str) -> Any:
    if name != "await_decision":
        raise AttributeError(f"module 'podium.review' has no attribute {name!r}")
    return importlib.import_module("podium.review._wait").await_decision


__all__ = [
    "DATA_CLASSES",
    "NO_RULES",
    "OWNER",
    "TOO_LARGE",
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
