"""`podium review …` and `podium people …`: the exceptions that wait for a person, and who decides them."""

from __future__ import annotations

import json
import re
import sys
import time
from enum import StrEnum
from typing import Annotated, Any, Literal

import typer
from rich.table import Table
from rich.text import Text

from podium._time import format_time
from podium.cli._common import connected, console, err
from podium.cli._display import AsJson, block, field, literal, print_json, row, shorten, styled, table
from podium.cli._fields import person_fields, review_detail_fields, review_fields
from podium.errors import PodiumError, UsageError

review_app = typer.Typer(
    help="Decide the exceptions that wait for a person: list, show, claim, approve, reject, edit, reassign.",
    no_args_is_help=True,
)
people_app = typer.Typer(help="Who decides reviews: people, their teams and loaded hourly rates.", no_args_is_help=True)

Note = Annotated[str, typer.Option(help="Why (recorded with the decision).")]
Minutes = Annotated[
    float,
    typer.Option(min=0, help="Minutes the decision took; costed in the ledger at the person's loaded hourly rate."),
]
Label = Annotated[
    str | None,
    typer.Option(help="The right label for the model's judgement shown (a correction retrains the model)."),
]
Digest = Annotated[
    str | None,
    typer.Option(
        help="The action digest you were shown (its first 8 characters will do): refused if the request changed since."
    ),
]
Ids = Annotated[list[str] | None, typer.Argument(help="Review ids (several for a bulk decision).")]
Yes = Annotated[bool, typer.Option("--yes", help="Decide several requests at once without being asked to confirm.")]
Reason = Annotated[
    str | None,
    typer.Option(help="Only requests with this reason code, or prefix (low_confidence, compliance, policy …)."),
]


class ReviewStatus(StrEnum):
    open = "open"
    pending = "pending"
    held = "held"
    approved = "approved"
    rejected = "rejected"
    expired = "expired"
    all = "all"


_DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhd])$")


def _seconds(text: str | None) -> float | None:
    if text is None:
        return None
    match = _DURATION.match(text.strip())
    if match is None:
        raise typer.BadParameter(f"{text!r} is not a duration; write it like 30m, 4h or 2d.")
    return float(match.group(1)) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[match.group(2)]


@review_app.command("list")
def review_list(
    status: Annotated[
        ReviewStatus, typer.Option(help="open means pending or held; all, any status.", case_sensitive=False)
    ] = ReviewStatus.open,
    reason: Reason = None,
    min_value: Annotated[float | None, typer.Option(help="Only requests worth at least this many USD.")] = None,
    older_than: Annotated[str | None, typer.Option(help="Only requests older than this (30m, 4h, 2d).")] = None,
    waiting_on: Annotated[str | None, typer.Option(help="Only requests asked of this person or team:NAME.")] = None,
    limit: Annotated[int, typer.Option(min=1)] = 100,
    as_json: AsJson = False,
) -> None:
    """Requests, oldest first, with who is asked and when their deadline is."""
    with connected(read=True) as pod:
        found = pod.reviews.list(
            status=None if status is ReviewStatus.all else status.value,
            reason=reason,
            min_value_usd=min_value,
            older_than_s=_seconds(older_than),
            waiting_on=waiting_on,
            limit=limit,
        )
    if as_json:
        print_json([review_fields(r) for r in found])
        return
    if not found:
        console.print("Nothing waits for a person." if status is ReviewStatus.open else "No such requests.")
        return
    shown = table(
        "review id", "reasons", "value", "status", "waiting on", "deadline (UTC)", "summary", ids=["review id"]
    )
    now = time.time()
    for r in found:
        late = r.status == "pending" and r.level_deadline_at < now
        deadline = literal(format_time(r.level_deadline_at), style="red" if late else "")
        value = f"${r.value_usd:,.2f}" if r.value_usd is not None else ""
        who = styled("{} (claimed)", r.claimed_by) if r.claimed_by else r.waiting_on
        shown.add_row(*row(r.id, ", ".join(r.reasons), value, r.status, who, deadline, shorten(r.summary, 60)))
    console.print(shown)


