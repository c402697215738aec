"""The review queue as people see it: list, show, claim, reassign, approve, reject, edit.

Every decision is a Cedar decision (`review.decide`: the request's escalation chain, a reassignment, a claim),
and records who, when, why, the minutes it took (costed in the ledger at the person's loaded rate), and the label
the person gave the model's judgement (a training example). The decision, its audit entry, its ledger row, its
label and the message that wakes the run are written in one transaction: no decision is lost, and none is
delivered without its record.
"""

from __future__ import annotations

import builtins
import difflib
import json
import time
from collections.abc import Callable, Iterable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypedDict, Unpack

import sqlalchemy as sa

from podium._bounds import check_json, check_name, check_number, check_text
from podium.audit import canonical_json, digest, parse_actor, record
from podium.cost import NANO
from podium.errors import NotFoundError, PodiumError, StaleError, UsageError
from podium.policy import Authorizer, GovernedAction, Identity, require_identity, review_entity
from podium.review._checks import check_decision, check_filters
from podium.review._metrics import ReviewMetrics, review_metrics
from podium.review._schema import problems
from podium.store import tables

if TYPE_CHECKING:
    from dbos import DBOSClient

r = tables.reviews
# A request with its agent's team (whose reviews they are, and whom the ledger charges their minutes to).
_REQUESTS = sa.select(r, tables.agents.c.team.label("agent_team")).outerjoin(
    tables.agents, tables.agents.c.name == r.c.agent
)
OPEN = ("pending", "held")  # statuses a person can still decide


@dataclass(frozen=True)
class ReviewRequest:
    """An exception waiting for (or decided by) a person, with the exact action it would release."""

    id: str
    run_id: str
    agent: str
    team: str  # the agent's ("" if it has none)
    workflow: str | None
    reasons: tuple[str, ...]
    summary: str
    action: dict[str, Any]  # kind, resource, arguments
    action_digest: str
    action_schema: dict[str, Any]
    facts: dict[str, Any]
    value_usd: float | None
    judgement: dict[str, Any] | None  # model, input, label, confidence
    status: str  # pending | held | approved | rejected | expired
    created_at: float
    deadline_at: float  # the first deadline (the SLA)
    chain: tuple[str, ...]
    level: int
    level_deadline_at: float
    on_expiry: str
    assignee: str | None
    claimed_by: str | None
    decided_by: str | None
    decided_at: float | None
    rationale: str | None
    minutes: float | None
    label: str | None
    approved_action: dict[str, Any] | None
    approved_digest: str | None
    consumed_by: str | None

    @property
    def reason(self) -> str:
        return self.reasons[0] if self.reasons else ""

    @property
    def waiting_on(self) -> str:
        """Who is asked now: the reassignee, or the chain's current level."""
        return self.assignee or self.chain[self.level]

    @property
    def deciders(self) -> frozenset[str]:
        """Who may decide: everyone in the chain (people or `team:`s), and the reassignee."""
        return frozenset(self.chain) | ({self.assignee} if self.assignee else set())

    @property
    def edited(self) -> bool:
        return self.approved_digest is not None and self.approved_digest != self.action_digest


class DecisionDetails(TypedDict, total=False):
    """What a person adds to a decision: why, the minutes it took, the right label for the model judgement, and
    the digest of the action they were shown."""

    rationale: str
    minutes: float
    label: str | None
    expected_digest: str | None


@dataclass(frozen=True)
class BulkDecision:
    """What a bulk decision did: the requests decided, and why each of the others was refused."""

    decided: list[ReviewRequest]
    refused: dict[str, PodiumError]


def _each(review_ids: Iterable[str], decide: Callable[[str], ReviewRequest]) -> BulkDecision:
    done = BulkDecision([], {})
    for review_id in review_ids:
        try:
            done.decided.append(decide(review_id))
        except PodiumError as exc:
            done.refused[review_id] = exc
    return done


