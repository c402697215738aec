"""Durable workflows and steps over DBOS, and the control of their runs."""

from podium.workflows._api import DECLARED, Reviewed, Run, Starter, Step, Workflow, step, workflow
from podium.workflows._runs import WORK_QUEUE, RunInfo, Runs, StepInfo

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