@review_app.command("show")
def review_show(review_id: str, as_json: AsJson = False) -> None:
    """One request: why it waits, the exact action it would release, who may decide, and what was decided."""
    with connected(read=True) as pod:
        r = pod.reviews.get(review_id)
    if as_json:
        print_json(review_detail_fields(r))
        return
    console.print(styled("[bold]{}[/]  {}  reasons: {}", r.id, r.status, ", ".join(r.reasons)))
    console.print(styled("run {} · agent {} · workflow {}", r.run_id, r.agent, r.workflow or "-"))
    console.print(block(r.summary))
    console.print(styled("[bold]action[/]: {} {}", r.action.get("kind"), repr(r.action.get("resource"))))
    for key, value in r.action.get("arguments", {}).items():
        text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        console.print(field(styled("  [bold]{}[/]", key), text, indent="    "))  # no line can pass for another
    console.print(styled("action digest: {}", r.action_digest))
    if r.judgement:
        j = r.judgement
        confidence = f"{j['confidence']:.0%}"
        console.print(
            styled("model judgement: {} said [bold]{}[/] ({}); --label corrects it", j["model"], j["label"], confidence)
        )
    chain = Text(" → ").join(literal(d, style="bold" if i == r.level else "") for i, d in enumerate(r.chain))
    deadline = styled("; this level's deadline {} UTC; then {}", format_time(r.level_deadline_at), r.on_expiry)
    console.print(Text.assemble("escalation: ", chain, deadline))
    if r.assignee or r.claimed_by:
        console.print(styled("reassigned to {}; claimed by {}", r.assignee or "-", r.claimed_by or "-"))
    if r.decided_by:
        decided = styled(
            "decided by {} at {} UTC ({} min)", r.decided_by, format_time(r.decided_at), f"{r.minutes or 0:g}"
        )
        console.print(field(decided, r.rationale or ""))
    if r.edited and r.approved_action:
        console.print(styled("approved with edits: {}", json.dumps(r.approved_action["arguments"], ensure_ascii=False)))


def _targets(pod: Any, ids: list[str] | None, reason: str | None) -> list[str]:
    if ids and reason:
        raise UsageError("give review ids or --reason, not both.")
    if ids:
        return ids
    if reason:
        chosen = [r.id for r in pod.reviews.list(status="open", reason=reason, limit=10_000)]
        if not chosen:
            raise UsageError(f"no open request has reason {reason!r}. `podium review list` shows the open ones.")
        return chosen
    raise UsageError("name the requests to decide: review ids, or --reason CODE for every open one with it.")


def _decide_each(
    verb: Literal["approve", "reject"], ids: list[str] | None, reason: str | None, yes: bool, **how: Any
) -> None:
    """Decide each request on its own: a refusal is reported and the rest still decided; exit 1 if any failed."""
    with connected() as pod:
        how["by"] = pod.operator()
        targets = _targets(pod, ids, reason)
        if len(targets) > 1 and not yes:
            _confirm(verb, len(targets))
        if len(targets) == 1:  # one request: its refusal is the command's error
            decide = pod.reviews.approve if verb == "approve" else pod.reviews.reject
            decided = [decide(targets[0], **how)]
            refused: dict[str, PodiumError] = {}
        else:
            bulk = pod.reviews.approve_many if verb == "approve" else pod.reviews.reject_many
            done = bulk(targets, **how)
            decided, refused = done.decided, done.refused
    for request in decided:
        console.print(styled("{}: {} by {}", request.id, request.status, request.decided_by))
    for review_id, exc in refused.items():
        err.print(styled("[red]{}:[/] {}", review_id, str(exc)))
    if refused:
        err.print(f"{len(refused)} of {len(targets)} not decided (see above); the others stand.")
        raise typer.Exit(1)


def _confirm(verb: str, count: int) -> None:
    """Several decisions at once are confirmed: by --yes, or by the person at a terminal who is shown the count."""
    if not sys.stdin.isatty():
        raise UsageError(f"this would {verb} {count} requests at once: add --yes to confirm, or name them one by one.")
    if not typer.confirm(f"{verb.capitalize()} {count} requests?"):
        raise UsageError(f"nothing decided: {count} requests were not confirmed.")


@review_app.command("approve")
def review_approve(
    ids: Ids = None,
    *,
    reason: Reason = None,
    note: Note = "",
    minutes: Minutes = 0.0,
    label: Label = None,
    digest: Digest = None,
    yes: Yes = False,
) -> None:
    """Approve the exact action each run proposed; each run resumes and performs it once."""
    _decide_each("approve", ids, reason, yes, rationale=note, minutes=minutes, label=label, expected_digest=digest)


@review_app.command("reject")
def review_reject(
    ids: Ids = None,
    *,
    reason: Reason = None,
    note: Note = "",
    minutes: Minutes = 0.0,
    label: Label = None,
    digest: Digest = None,
    yes: Yes = False,
) -> None:
    """Reject the proposed actions; each run goes on without performing it."""
    _decide_each("reject", ids, reason, yes, rationale=note, minutes=minutes, label=label, expected_digest=digest)


def _parse_change(text: str) -> tuple[str, Any]:
    name, sep, raw = text.partition("=")
    if not sep or not name.strip():
        raise typer.BadParameter(f'{text!r}: write a change as name=value (JSON values: 120, true, "text").')
    try:
        value: Any = json.loads(raw)
    except json.JSONDecodeError:
        value = raw  # plain text
    return name.strip(), value


@review_app.command("edit")
def review_edit(
    review_id: str,
    *,
    set_: Annotated[list[str], typer.Option("--set", help="An argument to change, as name=value (repeatable).")],
    note: Note = "",
    minutes: Minutes = 0.0,
    label: Label = None,
    digest: Digest = None,
) -> None:
    """Approve the action with corrected arguments (checked against its schema); audited as a correction."""
    changes = dict(_parse_change(item) for item in set_)
    with connected() as pod:
        request = pod.reviews.edit(
            review_id, changes, by=pod.operator(), rationale=note, minutes=minutes, label=label, expected_digest=digest
        )
    console.print(styled("{}: approved with edits by {}", request.id, request.decided_by))