class Reviews:
    """The review queue: what people do with the exceptions that wait for them."""

    def __init__(self, engine: sa.Engine, client: DBOSClient, usd_per_hour: float, authorizer: Authorizer) -> None:
        self._engine = engine
        self._client = client
        self._usd_per_hour = usd_per_hour
        self._authorizer = authorizer

    def list(
        self,
        *,
        status: str | None = "open",
        reason: str | None = None,
        min_value_usd: float | None = None,
        older_than_s: float | None = None,
        waiting_on: str | None = None,
        limit: int = 100,
        after: tuple[float, str] | None = None,
    ) -> builtins.list[ReviewRequest]:
        """Requests, oldest first, at most `limit`. `status` "open" (the default) means pending or held, None any;
        `reason` matches a reason code or its prefix (`compliance` matches `compliance:…`); `waiting_on` a person or
        `team:`; `after` a (created_at, id) position in that order: the next page starts past it."""
        check_filters(status, reason, min_value_usd, older_than_s, waiting_on, limit)
        query = _REQUESTS.order_by(r.c.created_at, r.c.id)
        if after is not None:
            check_number(after[0], "after: its created_at", low=0, high=1e11)
            check_name(after[1], "after: its review id")
            query = query.where((r.c.created_at > after[0]) | ((r.c.created_at == after[0]) & (r.c.id > after[1])))
        if status == "open":
            query = query.where(r.c.status.in_(OPEN))
        elif status is not None:
            query = query.where(r.c.status == status)
        if min_value_usd is not None:
            query = query.where(r.c.value_usd >= min_value_usd)
        if older_than_s is not None:
            query = query.where(r.c.created_at <= time.time() - older_than_s)
        # The JSON columns narrow the rows in SQL (a superset); the exact match is made on each request read.
        if reason is not None:
            query = query.where(r.c.reasons.contains(json.dumps(reason)[:-1], autoescape=True))  # a prefix
        if waiting_on is not None:
            in_chain = r.c.chain.contains(json.dumps(waiting_on), autoescape=True)
            query = query.where((r.c.assignee == waiting_on) | in_chain)
        found: builtins.list[ReviewRequest] = []
        with self._engine.connect() as conn:
            for row in conn.execute(query):
                request = _request(row)
                if reason is not None and not any(c == reason or c.startswith(f"{reason}:") for c in request.reasons):
                    continue
                if waiting_on is not None and request.waiting_on != waiting_on:
                    continue
                found.append(request)
                if len(found) == limit:
                    break
        return found

    def get(self, review_id: str) -> ReviewRequest:
        check_name(review_id, "a review id")
        with self._engine.connect() as conn:
            row = conn.execute(_REQUESTS.where(r.c.id == review_id)).first()
        if row is None:
            raise NotFoundError(
                f"no review request {review_id!r}. `podium review list` shows the pending ones.", review_id=review_id
            )
        return _request(row)

    # -- decisions ---------------------------------------------------------------------------------------------

    def approve(
        self,
        review_id: str,
        *,
        by: Identity,
        rationale: str = "",
        minutes: float = 0.0,
        label: str | None = None,
        expected_digest: str | None = None,
    ) -> ReviewRequest:
        """Approve the exact action shown: the run resumes and performs it once.

        `label` corrects (or confirms) the model's judgement the request carries; `expected_digest` is the action
        digest the person saw, so an approval of a request that changed meanwhile is refused.
        """
        check_decision(rationale=rationale, minutes=minutes, label=label, expected_digest=expected_digest)
        request = self.get(review_id)
        return self._decide(request, "approved", by, rationale, minutes, label, expected_digest, None)

    def reject(
        self,
        review_id: str,
        *,
        by: Identity,
        rationale: str = "",
        minutes: float = 0.0,
        label: str | None = None,
        expected_digest: str | None = None,
    ) -> ReviewRequest:
        """Reject the proposed action: the run goes on without it (the workflow sees ActionRejected)."""
        check_decision(rationale=rationale, minutes=minutes, label=label, expected_digest=expected_digest)
        request = self.get(review_id)
        return self._decide(request, "rejected", by, rationale, minutes, label, expected_digest, None)

    def edit(
        self,
        review_id: str,
        changes: Mapping[str, Any],
        *,
        by: Identity,
        rationale: str = "",
        minutes: float = 0.0,
        label: str | None = None,
        expected_digest: str | None = None,
    ) -> ReviewRequest:
        """Approve the action with some arguments changed: a correction. The edited action has a digest of its
        own, and must fit the action's schema; the run performs the edited action, once."""
        check_decision(rationale=rationale, minutes=minutes, label=label, expected_digest=expected_digest)
        if not changes:
            raise UsageError("an edit needs at least one changed argument (--set name=value).")
        check_json(dict(changes), "the edit")
        request = self.get(review_id)
        if request.action.get("kind") != "tool":
            raise UsageError(
                f"review {review_id} is about a {request.action.get('kind')} call, which has no "
                "arguments a person can edit; approve or reject it."
            )
        arguments = {**request.action["arguments"], **changes}
        if arguments == request.action["arguments"]:
            raise UsageError("the edit changes nothing; approve the request as it is instead.")
        found = problems(arguments, request.action_schema)
        if found:
            raise UsageError(
                f"the edit does not fit the arguments of {request.action['resource']!r}: "
                + "; ".join(found)
                + ". Nothing was changed; correct the values and try again."
            )
        return self._decide(request, "approved", by, rationale, minutes, label, expected_digest, arguments)

    def metrics(self, *, since: float = 0.0) -> ReviewMetrics:
        """Exception rates, review latency, SLA breaches, judgment yield and guardrail fatigue, over the runs and
        requests since epoch `since`: computed live from them, nothing else is kept."""
        check_number(since, "since (seconds since 1970)", low=0, high=1e11)
        return review_metrics(self._engine, since=since)

    def approve_many(
        self, review_ids: Iterable[str], *, by: Identity, **details: Unpack[DecisionDetails]
    ) -> BulkDecision:
        """Approve several requests, each as its own decision with the same details: a refusal is kept with its
        reason, and the rest are still decided. Details out of bounds refuse them all, before any is read."""
        check_decision(**details)
        return _each(review_ids, lambda review_id: self.approve(review_id, by=by, **details))

    def reject_many(
        self, review_ids: Iterable[str], *, by: Identity, **details: Unpack[DecisionDetails]
    ) -> BulkDecision:
        """Reject several requests, each as its own decision (see `approve_many`)."""
        check_decision(**details)
        return _each(review_ids, lambda review_id: self.reject(review_id, by=by, **details))

    def claim(self, review_id: str, *, by: Identity) -> ReviewRequest:
        """Take the request: until it is decided or reassigned, only `by` decides it."""
        request = self._open(review_id)
        name = require_identity(by).name
        self._update(request, {"claimed_by": name}, by, "claim", {"claimed_by": name})
        return self.get(review_id)

    def reassign(self, review_id: str, *, to: str, by: Identity, rationale: str = "") -> ReviewRequest:
        """Hand the request to `to` (a person or `team:<name>`), who may then decide it; lifts any claim."""
        to = check_name(to, "--to").strip()
        check_text(rationale, "the note")
        request = self._open(review_id)
        try:  # a team's name follows the rules of a person's
            valid = parse_actor(to.removeprefix("team:"))[0] == "person"
        except UsageError:
            valid = False
        if not valid:
            raise UsageError(
                f"cannot reassign to {to!r}: name a person (--to ana@example.com) or a team (--to team:support)."
            )
        self._require_in_directory(to)
        detail = {"from": request.waiting_on, "to": to, "rationale": rationale}
        self._update(request, {"assignee": to, "claimed_by": None}, by, "reassign", detail)
        return self.get(review_id)

    # -- internals ---------------------------------------------------------------------------------------------

    def _check_label(self, label: str, request: ReviewRequest) -> None:
        """A label must be one the model knows: one it was trained on or people gave it, or its own answer. A typo
        would otherwise become a class of its own at the next retraining."""
        judgement = request.judgement
        if judgement is None:
            raise UsageError(f"review {request.id} carries no model judgement to label; decide it without --label.")
        model = str(judgement["model"])
        with self._engine.connect() as conn:
            query = sa.select(tables.labels.c.label).where(tables.labels.c.model == model).distinct()
            known = set(conn.execute(query).scalars())
        if not known or label in known | {judgement["label"]}:
            return  # a model podium has no labels of (trained elsewhere) names its own classes
        close = difflib.get_close_matches(label, sorted(known), n=3)
        raise UsageError(
            f"label {label!r} is not one of the {len(known)} labels of {model}"
            + (f"; did you mean {' or '.join(map(repr, close))}?" if close else ".")
            + f" Give one it knows (the model said {judgement['label']!r})."
        )

    def _require_in_directory(self, to: str) -> None:
        """Refuse to hand a request to nobody: a name not in the directory, or a team nobody in it is in."""
        with self._engine.connect() as conn:
            people = {
                name: teams for name, teams in conn.execute(sa.select(tables.people.c.name, tables.people.c.teams))
            }
        team = to.startswith("team:")
        teams = {name for listed in people.values() for name in json.loads(listed)}
        if to.removeprefix("team:") not in (teams if team else people):
            nobody = "no one in the directory is in that team" if team else "nobody by that name is in the directory"
            raise UsageError(
                f"cannot reassign to {to!r}: {nobody}. `podium people list` shows who is; `podium people add` adds "
                "someone."
            )

    def _open(self, review_id: str) -> ReviewRequest:
        request = self.get(review_id)
        if request.status not in OPEN:
            raise StaleError(_decided_message(request))
        return request

    def _act(self, request: ReviewRequest, by: Identity, decision: str) -> AbstractContextManager[GovernedAction]:
        """The governed path for a decision on `request` (Cedar's `review.decide`, audited as `review.<decision>`,
        bound to the digest of the action it decides)."""
        resource = review_entity(
            request.id,
            workflow=request.workflow or "",
            team=request.team,
            reason=request.reason,
            deciders=request.deciders,
            chain=request.chain,
            claimed_by=request.claimed_by or "",
        )
        return self._authorizer.act(
            by,
            "review.decide",
            resource,
            {"decision": decision},
            resource_name=f"review:{request.id}",
            input_digest=request.action_digest,
        )

    def _update(
        self, request: ReviewRequest, values: dict[str, Any], by: Identity, decision: str, detail: dict[str, str]
    ) -> None:
        with self._act(request, by, decision) as act:
            act.action, act.detail = f"review.{decision}", detail
            changed = act.conn.execute(r.update().where(*_as_read(request)).values(**values)).rowcount
            if not changed:
                raise StaleError(_changed_message(self.get(request.id)))

    def _decide(
        self,
        request: ReviewRequest,
        status: str,
        by: Identity,
        rationale: str,
        minutes: float,
        label: str | None,
        expected_digest: str | None,
        edited_arguments: dict[str, Any] | None,
    ) -> ReviewRequest:
        if request.status not in OPEN:
            raise StaleError(_decided_message(request))
        if expected_digest is not None and len(expected_digest) < 8:
            raise UsageError("--digest needs at least 8 characters of the action digest you were shown.")
        if expected_digest is not None and not request.action_digest.startswith(expected_digest):
            raise StaleError(
                f"review {request.id} proposes the action with digest {request.action_digest[:12]}…, not the "
                f"{expected_digest[:12]}… you gave: you were shown another action (or another request). Look at "
                f"it again (`podium review show {request.id}`)."
            )
        if label is not None:
            self._check_label(label, request)
        if status == "approved" and edited_arguments is None:
            _check_approvable(request)
        person = require_identity(by).name
        arguments = edited_arguments if edited_arguments is not None else request.action["arguments"]
        approved_action = {**request.action, "arguments": arguments} if status == "approved" else None
        # An unedited approval lets through exactly the proposed action (a model call's too, which has no arguments).
        approved_digest = None
        if status == "approved":
            approved_digest = digest(edited_arguments) if edited_arguments is not None else request.action_digest
        given_label = label if label is not None else (
            request.judgement["label"] if request.judgement and status == "approved" else None
        )  # fmt: skip
        now = time.time()
        with self._act(request, by, "edited" if edited_arguments is not None else status) as act:
            conn = act.conn
            rate = conn.execute(sa.select(tables.people.c.usd_per_hour).where(tables.people.c.name == person)).scalar()
            decided = conn.execute(
                r.update()
                .where(*_as_read(request))
                .values(
                    status=status,
                    decided_by=person,
                    decided_at=now,
                    rationale=rationale,
                    minutes=minutes,
                    label=given_label,
                    approved_action=canonical_json(approved_action) if approved_action else None,
                    approved_digest=approved_digest,
                )
            ).rowcount
            if not decided:  # decided, expired, claimed, reassigned or escalated since it was read and authorised
                raise StaleError(_changed_message(self.get(request.id)))
            conn.execute(
                tables.ledger.insert().values(
                    call_key=f"review:{request.id}",
                    run_id=request.run_id,
                    step_id=None,
                    agent=request.agent,
                    kind="review",
                    resource=f"person:{person}",
                    tier="human",
                    input_tokens=0,
                    output_tokens=0,
                    compute_seconds=0.0,
                    cost_nano_usd=round(minutes / 60 * (self._usd_per_hour if rate is None else rate) * NANO),
                    at=now,
                    wall_seconds=minutes * 60,
                    wasted=0,
                    workflow=request.workflow,
                    team=request.team or None,
                )
            )
            if given_label is not None and request.judgement is not None:
                conn.execute(
                    tables.labels.insert().values(
                        id=f"review:{request.id}",
                        model=request.judgement["model"],
                        text=request.judgement["input"],
                        label=given_label,
                        predicted=request.judgement["label"],
                        source=f"review:{request.id}",
                        labelled_by=person,
                        at=now,
                    )
                )
            if edited_arguments is not None:
                act.action = "review.correct"
            else:
                act.action = {"approved": "review.approve", "rejected": "review.reject"}[status]
            act.outcome = status
            act.detail = {"rationale": rationale, "minutes": str(minutes)}
            if approved_digest is not None and approved_digest != request.action_digest:
                act.detail["approved_digest"] = approved_digest
            if given_label is not None and request.judgement is not None and given_label != request.judgement["label"]:
                act.detail["label"] = f"{request.judgement['label']} -> {given_label}"
            message = {
                "status": status,
                "by": person,
                "rationale": rationale,
                "proposed_digest": request.action_digest,
                "arguments": arguments,
                "approved_digest": approved_digest,
                "edited": edited_arguments is not None,
            }
            self._client.send_in_transaction(
                conn, request.run_id, message, topic=request.id, idempotency_key=f"decision:{request.id}"
            )
        return self.get(request.id)


