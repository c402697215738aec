"""Inspecting and controlling runs from any process, launched or not (the CLI uses this)."""

from __future__ import annotations

import builtins
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from podium._bounds import check_count, check_json, check_name
from podium.errors import NotFoundError, UsageError
from podium.store import insert_if_absent, insert_many_if_absent, newest_runs, tables

if TYPE_CHECKING:  # listing runs loads none of these: a command that lists them starts quickly
    from dbos import DBOSClient, EnqueueOptions, WorkflowStatus

    from podium.policy import Authorizer, Identity

WORK_QUEUE = "podium-work"
STATUSES = ("PENDING", "ENQUEUED", "SUCCESS", "ERROR", "CANCELLED", "MAX_RECOVERY_ATTEMPTS_EXCEEDED")


@dataclass(frozen=True)
class RunInfo:
    id: str
    workflow: str
    status: str
    created_at: float
    started_at: float
    updated_at: float
    executor_id: str | None
    app_version: str | None
    error: str | None  # error and output are read by `Runs.get`; `Runs.list` leaves them None
    output: Any

    @property
    def seconds(self) -> float:
        """From the moment a process took the run up to its last update (its completion, once finished)."""
        return self.updated_at - self.started_at


@dataclass(frozen=True)
class StepInfo:
    step_id: int
    name: str
    started_at: float | None
    finished_at: float | None
    error: str | None
    output: Any


