"""The workflow front door: which run, which step, which call within the step.

The call key (run, step, n-th call in the step) is the same each time a step re-runs after a crash, so the
ledger, the audit log and idempotent tools can recognise work they have already recorded. A step installs itself
as the front door of the governed calls it makes (`podium.governance` asks the door in force).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from dbos import DBOS

from podium.errors import UsageError
from podium.governance._pipeline import Approval
from podium.governance._site import CallSite, enter_door

if TYPE_CHECKING:
    from podium.review._rules import ExceptionRules, Facts


@dataclass
class StepScope:
    run_id: str
    step_id: int
    step_name: str
    calls: int = field(default=0)
    workflow: str | None = None


def _no_facts() -> Facts:
    from podium.review._rules import Facts  # the review package imports this module

    return Facts()


@dataclass
class WorkflowScope:
    """One execution of a workflow body in this process: its name, its exception rules, and what it has assessed
    so far. The facts are rebuilt when a recovered run replays its body, since they come from recorded step
    results."""

    name: str
    rules: ExceptionRules
    facts: Facts = field(default_factory=_no_facts)


_workflow: ContextVar[WorkflowScope | None] = ContextVar("podium_workflow", default=None)
_approvals: ContextVar[tuple[Approval, ...]] = ContextVar("podium_approvals", default=())
_scope: ContextVar[StepScope | None] = ContextVar("podium_step_scope", default=None)


@contextmanager
def workflow_scope(name: str, rules: ExceptionRules) -> Iterator[WorkflowScope]:
    """Mark the code inside as the body of workflow `name`, governed by `rules` (set by the `@workflow` wrapper)."""
    scope = WorkflowScope(name, rules)
    token = _workflow.set(scope)
    try:
        with enter_door(_WorkflowBody(name)):
            yield scope
    finally:
        _workflow.reset(token)


def current_workflow() -> WorkflowScope | None:
    return _workflow.get()


@contextmanager
def approvals_scope(approvals: tuple[Approval, ...]) -> Iterator[None]:
    """Let the governor perform these approved actions in the code inside (set by the `@step` wrapper)."""
    token = _approvals.set(approvals)
    try:
        yield
    finally:
        _approvals.reset(token)


def current_approvals() -> tuple[Approval, ...]:
    return _approvals.get()


@contextmanager
def step_scope(step_name: str) -> Iterator[StepScope | None]:
    """Mark the code inside as one execution of a durable step (called by the `@step` wrapper).

    A step function called outside any workflow is a plain function call: there is no scope.
    """
    run_id, step_id = DBOS.workflow_id, DBOS.step_id
    if run_id is None or step_id is None:
        yield None
        return
    workflow = _workflow.get()
    scope = StepScope(run_id, step_id, step_name, workflow=workflow.name if workflow else None)
    token = _scope.set(scope)
    try:
        with enter_door(_StepDoor(scope)):
            yield scope
    finally:
        _scope.reset(token)


def current_step() -> StepScope | None:
    return _scope.get()


@dataclass(frozen=True)
class _StepDoor:
    """A step as a front door: its calls are keyed by run, step and position, and only its first may wait for a
    person (on approval the step runs again from its start)."""

    scope: StepScope

    def next_site(self, what: str) -> CallSite:
        scope = self.scope
        scope.calls += 1
        return CallSite(
            f"{scope.run_id}:{scope.step_id}:{scope.calls}",
            scope.run_id,
            scope.step_id,
            scope.workflow,
            door="workflow",
            can_wait=scope.calls == 1,
        )


@dataclass(frozen=True)
class _WorkflowBody:
    """A workflow's body between steps: no governed call may happen there, since it would not be recorded once."""

    name: str

    def next_site(self, what: str) -> CallSite:
        raise UsageError(
            f"{what} was called in the body of workflow {self.name!r} (run {DBOS.workflow_id}), outside any step. "
            "Move it into a function decorated with @podium.step, so that it runs exactly once and is recorded once."
        )