def withdraw_reviews(conn: sa.Connection, run_ids: list[str], actor: str) -> list[tuple[str, str]]:
    """Take the open review requests of runs being cancelled out of the queue (nobody should spend time on work
    that will not go on), audited, in the caller's transaction. Returns the (request, run) pairs withdrawn, whose
    waits `wake_withdrawn` wakes once the runs are cancelled: woken earlier, a wait could ask a person afresh
    before the cancel lands. A resumed run asks a person afresh."""
    withdrawn = conn.execute(
        r.update()
        .where(r.c.run_id.in_(run_ids), r.c.status.in_(OPEN))
        .values(status="cancelled", decided_at=time.time())
        .returning(r.c.id, r.c.run_id)
    ).all()
    for review_id, _ in withdrawn:
        record(conn, actor, "review.withdraw", f"review:{review_id}", decision="cancelled")
    return [(str(review_id), str(run_id)) for review_id, run_id in withdrawn]


def wake_withdrawn(client: DBOSClient, withdrawn: list[tuple[str, str]], actor: str) -> None:
    """Wake the waits of withdrawn requests, which would otherwise hold their threads until the deadline."""
    from dbos import SendMessage

    message = {"status": "cancelled", "by": actor, "rationale": "the run was cancelled"}
    if withdrawn:
        client.send_bulk(
            [SendMessage(run_id, message, review_id, f"cancel:{review_id}") for review_id, run_id in withdrawn]
        )


