"""The `podium` command line."""

from __future__ import annotations

import importlib
import json
import os
import signal
import sys
import threading
import time
from contextlib import suppress
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from podium._bounds import MAX_JSON_BYTES, check_text
from podium._time import format_time
from podium.cli._common import (
    PodiumGroup,
    connected,
    console,
    err,
    error_line,
    progress_bar,
    root_options,
    settings,
    working,
)
from podium.cli._costs import budgets_app, costs
from podium.cli._discover import discover_app
from podium.cli._display import AsJson, field, print_json, row, shorten, styled, table
from podium.cli._fields import model_fields, run_detail_fields, run_fields
from podium.cli._governance import agents_app, audit_app, governance_app, kill, policy_app, restore
from podium.cli._guard import guard_app
from podium.cli._help import conventional_help
from podium.cli._identity import init, keys_app
from podium.cli._review import people_app, review_app
from podium.cli._route import route_app
from podium.cli._sanction import add_commands as add_sanction_commands
from podium.errors import AuditTampered, UsageError

if TYPE_CHECKING:
    from podium._events import Event
    from podium._runtime import App

conventional_help()
app = typer.Typer(
    help="podium: governed AI orchestration. Durable workflows where agents and people cooperate, "
    "with every model and tool call authorised, costed and audited.",
    no_args_is_help=True,
    rich_markup_mode="markdown",  # podium's own help text: paragraphs reflow, `code` stands out
    pretty_exceptions_enable=False,
    cls=PodiumGroup,
    context_settings={"help_option_names": ["-h", "--help"]},
)
runs_app = typer.Typer(help="Inspect and control workflow runs.", no_args_is_help=True)
models_app = typer.Typer(help="Models podium can use, and the ones it trains.", no_args_is_help=True)
for sub, name in (
    (runs_app, "runs"),
    (review_app, "review"),
    (people_app, "people"),
    (keys_app, "keys"),
    (agents_app, "agents"),
    (policy_app, "policy"),
    (audit_app, "audit"),
    (governance_app, "governance"),
    (models_app, "models"),
    (route_app, "route"),
    (budgets_app, "budgets"),
    (discover_app, "discover"),
    (guard_app, "guard"),
):
    app.add_typer(sub, name=name)
add_sanction_commands(discover_app)  # sanction, export-blocklist, kpi: beside the scan in `podium discover`

app.callback()(root_options)
app.command()(init)
app.command()(costs)
app.command()(kill)
app.command()(restore)


def main() -> None:
    """Entry point: every error becomes one clear line and an exit code, never a traceback (see PodiumGroup)."""
    app()


# -- demo ----------------------------------------------------------------------------------------------------


