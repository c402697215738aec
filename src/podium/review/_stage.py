"""The exception stage: when a person must look first, and the approvals a call runs under.

It plugs into the governor's pipeline after authorisation: a call that an exception rule (or an `@exception`
forbid, or a budget that asks for a person) stops waits for a person unless an approval of this exact action
covers it; the approvals are claimed once the call is sure to run.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import sqlalchemy as sa

from podium.errors import ActionDenied, ProposedAction, ReviewRequired, UsageError
from podium.governance import Approval, CallContext, NeedsReview, Refusal, Stage
from podium.review._context import current_approvals, current_workflow
from podium.store import tables


class ExceptionStage(Stage):
    name: ClassVar[str] = "exceptions"

    def __init__(self, engine: sa.Engine) -> None:
        self._engine = engine

    def check(self, ctx: CallContext) -> None:
        """Stop the call for a person if an exception fires that no approval of this exact action covers; what
        runs is the person's edit, if they made one."""
        call = ctx.call
        mine = tuple(a for a in current_approvals() if a.resource == call.resource)
        approvals = _approval_chain(mine, call.input_digest)
        if mine and not approvals:
            # The step re-ran with an approval, but proposes something other than what the person approved.
            message = (
                f"{call.describe()} proposes arguments other than the ones approved in review "
                f"{', '.join(a.review_id for a in mine)} (digest {call.input_digest[:12]}…): an approval applies to "
                "the exact action a person saw, so this one is refused."
            )
            raise Refusal(_denied(ctx, message), "denied", why="altered")
        if approvals:
            ctx.approvals = approvals
            ctx.detail["approved_by_review"] = ", ".join(a.review_id for a in approvals)
            if call.kind == "tool":  # what runs is what the person approved (their edit, if any)
                last = approvals[-1]
                ctx.call = dataclasses.replace(call, arguments=last.arguments, input_digest=last.approved_digest)
        covered = {reason for approval in approvals for reason in approval.reasons}
        workflow = current_workflow()
        reasons = list(ctx.exceptions)
        if call.kind == "tool" and workflow is not None and workflow.rules.guards(call.resource):
            reasons += workflow.rules.reasons(workflow.facts, ctx.call.arguments or {})
        reasons = [reason for reason in reasons if reason not in covered]
        if reasons:
            raise NeedsReview(tuple(reasons))

    def commit(self, ctx: CallContext) -> None:
        """Claim the approvals for this call site, once: a re-run of the same step after a crash finds them its own,
        any other call finds them used."""
        if not ctx.approvals:
            return
        reviews = tables.reviews
        used: Approval | None = None
        with self._engine.begin() as conn:
            for approval in ctx.approvals:
                claimed = conn.execute(
                    reviews.update()
                    .where(
                        reviews.c.id == approval.review_id,
                        reviews.c.status == "approved",
                        reviews.c.consumed_by.is_(None) | (reviews.c.consumed_by == ctx.site.key),
                    )
                    .values(consumed_by=ctx.site.key)
                ).rowcount
                if not claimed:
                    used = approval
                    conn.rollback()  # none of the chain is claimed, then
                    break
        if used is not None:
            message = (
                f"the approval in review {used.review_id} was already used by another call: it is performed once, "
                f"so {ctx.call.kind} {ctx.call.resource!r} is refused."
            )
            raise Refusal(_denied(ctx, message), "denied", why="replayed")

    def review(self, ctx: CallContext, reasons: tuple[str, ...]) -> Refusal | None:
        """The review request the caller's step waits on (`@podium.step` handles ReviewRequired)."""
        call, workflow = ctx.call, current_workflow()
        if workflow is None:
            message = (
                f"{call.describe()} needs a person's approval ({', '.join(reasons)}), which only a workflow run can "
                "wait for: make the call in a workflow's step."
            )
            return Refusal(_denied(ctx, message), "denied", why="needs a person")
        if not ctx.site.can_wait:
            # On approval the step runs again from its start: calls before this one would be made twice.
            raise UsageError(
                f"{call.describe()} needs a person ({', '.join(reasons)}), but it is not the first governed call in "
                f"step {ctx.site.step!r}: when the person approves, the step runs again, and the calls before it would "
                "be repeated. Give the action a step of its own (as support_triage.deliver does)."
            )
        asked = tuple(workflow.rules.next_review(list(reasons)))
        ctx.detail["reasons"] = ", ".join(asked)
        facts = workflow.facts
        request = ProposedAction(
            agent=call.agent,
            kind=call.kind,
            resource=call.resource,
            run_id=ctx.site.run_id,
            reasons=asked,
            input_digest=call.input_digest,
            arguments=dict(call.arguments or {}),
            schema=dict(call.schema or {}),
            facts=facts.as_json(),
            judgement=dataclasses.asdict(facts.judgement) if facts.judgement else None,
        )
        error = ReviewRequired(
            f"{call.describe()} waits for a person: {', '.join(asked)}.",
            agent=call.agent,
            resource=call.resource,
            run_id=ctx.site.run_id,
            request=request,
        )
        return Refusal(error, "exception")


def _denied(ctx: CallContext, message: str) -> ActionDenied:
    return ActionDenied(message, agent=ctx.call.agent, resource=ctx.call.resource, run_id=ctx.site.run_id)


def _approval_chain(approvals: tuple[Approval, ...], proposed: str) -> tuple[Approval, ...]:
    """The approvals that lead from the `proposed` action to what runs, in the order people gave them: each one
    approves what the one before let through (an action can need several: a rule's reviewer, then a budget's)."""
    chain: list[Approval] = []
    for approval in approvals:
        if approval.proposed_digest == proposed:
            chain.append(approval)
            proposed = approval.approved_digest
    return tuple(chain)
