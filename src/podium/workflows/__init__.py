"""Durable workflows and steps over DBOS, and the control of their runs."""

from podium.workflows._api import Reviewed, Run, Starter, Step, Workflow, step, workflow
from podium.workflows._runs import RunInfo, Runs, StepInfo

__all__ = [
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