class Runs:
    def __init__(self, engine: sa.Engine, client: DBOSClient, authorizer: Authorizer) -> None:
        self._engine = engine
        self._client = client
        self._authorizer = authorizer  # who may start, cancel or resume a run

    def list(
        self,
        *,
        workflow: str | None = None,
        status: str | None = None,
        prefix: str | None = None,
        limit: int = 50,
    ) -> builtins.list[RunInfo]:
        """The newest runs first, without their error or output (`get` reads those)."""
        check_count(limit, "--limit")
        for value, what in ((workflow, "--workflow"), (prefix, "a run id prefix")):
            if value is not None:
                check_name(value, what)
        if status is not None and status.upper() not in STATUSES:
            raise UsageError(f"unknown run status {status!r}; use one of {', '.join(STATUSES)}.")
        found = newest_runs(
            self._engine, workflow=workflow, status=status.upper() if status else None, prefix=prefix, limit=limit
        )
        if workflow is not None and not found:
            self._require_declared(workflow)
        return [
            RunInfo(
                id=row.workflow_uuid,
                workflow=row.name,
                status=row.status,
                created_at=row.created_at / 1000,
                started_at=(row.started_at_epoch_ms or row.created_at) / 1000,
                updated_at=row.updated_at / 1000,
                executor_id=row.executor_id,
                app_version=row.application_version,
                error=None,
                output=None,
            )
            for row in found
        ]

    def start(self, workflow: str, args: builtins.list[Any], *, by: Identity, run_id: str | None = None) -> RunInfo:
        """Queue a run of `workflow` by name with JSON-like `args`, for any launched process to execute. A run spends
        budget and has side effects, so starting one is an operator action: Cedar decides `run.start` for `by`, and
        the run is audited (its workflow, and the digest of its arguments) in the transaction that queues it.

        The arguments are checked against the workflow's signature as its workers declared it, so a run that could
        not start is refused now rather than failing on a worker (which validates them again). Starting again with
        the `run_id` of a run that exists returns that run, and changes and logs nothing.
        """
        import uuid

        from podium.audit import digest
        from podium.workflows._arguments import check_arguments

        if run_id is not None:
            check_name(run_id, "--run-id")
        check_json(list(args), f"the arguments of {workflow}")  # a request, not a payload: big data by reference
        parameters = self._require_declared(workflow)
        if parameters is not None:
            check_arguments(workflow, parameters, args)
        run_id = run_id or str(uuid.uuid4())  # named before the decision: Cedar and the audit entry see the run
        detail = {"workflow": workflow}
        with self._authorizer.act(by, "run.start", f"run:{run_id}", detail=detail, input_digest=digest(args)) as act:
            if self._client.list_workflows(workflow_ids=[run_id], load_input=False):
                act.audited = False  # started before: the same run, nothing new
            else:
                options: EnqueueOptions = {"workflow_name": workflow, "queue_name": WORK_QUEUE, "workflow_id": run_id}
                self._client.enqueue_in_transaction(act.conn, options, *args)  # DBOS's tables share the database
        return self.get(run_id)

    def declare(self, names: builtins.list[str]) -> None:
        """Record the workflows a launched process can run, with their parameters (called by `podium.launch`)."""
        from podium.workflows._api import DECLARED, Workflow

        w = tables.workflows
        with self._engine.begin() as conn:
            for name in names:
                declared = DECLARED.get(name)
                parameters = json.dumps(declared.parameters) if isinstance(declared, Workflow) else None
                insert_if_absent(conn, w, name=name, registered_at=time.time(), parameters=parameters)
                conn.execute(w.update().where(w.c.name == name).values(parameters=parameters))  # the latest code's

    def declared(self) -> builtins.list[str]:
        with self._engine.connect() as conn:
            return sorted(conn.execute(sa.select(tables.workflows.c.name)).scalars())

    def _require_declared(self, workflow: str) -> builtins.list[dict[str, Any]] | None:
        """The workflow's parameters as its workers declared them (None: declared by an older podium)."""
        check_name(workflow, "a workflow name")
        with self._engine.connect() as conn:
            rows = dict(conn.execute(sa.select(tables.workflows.c.name, tables.workflows.c.parameters)).all())
        if workflow not in rows:
            raise NotFoundError(
                f"no workflow named {workflow!r} has been launched on this database (known: "
                f"{', '.join(sorted(rows)) or 'none'}). Start a worker for it first: podium worker MODULE:APP."
            )
        parameters = rows[workflow]
        return None if parameters is None else list(json.loads(parameters))

    def by_ids(self, run_ids: builtins.list[str]) -> builtins.list[RunInfo]:
        found: builtins.list[RunInfo] = []
        for start in range(0, len(run_ids), 500):
            chunk = run_ids[start : start + 500]
            found += [_info(s) for s in self._client.list_workflows(workflow_ids=chunk, load_input=False)]
        return found

    def get(self, run_id: str) -> RunInfo:
        check_name(run_id, "a run id")
        found = self._client.list_workflows(workflow_ids=[run_id], load_input=False)
        if not found:
            raise NotFoundError(f"no run with id {run_id!r}. `podium runs list` shows run ids.", run_id=run_id)
        return _info(found[0])

    def steps(self, run_id: str) -> builtins.list[StepInfo]:
        self.get(run_id)
        return [
            StepInfo(
                int(s["function_id"]),
                str(s["function_name"]),
                _seconds(s.get("started_at_epoch_ms")),
                _seconds(s.get("completed_at_epoch_ms")),
                repr(s["error"]) if s.get("error") else None,
                s.get("output"),
            )
            for s in self._client.list_workflow_steps(run_id)
        ]

    def cancel(self, run_id: str, *, by: Identity) -> RunInfo:
        """Cancel a run: the governor refuses its calls from now on, even one made by a step already running,
        and DBOS starts none of its further steps. Audited."""
        run = self.get(run_id)
        if run.status in ("SUCCESS", "ERROR"):
            raise UsageError(f"run {run_id} already finished ({run.status}); there is nothing to cancel.")
        with self._authorizer.act(by, "run.cancel", f"run:{run_id}") as act:
            stopped, after_commit = self.stop_many(act.conn, [run_id], by.actor)
            act.audited = bool(stopped)  # cancelling a run already stopped changes nothing: not logged again
        after_commit()
        return self.get(run_id)

    def stop_many(self, conn: sa.Connection, run_ids: Sequence[str], actor: str) -> tuple[set[str], Callable[[], None]]:
        """Stop `run_ids` in the transaction `conn` of the operator action that stops them (a cancel, a kill): the
        governor refuses their calls from the commit on, and their open reviews are withdrawn. Returns the runs
        stopped now (not already), and what to do once `conn` has committed: cancel the runs in DBOS and wake
        their withdrawn waits (woken earlier, a wait could ask a person afresh before the cancel lands)."""
        from podium.review import wake_withdrawn, withdraw_reviews

        now = time.time()
        rows = [{"run_id": i, "stopped_by": actor, "stopped_at": now} for i in run_ids]
        stopped = insert_many_if_absent(conn, tables.run_stops, rows)
        withdrawn = withdraw_reviews(conn, list(run_ids), actor)

        def after_commit() -> None:
            self._client.cancel_workflows(list(run_ids))
            wake_withdrawn(self._client, withdrawn, actor)

        return {str(run_id) for run_id in stopped}, after_commit

    def resume(self, run_id: str, *, by: Identity) -> RunInfo:
        """Resume a cancelled or failed run from its last finished step. Audited."""
        run = self.get(run_id)
        if run.status == "SUCCESS":
            raise UsageError(f"run {run_id} already succeeded; there is nothing to resume.")
        with self._authorizer.act(by, "run.resume", f"run:{run_id}") as act:
            act.conn.execute(tables.run_stops.delete().where(tables.run_stops.c.run_id == run_id))
        self._client.resume_workflow(run_id)
        return self.get(run_id)


def _seconds(epoch_ms: int | None) -> float | None:
    return epoch_ms / 1000 if epoch_ms is not None else None


def _info(status: WorkflowStatus) -> RunInfo:
    return RunInfo(
        id=status.workflow_id,
        workflow=status.name,
        status=str(status.status),
        created_at=(status.created_at or 0) / 1000,
        started_at=(status.dequeued_at or status.created_at or 0) / 1000,
        updated_at=(status.updated_at or 0) / 1000,
        executor_id=status.executor_id,
        app_version=status.app_version,
        error=f"{type(status.error).__name__}: {status.error}" if status.error else None,
        output=status.output,
    )
