"""Where a governed call happens: which run, which step, which call within the step.

The call key (run, step, n-th call in the step) is the same each time a step re-runs after a crash, so the
ledger, the audit log and idempotent tools can recognise work they have already recorded.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from dbos import DBOS

from podium.errors import UsageError

if TYPE_CHECKING:
    from podium.governance._governor import Call
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


@dataclass(frozen=True)
class Approval:
    """A person's approval of one exact action, which the governor lets through once: the call must propose the
    action with `proposed_digest`, and it performs `arguments` (the proposed ones, or the reviewer's edit)."""

    review_id: str
    resource: str  # the tool (or model) it is for
    proposed_digest: str
    arguments: dict[str, Any]
    approved_digest: str
    reasons: frozenset[str] = frozenset()  # the exceptions the person was asked about, which it covers


@dataclass(frozen=True)
class CallSite:
    """The identity of one governed call, and the workflow it belongs to (budgets and costs are per workflow)."""

    key: str
    run_id: str | None
    step_id: int | None
    workflow: str | None = None
    call: Call | None = None  # what is being executed, once the governor admitted it


_workflow: ContextVar[WorkflowScope | None] = ContextVar("podium_workflow", default=None)
_approvals: ContextVar[tuple[Approval, ...]] = ContextVar("podium_approvals", default=())
_scope: ContextVar[StepScope | None] = ContextVar("podium_step_scope", default=None)
_call: ContextVar[CallSite | None] = ContextVar("podium_call_site", default=None)


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
        yield scope
    finally:
        _scope.reset(token)


def current_step() -> StepScope | None:
    return _scope.get()


def next_call_site(what: str) -> CallSite:
    """The identity of the next governed call: deterministic inside a step, unique outside any run."""
    scope = _scope.get()
    if scope is not None:
        scope.calls += 1
        return CallSite(f"{scope.run_id}:{scope.step_id}:{scope.calls}", scope.run_id, scope.step_id, scope.workflow)
    if DBOS.workflow_id is not None:
        raise UsageError(
            f"{what} was called in the body of workflow run {DBOS.workflow_id}, outside any step. "
            "Move it into a function decorated with @podium.step, so that it runs exactly once "
            "and is recorded once."
        )
    return CallSite(f"adhoc:{uuid.uuid4()}", None, None)


@contextmanager
def call_scope(site: CallSite) -> Iterator[CallSite]:
    """Mark the code inside as executing the governed call `site` (set by the governor)."""
    token = _call.set(site)
    try:
        yield site
    finally:
        _call.reset(token)


def current_call_or_none() -> CallSite | None:
    return _call.get()


def current_call() -> CallSite:
    """The governed call being executed: a tool uses its `key` to make its side effect idempotent."""
    site = _call.get()
    if site is None:
        raise UsageError(
            "current_call() was used outside a governed tool call. Tools reach it only when an agent calls "
            "them: agent.call_tool(...) or from a model's tool call."
        )
    return site
