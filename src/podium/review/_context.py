"""What the exception stage knows of the run it serves: the workflow's rules, what the run has assessed so far, and
the approvals the current step runs under. The workflow wrappers (`podium.workflows`) set them; review reads them.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field

from podium.errors import UsageError
from podium.governance import Approval
from podium.review._rules import ExceptionRules, Facts, Judgement


@dataclass
class WorkflowScope:
    """One execution of a workflow body in this process: its name, its exception rules, and what it has assessed
    so far. The facts are rebuilt when a recovered run replays its body, since they come from recorded step
    results."""

    name: str
    rules: ExceptionRules
    facts: Facts = field(default_factory=Facts)


_workflow: ContextVar[WorkflowScope | None] = ContextVar("podium_workflow", default=None)
_approvals: ContextVar[tuple[Approval, ...] | None] = ContextVar("podium_approvals", default=None)


@contextmanager
def workflow_scope(name: str, rules: ExceptionRules) -> Iterator[WorkflowScope]:
    """Mark the code inside as the body of workflow `name`, governed by `rules` (set by the `@workflow` wrapper)."""
    scope = WorkflowScope(name, rules)
    token = _workflow.set(scope)
    try:
        yield scope
    finally:
        _workflow.reset(token)


def current_workflow() -> WorkflowScope | None:
    return _workflow.get()


@contextmanager
def approvals_scope(approvals: tuple[Approval, ...]) -> Iterator[None]:
    """Let the governor perform these approved actions in the step inside (set by the `@step` wrapper)."""
    token = _approvals.set(approvals)
    try:
        yield
    finally:
        _approvals.reset(token)


def current_approvals() -> tuple[Approval, ...]:
    return _approvals.get() or ()


def in_step() -> bool:
    """Whether the code runs inside a step (whose wrapper always sets its approvals, if none)."""
    return _approvals.get() is not None


def assess(
    *,
    value_usd: float | None = None,
    confidence: float | None = None,
    flags: Iterable[str] = (),
    judgement: Judgement | None = None,
    summary: str | None = None,
) -> Facts:
    """Tell the exception rules what this run knows: the value at stake, how sure its models are, compliance or
    guardrail flags, the model judgement a person may correct, and a summary for the reviewer.

    Call it in the workflow body, from step results: a recovered run replays the body and so rebuilds its facts.
    Facts accumulate over the run; each tool call is checked against them. Returns the run's facts so far.
    """
    workflow = current_workflow()
    if workflow is None or in_step():
        raise UsageError(
            "assess() records what a workflow run knows: call it in the body of a @podium.workflow, outside any "
            "step (a recovered run replays the body, not finished steps, so facts set in a step would be lost)."
        )
    if confidence is not None and not 0.0 <= confidence <= 1.0:
        raise UsageError(f"confidence={confidence} must be a share between 0 and 1.")
    workflow.facts = workflow.facts.merged(
        value_usd=value_usd,
        confidence=confidence,
        flags=flags,
        judgement=judgement,
        summary=summary,
    )
    return workflow.facts
