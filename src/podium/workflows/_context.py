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

from podium.errors import UsageError
from podium.governance import CallSite, enter_door


@dataclass
class StepScope:
    run_id: str
    step_id: int
    step_name: str
    calls: int = field(default=0)
    workflow: str | None = None


_workflow: ContextVar[str | None] = ContextVar("podium_workflow_name", default=None)
_scope: ContextVar[StepScope | None] = ContextVar("podium_step_scope", default=None)


@contextmanager
def body_scope(name: str) -> Iterator[None]:
    """Mark the code inside as the body of workflow `name`: no governed call may happen there, outside a step."""
    token = _workflow.set(name)
    try:
        with enter_door(_WorkflowBody(name)):
            yield
    finally:
        _workflow.reset(token)


@contextmanager
def step_scope(step_name: str) -> Iterator[StepScope | None]:
    """Mark the code inside as one execution of a durable step (called by the `@step` wrapper).

    A step function called outside any workflow is a plain function call: there is no scope.
    """
    from dbos import DBOS

    run_id, step_id = DBOS.workflow_id, DBOS.step_id
    if run_id is None or step_id is None:
        yield None
        return
    scope = StepScope(run_id, step_id, step_name, workflow=_workflow.get())
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

    @property
    def key(self) -> str:
        return self.scope.run_id

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
            step=scope.step_name,
            door_key=scope.run_id,
        )


@dataclass(frozen=True)
class _WorkflowBody:
    """A workflow's body between steps: no governed call may happen there, since it would not be recorded once."""

    name: str

    @property
    def key(self) -> str:
        from dbos import DBOS

        return str(DBOS.workflow_id or "")

    def next_site(self, what: str) -> CallSite:
        from dbos import DBOS

        raise UsageError(
            f"{what} was called in the body of workflow {self.name!r} (run {DBOS.workflow_id}), outside any step. "
            "Move it into a function decorated with @podium.step, so that it runs exactly once and is recorded once."
        )
