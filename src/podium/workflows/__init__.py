"""Durable workflows and steps over DBOS, and the control of their runs.

The declaring API (`workflow`, `step` and their types, from _api) loads on first use: listing runs needs none of
it, nor the governor and the review queue it builds on.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from podium.workflows._runs import WORK_QUEUE, RunInfo, Runs, StepInfo

if TYPE_CHECKING:
    from podium.workflows._api import DECLARED, Reviewed, Run, Starter, Step, Workflow, step, workflow

_DECLARING = frozenset({"DECLARED", "Reviewed", "Run", "Starter", "Step", "Workflow", "step", "workflow"})


def __getattr__(name: str) -> Any:
    if name not in _DECLARING:
        raise AttributeError(f"module 'podium.workflows' has no attribute {name!r}")
    return getattr(importlib.import_module("podium.workflows._api"), name)


__all__ = [
    "DECLARED",
    "WORK_QUEUE",
    "Reviewed",
    "Run",
    "RunInfo",
    "Runs",
    "Starter",
    "Step",
    "StepInfo",
    "Workflow",
    "step",
    "workflow",
]