@app.command()
def demo(
    tickets: Annotated[int, typer.Option(min=1, max=100_000, help="How many BANKING77 test tickets to triage.")] = 40,
    seed: Annotated[int, typer.Option(help="Which tickets: the same seed picks the same ones.")] = 7,
    ticket_file: Annotated[
        Path | None, typer.Option(help="A text,category CSV instead of BANKING77's test set.")
    ] = None,
) -> None:
    """Triage customer-support tickets end to end, then report outcomes, accuracy, cost and the audit."""
    from podium_examples.support_triage.demo import ensure_intent_model, run_demo
    from podium_examples.support_triage.tickets import TEST_CSV, load_tickets

    config = settings()
    load_tickets(ticket_file or TEST_CSV)  # a bad file is refused before anything is trained or started
    with working("Training the intent classifier on 10,003 labelled tickets (once)…"):
        if ensure_intent_model(config):
            console.print("Trained the intent classifier [dim](specialised local model)[/].")
    with progress_bar("Triaging tickets") as bar:
        task = bar.add_task("triage", total=tickets)
        report = run_demo(
            config,
            tickets=tickets,
            seed=seed,
            ticket_file=ticket_file or TEST_CSV,
            progress=lambda done, total: bar.update(task, completed=done, total=total),
        )
    table = Table(title="Support triage", show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column(justify="right")
    rows = [
        ("tickets", f"{report.tickets}"),
        ("auto-resolved (reply sent, no person)", f"{report.auto_resolved}"),
        ("resolved after a person approved", f"{report.resolved_after_review}"),
        ("waiting for a person", f"{report.waiting_for_person}"),
        (
            "exceptions, by reason",
            ", ".join(f"{reason} {n}" for reason, n in report.exceptions_by_reason.items()) or "none",
        ),
        ("closed without reply (rejected/expired)", f"{report.closed_without_reply}"),
        ("failed", f"{report.failed}"),
        ("intent accuracy vs labels", f"{report.intent_accuracy:.1%}"),
        *report.call_rows(),
        ("tokens (in + out)", f"{report.tokens:,}"),
        ("cost per ticket (ledger)", f"${report.cost_per_ticket_usd:.6f}"),
        ("cost, all tickets (ledger)", f"${report.cost_usd:.6f}"),
        *report.baseline_rows(),
        ("cycle time p50 / p95, auto-resolved", f"{report.cycle_p50_s:.2f} s / {report.cycle_p95_s:.2f} s"),
        report.replies_row(),
        (
            "audit log (Merkle tree, signed head)",
            f"verified, {report.audit.entries:,} entries" if report.audit.ok else f"BROKEN: {report.audit.problem}",
        ),
    ]
    for label, value in rows:
        table.add_row(*row(label, value))  # a problem the audit reports, say, shown literally
    console.print(table)
    if report.waiting_for_person:
        console.print(
            "Decide the waiting ones: [bold]podium review list[/], then "
            "[bold]podium review approve ID[/] (or edit, reject, claim, reassign)."
        )
    if report.failed:  # a run that failed is a failure of the demo's, never a success
        error_line(
            f"{report.failed} of {report.tickets} runs failed: `podium runs list --status error` lists them and "
            "`podium runs show ID` says why."
        )
    _exit_leaving_waits_durable(1 if report.failed else 0)


def _exit_leaving_waits_durable(code: int = 0) -> None:
    """Exit now, with `code`. Runs waiting for a person each block a DBOS thread until their deadline (days); their
    state is in the database, so the process may end under them, and the next launch resumes them."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


# -- serve ----------------------------------------------------------------------------------------------------


@app.command()
def serve(
    host: Annotated[
        str, typer.Option(help="Interface to listen on (loopback unless you mean otherwise).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535)] = 8000,
    allow_host: Annotated[
        list[str] | None,
        typer.Option(help="A host name clients reach this server by, besides loopback's (repeatable)."),
    ] = None,
) -> None:
    """Serve the review queue (GET /v1/reviews …) and the governed OpenAI- and Anthropic-compatible gateway
    (POST /v1/chat/completions, /v1/embeddings, /v1/messages; GET /v1/models) over HTTP, each request authenticated
    by a person's or an agent's key (`Authorization: Bearer` or `x-api-key`); API docs at /docs, the gateway in
    docs/gateway.md. Needs the `api` extra.

    Refused requests are rate-limited per client address. X-Forwarded-For is not trusted (a client could claim a
    new address each request), so behind a reverse proxy every client shares the proxy's address for that limit;
    a valid key is never limited by it (podium.toml's [gateway.limits] sets requests and tokens a minute per key
    and team)."""
    try:
        import uvicorn

        from podium.api import LOOPBACK_NAMES, create_app
    except ImportError:
        raise UsageError(
            "podium serve needs the api extra: pip install -e '.[api]' (make install-test installs it)."
        ) from None
    hosts = [*LOOPBACK_NAMES, *(allow_host or ())]
    if host not in ("0.0.0.0", "::"):  # noqa: S104 (naming the wildcard addresses, not binding to them)
        hosts.append(host)
    with connected() as pod:
        console.print(
            styled(
                "review queue and OpenAI/Anthropic gateway on http://{}:{}/v1 (API docs: /docs); Ctrl-C stops it.",
                host,
                port,
            )
        )
        api = create_app(pod, allowed_hosts=hosts)
        uvicorn.run(api, host=host, port=port, log_level="warning", proxy_headers=False)


# -- worker --------------------------------------------------------------------------------------------------


@app.command()
def worker(
    app_path: Annotated[
        str, typer.Argument(help="MODULE:ATTRIBUTE of a podium.App, e.g. podium_examples.support_triage.workflow:app")
    ],
) -> None:
    """Run workflows: recover this executor's interrupted runs and take queued ones, until Ctrl-C or SIGTERM."""
    from podium._runtime import Podium

    podium_app = _load_app(app_path)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with Podium.launch(settings(), podium_app, listener=RunLog()) as pod:
        console.print(
            styled("worker [bold]{}[/] runs {}; Ctrl-C stops it.", pod.executor_id, ", ".join(pod.runs.declared()))
        )
        with suppress(KeyboardInterrupt):
            # Once a minute: budget reservations of runs that ended elsewhere (cancelled mid-call, say) go back,
            # classifiers retrain on reviewers' labels when enough arrived (and every worker serves the newest),
            # and the audit log's root is signed (a tree head), so at most a minute of entries is unsigned.
            while not stop.wait(SWEEP_SECONDS):
                pod.budgets.release_abandoned()
                for name, path in pod.learn().items():  # corrections from reviews retrain the classifiers
                    console.print(styled("retrained {} on people's corrections: {}", name, path.name))
                try:
                    pod.audit.checkpoint()
                except (AuditTampered, UsageError) as exc:  # tampering, a witness down: say so, loudly, keep going
                    err.print(styled("[bold red]audit log:[/] {}", exc))
    _exit_leaving_waits_durable()


SWEEP_SECONDS = 60.0


class RunLog:
    """One line per run a worker starts (or resumes) and per run that ends, with how long it took: what a worker
    did is in its log, whether or not anyone watches its terminal."""

    def __init__(self) -> None:
        self._started: dict[str, float] = {}

    def __call__(self, event: Event) -> None:
        if event.run_id is None or event.kind not in ("workflow_started", "workflow_returning", "workflow_failed"):
            return
        now = time.time()
        if event.kind == "workflow_started":
            self._started[event.run_id] = now
            console.print(styled("{} run {} ({}) started", format_time(now), event.run_id, event.name))
            return
        took = now - self._started.pop(event.run_id, now)
        outcome = "finished" if event.kind == "workflow_returning" else f"failed ({event.error})"
        console.print(
            styled("{} run {} ({}) {} in {} s", format_time(now), event.run_id, event.name, outcome, f"{took:.2f}")
        )


def _load_app(app_path: str) -> App:
    from podium._runtime import App

    module_name, _, attribute = app_path.partition(":")
    try:
        loaded = getattr(importlib.import_module(module_name), attribute or "app")
    except (ImportError, AttributeError) as exc:
        raise UsageError(f"cannot load {app_path!r} ({exc}). Give MODULE:ATTRIBUTE of a podium.App.") from None
    if not isinstance(loaded, App):
        raise UsageError(f"{app_path!r} is a {type(loaded).__name__}, not a podium.App.")
    return loaded


# -- runs ----------------------------------------------------------------------------------------------------


@runs_app.command("start")
def runs_start(
    workflow: Annotated[str, typer.Argument(help="The workflow's name, as declared with @podium.workflow(name=...).")],
    args: Annotated[list[str] | None, typer.Argument(help="Its arguments, each a JSON value.")] = None,
    run_id: Annotated[str | None, typer.Option(help="A run id: starting twice with it starts one run.")] = None,
) -> None:
    """Queue a run as you (your key; audited); a `podium worker` of the workflow's app executes it."""
    values = []
    for number, text in enumerate(args or [], start=1):
        check_text(text, f"argument {number}", max_chars=MAX_JSON_BYTES)
        try:
            values.append(json.loads(text))
        except (json.JSONDecodeError, RecursionError) as exc:
            why = f"{exc.msg} at column {exc.colno}" if isinstance(exc, json.JSONDecodeError) else "nested too deeply"
            raise UsageError(
                f"argument {number} is not a JSON value ({why}): {shorten(text, 60)!r}. Quote it for the shell: "
                """'"text"', 42, '{"key": 1}'."""
            ) from None
    with connected() as pod:
        run = pod.runs.start(workflow, values, by=pod.operator(), run_id=run_id)
    console.print(styled("{}: {}", run.id, run.status.lower()))


class RunStatus(StrEnum):
    """Run statuses as the CLI shows them (DBOS's, in lower case like every other status podium shows)."""

    pending = "pending"
    enqueued = "enqueued"
    success = "success"
    error = "error"
    cancelled = "cancelled"
    max_recovery_attempts_exceeded = "max_recovery_attempts_exceeded"


@runs_app.command("list")
def runs_list(
    status: Annotated[RunStatus | None, typer.Option(help="Only runs in this status.", case_sensitive=False)] = None,
    workflow: Annotated[str | None, typer.Option(help="Only runs of this workflow.")] = None,
    limit: Annotated[int, typer.Option(min=1)] = 20,
    as_json: AsJson = False,
) -> None:
    """The newest runs first."""
    with connected(read=True) as pod:
        found = pod.runs.list(status=status.value if status else None, workflow=workflow, limit=limit)
    if as_json:
        print_json([run_fields(run) for run in found])
        return
    shown = table("run id", "workflow", "status", "created (UTC)", "seconds", ids=["run id"])
    for run in found:
        shown.add_row(*row(run.id, run.workflow, run.status.lower(), format_time(run.created_at), f"{run.seconds:.2f}"))
    console.print(shown if found else "No runs.")


@runs_app.command("show")
def runs_show(run_id: str, as_json: AsJson = False) -> None:
    """A run's status, steps and result."""
    with connected(read=True) as pod:
        run = pod.runs.get(run_id)
        steps = pod.runs.steps(run_id)
    if as_json:
        print_json(run_detail_fields(run, steps))
        return
    console.print(
        styled("[bold]{}[/]  {}  [bold]{}[/]  executor {}", run.id, run.workflow, run.status.lower(), run.executor_id)
    )
    shown = table("#", "step", "started (UTC)", "seconds", "error", ids=["#"])
    for s in steps:
        took = f"{s.finished_at - s.started_at:.3f}" if s.started_at and s.finished_at else "-"
        shown.add_row(*row(s.step_id, s.name, format_time(s.started_at), took, s.error or ""))
    console.print(shown)
    if run.error:
        console.print(field(styled("[red]error[/]"), run.error))
    elif run.output is not None:
        console.print(styled("result: {}", repr(run.output)))


@runs_app.command("cancel")
def runs_cancel(run_id: str) -> None:
    """Cancel a run: the governor refuses its calls at once, even mid-step, and no further step starts."""
    with connected() as pod:
        run = pod.runs.cancel(run_id, by=pod.operator())
    console.print(styled("{}: {}", run.id, run.status.lower()))


@runs_app.command("resume")
def runs_resume(run_id: str) -> None:
    """Resume a cancelled or failed run from its last finished step."""
    with connected() as pod:
        run = pod.runs.resume(run_id, by=pod.operator())
    console.print(styled("{}: {} (a launched podium process picks it up)", run.id, run.status.lower()))


# -- models --------------------------------------------------------------------------------------------------


@models_app.command("list")
def models_list(as_json: AsJson = False) -> None:
    """Models podium knows (the ones it trained too), with the sha256 each local file is checked against and its
    state; a remote model has no file to check."""
    from podium.models import model_states

    with connected(read=True) as pod:
        models = model_states(pod.models, pod.trained)
    if as_json:
        print_json([model_fields(model) for model in models])
        return
    for model in models:  # one block each: a digest is never cut short, whatever the terminal's width
        console.print(styled("[bold]{}[/]  ({}, {})", model.name, model.tier, model.kind))
        console.print(styled("  sha256  {}", model.sha256 or "-"))
        console.print(styled(f"  state   [{'green' if model.ok else 'red'}]{{}}[/]", model.state))


@models_app.command("learn")
def models_learn(
    min_new: Annotated[
        int, typer.Option(min=1, max=1_000_000_000, help="Retrain only if at least this many new labels arrived.")
    ] = 1,
) -> None:
    """Retrain the classifiers podium trained on the labels people gave in reviews, now (a worker does it by itself
    once PODIUM_RETRAIN_AFTER new labels arrived). Admins; audited."""
    with connected() as pod:
        by = pod.operator()
        for name in pod.trained.names():
            path = pod.trained.learn(name, min_new=min_new, by=by)
            console.print(
                styled("{}: retrained, {}", name, path.name)
                if path
                else styled("{}: fewer than {} new labels", name, min_new)
            )


@models_app.command("train-intents")
def models_train_intents(
    labelled_file: Annotated[
        Path | None, typer.Argument(help="text,category CSV (default: BANKING77 train set).")
    ] = None,
) -> None:
    """(Re)train the support-triage intent classifier and record its file's sha256 (admins; audited)."""
    from podium_examples.support_triage.demo import train_intent_model
    from podium_examples.support_triage.tickets import TRAIN_CSV, load_tickets

    examples = load_tickets(labelled_file or TRAIN_CSV)
    with connected() as pod:
        by = pod.operator()
        with working(f"Training on {len(examples):,} labelled tickets…"):
            path = train_intent_model(pod, examples, by=by)
    console.print(styled("Trained the intent classifier: {}", path))
