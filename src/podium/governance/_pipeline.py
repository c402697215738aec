"""The governor's pipeline: an ordered list of stages over one typed call context.

    front door ─► run limits ─► admission ─► information flow ─► screening ─► authorisation ─► egress ─► …
                  steps, calls,  registry,     where sinks'        PII kinds,    Cedar            URLs Cedar
                  loops          kills, stops  data came from      injection     (default deny)   permits

              … ─► exceptions ─► containment ─► budgets ─► execute ─► record
                   review rules,  breakers,      reserve the            ledger + audit,
                   approvals      bulkheads      most it costs          budgets settled

Every stage sees the same `CallContext` and may do four things:

- `check(ctx)`: look at the call before anything is committed to it; stop it by raising a `Refusal`;
- `commit(ctx)`: the call will run unless a stage refuses now: claim what is held for it (an approval);
- `finish(ctx, outcome)`: the call ended (ran, failed, or a stage refused it): give back what it held;
- `run(ctx, proceed)`: execute the call by awaiting `proceed()`, or wrap it: time it out, try it again (the
  containment stage does, around a tool; most stages leave it be).

A stage that wants a person to decide raises `NeedsReview(reasons)`; the stage that handles reviews (the
exception stage, from `podium.review`) turns it into the request the caller waits on.

Checks run in order, then commits in order, then the call, then the finishes in reverse order. A refusal from
any stage is audited once, with the stage's name, by the governor. Adding a stage is one class and one line where
the pipeline is assembled (`Governor.__init__`); tests and deployments can also insert one with
`Governor.add_stage`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from podium.errors import GovernanceError
from podium.governance._call import Call, Outcome, Usage
from podium.governance._site import CallSite
from podium.policy import Decision, Entity


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

    def waived_budgets(self) -> frozenset[str]:
        """The budgets the person let the call go over: those whose exhaustion they were asked about."""
        prefix = "budget_exhausted:"
        return frozenset(r.removeprefix(prefix) for r in self.reasons if r.startswith(prefix))


@dataclass(frozen=True)
class Standing:
    """What admission read about the caller in one query: who it is as Cedar sees it, and what stops it."""

    principal: Entity
    team: str
    killed: bool
    run_stopped: bool
    budgeted: bool  # whether any budget covers the call at all (if not, nothing is reserved)
    registry: tuple[Any, ...]  # the registry rows it came from: part of the key a Cedar decision is reused under
    all_teams: tuple[str, ...] | None = None  # a person's teams (an agent has one: `team`)
    delegators: tuple[str, ...] = ()  # the agents a delegate acts for, nearest first (its rights are within theirs)

    @property
    def teams(self) -> tuple[str, ...]:
        """Every team whose budgets and kills cover the caller."""
        if self.all_teams is not None:
            return self.all_teams
        return (self.team,) if self.team else ()


@dataclass(frozen=True)
class Flow:
    """Where a consequential call's arguments came from, as the information-flow stage traced them (argument
    names, and data scopes): Cedar reads it as `context.untrusted_targets` and the like (docs/security.md)."""

    untrusted_targets: frozenset[str] = frozenset()
    untrusted_content: frozenset[str] = frozenset()
    confidential_out: frozenset[str] = frozenset()
    # No sink value to trace (a call with no argument, "mark all read"), made after untrusted data was read in its
    # front door: only the decision to make it is left, and that may be the data's.
    decided_after_untrusted: bool = False

    def as_context(self) -> dict[str, list[str] | bool]:
        return {
            "untrusted_targets": sorted(self.untrusted_targets),
            "untrusted_content": sorted(self.untrusted_content),
            "confidential_out": sorted(self.confidential_out),
            "decided_after_untrusted": self.decided_after_untrusted,
        }


NO_FLOW = Flow()


@dataclass(frozen=True)
class Screened:
    """What the screening stage saw earlier in the call's front door (the run, the request): the highest injection
    score of the tool results (or the gateway prompt) read there, in thousandths, and whether the detector flagged
    any. Cedar reads it as `context.injection_score` and `context.injection_seen` (docs/screening.md)."""

    injection_score: int = 0
    injection_seen: bool = False

    def as_context(self) -> dict[str, Any]:
        return {"injection_score": self.injection_score, "injection_seen": self.injection_seen}


NOTHING_SCREENED = Screened()


@dataclass
class CallContext:
    """One governed call on its way through the pipeline. Stages fill in what they learn."""

    call: Call  # what will run: a stage may replace it (a person's approved edit of the arguments)
    site: CallSite
    detail: dict[str, str] = field(default_factory=dict)  # joins the call's audit entry
    standing: Standing | None = None  # admission
    flow: Flow = NO_FLOW  # information flow: where a consequential call's arguments came from
    screened: Screened = NOTHING_SCREENED  # screening: what the front door's earlier tool results looked like
    decision: Decision | None = None  # authorisation
    exceptions: tuple[str, ...] = ()  # authorisation: `@exception` forbids a person may lift
    approvals: tuple[Approval, ...] = ()  # exceptions: the people's approvals this call runs under
    budget_scopes: tuple[str, ...] = ()  # budgets: charged with what the call cost, when it is recorded
    reserved: bool = False  # budgets: something is held for the call
    usage: Usage = field(default_factory=Usage)  # execute
    output_digest: str = ""  # execute
    output: Any = None  # execute: what the call returned, or its error's text (a stage's finish labels its data)
    holds: dict[str, Any] = field(default_factory=dict)  # what a stage holds for the call until its finish, by name

    @property
    def team(self) -> str:
        return self.standing.team if self.standing is not None else ""

    @property
    def policies(self) -> tuple[str, ...]:
        return self.decision.policies if self.decision is not None else ()


class Refusal(Exception):
    """A stage's verdict that the call must not run: the governor audits it (outcome, stage, reason, the deciding
    policies) and raises `error` to the caller."""

    def __init__(
        self, error: GovernanceError, outcome: Outcome, *, why: str = "", policies: tuple[str, ...] = ()
    ) -> None:
        super().__init__(error.message)
        self.error = error
        self.outcome = outcome
        self.why = why  # a short code for the audit entry ("altered", "replayed" …)
        self.policies = policies


class NeedsReview(Exception):
    """A stage's verdict that the call must wait for a person's decision, for `reasons`. A stage that handles
    reviews (`Stage.review`) turns it into the request the caller waits on; with none, the call is refused."""

    def __init__(self, reasons: tuple[str, ...]) -> None:
        super().__init__(", ".join(reasons))
        self.reasons = reasons


class Stage:
    """One step of the governor's pipeline. Subclasses set `name` and override what they need."""

    name: ClassVar[str] = "stage"

    def check(self, ctx: CallContext) -> None:
        """Look at the call before it runs; raise `Refusal` to stop it."""

    def commit(self, ctx: CallContext) -> None:
        """Every check passed: claim what this stage holds for the call (it may still raise `Refusal`)."""

    def finish(self, ctx: CallContext, outcome: Outcome | None) -> None:
        """The call ended with `outcome` (None: interrupted, e.g. cancelled); release what it held if need be."""

    async def run(self, ctx: CallContext, proceed: Callable[[], Awaitable[Any]]) -> Any:
        """Execute the call: `proceed()` runs it (through the later stages' `run`). A stage may wrap it, and call
        `proceed` again to try again: every try is the same governed call, under the same call key."""
        return await proceed()

    def review(self, ctx: CallContext, reasons: tuple[str, ...]) -> Refusal | None:
        """Turn a stage's `NeedsReview` into the refusal its caller waits on (a review request, outcome
        "exception"), or refuses with; None: this stage does not handle reviews."""
        return None
