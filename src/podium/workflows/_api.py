"""Declaring durable workflows and steps: thin, typed decorators over DBOS.

    @podium.step
    def classify(ticket: Ticket) -> Prediction: ...

    @podium.workflow
    def triage(ticket: Ticket) -> Outcome:
        prediction = classify(ticket)
        ...

    run = triage.options(run_id="ticket-42").start(ticket)
    run.result()

A step whose governed action may wait for a person tells the workflow whether it did: `deliver.reviewed(...)`
returns its result with the reviews that approved it (`Reviewed`).

A workflow resumes after a crash at its last finished step; a step runs at least once, so a side effect inside
one must be idempotent (the governor and podium's tools key their writes by run and step).
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Generic, ParamSpec, TypeVar, overload

from podium import _current
from podium._events import Event
from podium.errors import GovernanceError, ReviewRequired, UsageError
from podium.governance import Approval
from podium.review import NO_RULES, ExceptionRules, approvals_scope, workflow_scope
from podium.workflows._arguments import parameters_of
from podium.workflows._context import body_scope, step_scope

if TYPE_CHECKING:
    from dbos import WorkflowHandle

P = ParamSpec("P")
R = TypeVar("R")

DECLARED: dict[str, object] = {}
"""Every workflow declared in this process, by name (DBOS keeps its own registry, process-wide, too)."""


def _emit(event: Event) -> None:
    podium = _current.get_or_none()
    if podium is not None:
        podium.events.emit(event)


@dataclass(frozen=True)
class Reviewed(Generic[R]):
    """A step's result, and the reviews its governed actions waited for (none: no person was asked)::

    sent = deliver.reviewed(ticket.customer, draft)  # ActionRejected if a person said no
    outcome = "sent_after_review" if sent.waited else "sent"
    """

    value: R
    reviews: tuple[str, ...] = ()  # ids of the reviews that approved the step's actions, in the order decided
    reasons: tuple[str, ...] = ()  # the exceptions they were asked about (rules, budgets, policies), in that order

    @property
    def waited(self) -> bool:
        """Whether the step waited for a person before its action was performed."""
        return bool(self.reviews)


class Step(Generic[P, R]):
    """A durable step: its result is recorded, so a resumed workflow does not run it again."""

    def __init__(self, fn: Callable[P, R], name: str, retries: int) -> None:
        from dbos import DBOS  # on first use: a process that only reads runs does not load DBOS

        self.name = name

        @functools.wraps(fn)
        def scoped(*args: P.args, **kwargs: P.kwargs) -> R:
            with step_scope(name) as scope:
                run_id, step_id = (scope.run_id, scope.step_id) if scope else (None, None)
                _emit(Event("step_started", run_id, name, step_id))
                result = fn(*args, **kwargs)
                _emit(Event("step_finished", run_id, name, step_id))
                return result

        self._registered: Callable[P, R] = DBOS.step(
            name=name,
            retries_allowed=retries > 0,
            max_attempts=retries + 1,
            should_retry=lambda exc: not isinstance(exc, (GovernanceError, UsageError)),
        )(scoped)
        functools.update_wrapper(self, fn)

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        """Run the step; if an exception rule stops one of its calls, wait (durably) for a person's decision on
        it, then run the step again with the approval, or raise ActionRejected."""
        return self.reviewed(*args, **kwargs).value

    def reviewed(self, *args: P.args, **kwargs: P.kwargs) -> Reviewed[R]:
        """Run the step as a call does, and return its result with the reviews it waited for."""
        approvals: tuple[Approval, ...] = ()
        while True:
            try:
                with approvals_scope(approvals):
                    value = self._registered(*args, **kwargs)
                return Reviewed(
                    value, tuple(a.review_id for a in approvals), tuple(r for a in approvals for r in sorted(a.reasons))
                )
            except ReviewRequired as needed:
                from podium.review import await_decision

                approvals = (*approvals, await_decision(needed))


class Workflow(Generic[P, R]):
    """A durable workflow. Call it to run inline, or `start` it to run in the background."""

    def __init__(self, fn: Callable[P, R], name: str, exceptions: ExceptionRules) -> None:
        from dbos import DBOS, make_pydantic_args_validator

        self.name = name
        self.parameters = parameters_of(fn)  # recorded at launch: a run started by name is checked against them

        @functools.wraps(fn)
        def instrumented(*args: P.args, **kwargs: P.kwargs) -> R:
            run_id = DBOS.workflow_id
            _emit(Event("workflow_started", run_id, name))
            try:
                with workflow_scope(name, exceptions), body_scope(name):
                    result = fn(*args, **kwargs)
            except BaseException as exc:
                _emit(Event("workflow_failed", run_id, name, error=type(exc).__name__))
                raise
            _emit(Event("workflow_returning", run_id, name))
            return result

        # Arguments are validated against the type hints, so a run started by name with JSON (from the CLI or
        # another process) gets the dataclasses and models its signature promises.
        validate = make_pydantic_args_validator(fn)
        self._registered: Callable[P, R] = DBOS.workflow(name=name, validate_args=validate)(instrumented)
        functools.update_wrapper(self, fn)
        DECLARED[name] = self

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        return self._registered(*args, **kwargs)

    def start(self, *args: P.args, **kwargs: P.kwargs) -> Run[R]:
        """Start a run with a fresh id and return at once."""
        return self.options().start(*args, **kwargs)

    def options(self, *, run_id: str | None = None, queued: bool = False) -> Starter[P, R]:
        """Start options.

        A `run_id` makes starting idempotent: a second start with the same id returns the existing run instead of
        running the workflow again. `queued` puts the run on podium's work queue, which every launched process
        takes work from (the way to spread runs over workers); otherwise it starts in this process at once.
        """
        return Starter(self, run_id, queued)


@dataclass(frozen=True)
class Starter(Generic[P, R]):
    workflow: Workflow[P, R]
    run_id: str | None
    queued: bool

    def start(self, *args: P.args, **kwargs: P.kwargs) -> Run[R]:
        from dbos import DBOS, SetWorkflowID

        podium = _current.get()  # a clear error if nothing is launched, instead of DBOS's
        if self.run_id is not None and DBOS.get_workflow_status(self.run_id) is not None:
            # Never execute a run twice side by side: an existing run is finished, waiting, or being recovered.
            return Run(DBOS.retrieve_workflow(self.run_id))
        with SetWorkflowID(self.run_id) if self.run_id is not None else contextlib.nullcontext():
            if self.queued:
                handle = podium.work_queue.enqueue(self.workflow._registered, *args, **kwargs)
            else:
                handle = DBOS.start_workflow(self.workflow._registered, *args, **kwargs)
        return Run(handle)


class Run(Generic[R]):
    """A started run in this process."""

    def __init__(self, handle: WorkflowHandle[R]) -> None:
        self._handle = handle

    @property
    def id(self) -> str:
        return self._handle.get_workflow_id()

    def result(self) -> R:
        """Wait for the run to finish and return its result (or raise its error)."""
        return self._handle.get_result()

    def status(self) -> str:
        status = self._handle.get_status()
        return str(status.status)


@overload
def step(fn: Callable[P, R], /) -> Step[P, R]: ...
@overload
def step(*, name: str | None = None, retries: int = 0) -> Callable[[Callable[P, R]], Step[P, R]]: ...
def step(
    fn: Callable[P, R] | None = None, /, *, name: str | None = None, retries: int = 0
) -> Step[P, R] | Callable[[Callable[P, R]], Step[P, R]]:
    """Declare a durable step. Use bare (`@step`) or with options (`@step(retries=3)`).

    `retries` is how many times a step that raised is tried again, with backoff, before the error reaches the
    workflow. Governance errors and usage errors (which need a fix, not another try) are never retried.
    """

    def decorate(f: Callable[P, R]) -> Step[P, R]:
        return Step(f, name or f.__qualname__, retries)

    return decorate(fn) if fn is not None else decorate


@overload
def workflow(fn: Callable[P, R], /) -> Workflow[P, R]: ...
@overload
def workflow(
    *, name: str | None = None, exceptions: ExceptionRules = NO_RULES
) -> Callable[[Callable[P, R]], Workflow[P, R]]: ...
def workflow(
    fn: Callable[P, R] | None = None, /, *, name: str | None = None, exceptions: ExceptionRules = NO_RULES
) -> Workflow[P, R] | Callable[[Callable[P, R]], Workflow[P, R]]:
    """Declare a durable workflow. Use bare (`@workflow`) or with a stable name (`@workflow(name="triage")`).

    The name is what runs are recorded under; keep it stable across refactors or in-flight runs cannot resume.
    `exceptions` are the boundaries inside which its agents act alone (see `ExceptionRules`); an action outside
    them waits for a person.
    """

    def decorate(f: Callable[P, R]) -> Workflow[P, R]:
        return Workflow(f, name or f.__qualname__, exceptions)

    return decorate(fn) if fn is not None else decorate