@review_app.command("claim")
def review_claim(review_id: str) -> None:
    """Take a request: until it is decided or reassigned, only you decide it."""
    with connected() as pod:
        request = pod.reviews.claim(review_id, by=pod.operator())
    console.print(styled("{}: claimed by {}", request.id, request.claimed_by))


@review_app.command("reassign")
def review_reassign(
    review_id: str,
    to: Annotated[str, typer.Option(help="The person, or team:NAME, who decides it now.")],
    note: Note = "",
) -> None:
    """Hand a request to someone else (lifts any claim)."""
    with connected() as pod:
        request = pod.reviews.reassign(review_id, to=to, by=pod.operator(), rationale=note)
    console.print(styled("{}: waiting on {}", request.id, request.waiting_on))


@review_app.command("stats")
def review_stats(
    since: Annotated[str | None, typer.Option(help="Only the last … (7d, 24h); default: all time.")] = None,
) -> None:
    """Exception rate (overall, per workflow, per reason), review latency, SLA breaches, judgment yield, and the
    rules reviewers approve almost always unchanged (guardrail fatigue)."""
    window = _seconds(since)
    with connected(read=True) as pod:
        m = pod.reviews.metrics(since=time.time() - window if window else 0.0)
    rate = m.exception_rate
    summary = Table(show_header=False, title="Humans on the loop", title_justify="left")
    summary.add_column(style="bold")
    summary.add_column(justify="right")
    rows = [
        ("runs", f"{sum(m.runs.values())}"),
        ("exception rate (runs that waited for a person)", f"{rate:.1%}" if rate is not None else "-"),
        ("decided / open", f"{m.decided} / {m.open}"),
        ("review latency p50 / p95", f"{_duration(m.latency_p50_s)} / {_duration(m.latency_p95_s)}"),
        ("SLA breaches (escalated, expired or late)", f"{m.sla_breaches}"),
        ("human minutes", f"{m.human_minutes:g}"),
        (
            "judgment yield (time on decisions that needed a person)",
            f"{m.judgment_yield:.0%}" if m.judgment_yield is not None else "-",
        ),
    ]
    for label, value in rows:
        summary.add_row(label, value)
    console.print(summary)
    per = Table("workflow", "runs", "with exception", "rate")
    for name, runs in sorted(m.runs.items()):
        per.add_row(*row(name, runs, m.runs_with_exception.get(name, 0), f"{m.exception_rate_of(name) or 0:.1%}"))
    console.print(per)
    reasons = Table("reason", "requests")
    for code, count in m.exceptions_by_reason.items():
        reasons.add_row(*row(code, count))
    console.print(reasons)
    for signal in m.fatigue:
        console.print(styled("[yellow]guardrail fatigue:[/] {}", signal.advice))


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 120:
        return f"{seconds:.1f} s"
    return f"{seconds / 60:.1f} min" if seconds < 7200 else f"{seconds / 3600:.1f} h"


# -- people --------------------------------------------------------------------------------------------------


@people_app.command("add")
def people_add(
    name: Annotated[str, typer.Argument(help="How they sign decisions, e.g. ana@example.com.")],
    team: Annotated[list[str] | None, typer.Option(help="A team they decide for (repeatable).")] = None,
    rate: Annotated[float | None, typer.Option(min=0, help="Loaded cost of an hour of their time, USD.")] = None,
    display_name: Annotated[str, typer.Option(help="Their name as people read it.")] = "",
) -> None:
    """Add a person (or replace their entry): review chains that name their teams let them decide."""
    with connected() as pod:
        person = pod.people.add(name, teams=team or [], by=pod.operator(), display_name=display_name, usd_per_hour=rate)
    console.print(styled("{}: teams {}", person.name, ", ".join(person.teams) or "-"))


@people_app.command("list")
def people_list(as_json: AsJson = False) -> None:
    """Everyone in the directory."""
    with connected(read=True) as pod:
        found = pod.people.list()
    if as_json:
        print_json([person_fields(p) for p in found])
        return
    shown = table("name", "display name", "teams", "USD / hour", ids=["name"])
    for p in found:
        rate = "default" if p.usd_per_hour is None else f"{p.usd_per_hour:g}"
        shown.add_row(*row(p.name, p.display_name, ", ".join(p.teams), rate))
    console.print(shown if found else "Nobody yet: `podium people add NAME --team T`.")


@people_app.command("remove")
def people_remove(name: str) -> None:
    """Remove a person from the directory (their past decisions stay in the audit log)."""
    with connected() as pod:
        pod.people.remove(name, by=pod.operator())
    console.print(styled("{}: removed", name))