def _as_read(request: ReviewRequest) -> tuple[sa.ColumnElement[bool], ...]:
    """The request is still open and as it was when read: the Cedar decision was made on that version of it."""
    return (
        r.c.id == request.id,
        r.c.status == request.status,
        r.c.status.in_(OPEN),
        r.c.action_digest == request.action_digest,
        r.c.level == request.level,
        r.c.claimed_by.is_not_distinct_from(request.claimed_by),
        r.c.assignee.is_not_distinct_from(request.assignee),
    )


def _changed_message(current: ReviewRequest) -> str:
    if current.status not in OPEN:
        return _decided_message(current)
    return (
        f"review {current.id} changed while you decided (claimed, reassigned or escalated: it now waits on "
        f"{current.claimed_by or current.waiting_on}); look at it again (`podium review show {current.id}`)."
    )


def _decided_message(request: ReviewRequest) -> str:
    by = f" by {request.decided_by}" if request.decided_by else ""
    return f"review {request.id} is already {request.status}{by}; a request is decided once."


def _request(row: sa.Row[Any]) -> ReviewRequest:
    return ReviewRequest(
        id=row.id,
        run_id=row.run_id,
        agent=row.agent,
        team=row.agent_team or "",
        workflow=row.workflow,
        reasons=tuple(json.loads(row.reasons)) or (row.reason,),
        summary=row.summary,
        action=json.loads(row.action),
        action_digest=row.action_digest,
        action_schema=json.loads(row.action_schema),
        facts=json.loads(row.facts),
        value_usd=row.value_usd,
        judgement=json.loads(row.judgement) if row.judgement else None,
        status=row.status,
        created_at=row.created_at,
        deadline_at=row.deadline_at,
        chain=tuple(json.loads(row.chain)) or ("owner",),
        level=row.level,
        level_deadline_at=row.level_deadline_at or row.deadline_at,
        on_expiry=row.on_expiry,
        assignee=row.assignee,
        claimed_by=row.claimed_by,
        decided_by=row.decided_by,
        decided_at=row.decided_at,
        rationale=row.rationale,
        minutes=row.minutes,
        label=row.label,
        approved_action=json.loads(row.approved_action) if row.approved_action else None,
        approved_digest=row.approved_digest,
        consumed_by=row.consumed_by,
    )


def _check_approvable(request: ReviewRequest) -> None:
    """A person cannot approve, as it is, an action its tool would refuse (an empty reply a model could not write,
    say): they edit it into one it takes, or reject it."""
    found = problems(request.action["arguments"], request.action_schema) if request.action.get("kind") == "tool" else []
    if found:
        raise UsageError(
            f"review {request.id} proposes arguments {request.action['resource']!r} would refuse ({'; '.join(found)}): "
            f"write them (`podium review edit {request.id} --set NAME=VALUE`) or reject it."
        )
