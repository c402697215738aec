"""podium's exceptions: two roots, so callers can tell a mistake to fix from a failure to handle.

    PodiumError
    ├── UsageError                 you used podium wrong; the message says how to fix it
    │   ├── ConfigurationError     a setting is wrong (database URL, model file, data file)
    │   ├── ModelFileError         a model file is missing or its sha256 does not match
    │   ├── InputDataError         an input file (tickets, labels) is malformed
    │   ├── NotFoundError          an unknown workflow, run, agent or review id
    │   └── StaleError             it changed since you looked (a request decided, escalated or claimed meanwhile)
    ├── GovernanceError            the governor refused an action at run time
    │   ├── ActionDenied           the agent is not allowed that model or tool
    │   │   └── Unauthenticated    no key, or a key that proves no one (unknown, revoked, expired)
    │   ├── ActorStopped           the agent is suspended or its run was cancelled
    │   │   └── SideEffectFenced   … noticed as a side effect committed: nothing of it was written
    │   ├── BudgetExhausted        a budget covering the call has no room for it
    │   ├── RateLimited            a key or team is over its requests or tokens a minute (the gateway)
    │   ├── Unavailable            a tool's or agent's circuit breaker is open, or it has its most calls under way
    │   ├── RunLimitReached        a run went past its steps, calls or nesting, or repeated one call (a loop)
    │   ├── ReviewRequired         an exception rule fired: the action waits for a person (handled by @step)
    │   ├── ActionRejected         a person rejected the action, or its review expired with "reject"
    │   └── RequestTooLarge        a model request is larger than the model reads: not sent (work for a person)
    ├── ModelUnavailable           every model a request could go to failed or has its circuit breaker open
    └── AuditTampered              the audit log no longer holds what podium signed: nothing more is signed

Every exception pickles with its fields intact: DBOS records a step's error and re-raises it in the workflow,
possibly in another process.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


class PodiumError(Exception):
    """Root of every error podium raises on purpose."""

    def __init__(self, message: str, **fields: Any) -> None:
        super().__init__(message)
        self.message = message
        self.fields = fields
        for key, value in fields.items():
            setattr(self, key, value)

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), self.message, self.fields))

    def __str__(self) -> str:
        return self.message


def _rebuild(cls: type[PodiumError], message: str, fields: dict[str, Any]) -> PodiumError:
    return cls(message, **fields)


class UsageError(PodiumError):
    """podium was used wrongly; the message names the fix."""


class ConfigurationError(UsageError):
    """A setting is wrong or points at something that does not answer."""


class ModelFileError(UsageError):
    """A model file is missing or is not the file podium recorded (sha256 mismatch)."""


class InputDataError(UsageError):
    """An input file is malformed."""


class NotFoundError(UsageError):
    """An id names nothing podium knows."""


class StaleError(UsageError):
    """What the caller acted on changed since they read it (or was decided already): look again, then act."""


class GovernanceError(PodiumError):
    """The governor refused an action; `fields` say who, what and why."""


class ActionDenied(GovernanceError):
    """The agent may not use this model or tool."""


class Unauthenticated(ActionDenied):
    """No key was presented, or the key proves no one (malformed, unknown, revoked, expired); `reason` says which."""


class ActorStopped(GovernanceError):
    """The agent is suspended or the run is cancelled, so no further action may happen."""


class SideEffectFenced(ActorStopped):
    """A side effect checked again as it committed (`Governor.fence`) and found its agent or run stopped: nothing
    of it was written."""


class BudgetExhausted(GovernanceError):
    """A budget covering the call has no room for it. `on_exhausted` says what its owner wants: "stop" the work,
    or "review": turn it into an exception for a person (the run then waits for a review, like any exception)."""

    scope: str
    on_exhausted: str


class Unavailable(GovernanceError):
    """Refused fast to contain a failure: the tool's or agent's circuit breaker is open (`why` "circuit_open"), or
    it has as many calls under way as it may (`why` "bulkhead_full"). `scope` ("tool:<name>" or "agent:<name>")
    says which, `retry_after_s` when to try again. Nothing ran."""

    scope: str
    why: str
    retry_after_s: float


class RunLimitReached(GovernanceError):
    """A run (or request) went past one of its limits: its steps, its governed calls, or the same call repeated
    (a loop), or calls nested too deep in calls (sub-agents run by tools); `limit` names it ("max_steps", "max_calls",
    "max_repeats", "max_depth"). The call did not run and the run stops."""

    limit: str


class RateLimited(GovernanceError):
    """A key or team made more requests, or used more tokens, this minute than its limit allows. `retry_after_s`
    says when the next window opens."""

    scope: str
    retry_after_s: int


@dataclass(frozen=True)
class ProposedAction:
    """The exact action a person is asked to decide, and why: what `ReviewRequired` carries to the review queue."""

    agent: str
    kind: str
    resource: str
    run_id: str | None
    reasons: tuple[str, ...]
    input_digest: str  # the digest of the proposed action: an approval binds to it
    arguments: dict[str, Any] = field(default_factory=dict)
    schema: dict[str, Any] = field(default_factory=dict)  # what an edit of the arguments must satisfy
    facts: dict[str, Any] = field(default_factory=dict)  # what the workflow assessed (`podium.assess`)
    judgement: dict[str, Any] | None = None  # the classifier's judgement a reviewer's label corrects


class ReviewRequired(GovernanceError):
    """An exception rule fired on a call: the governor did not perform it, and the step it came from waits
    (durably) for a person's decision on the exact action, then runs again with the approval.

    `@podium.step` handles it; workflow code sees only the outcome: the step returns, or ActionRejected."""

    request: ProposedAction

    def __init__(self, message: str, **fields: Any) -> None:
        if "request" not in fields and "input_digest" in fields:
            # Recorded by podium before 0.2 (a run that waited across the upgrade): its action came as loose fields.
            names = ProposedAction.__dataclass_fields__
            action = {k: fields.pop(k) for k in list(fields) if k in names and k not in ("agent", "resource", "run_id")}
            fields["request"] = ProposedAction(
                agent=fields["agent"],
                resource=fields["resource"],
                run_id=fields.get("run_id"),
                **{**action, "reasons": tuple(action.get("reasons", ())), "facts": action.get("facts") or {}},
            )
        super().__init__(message, **fields)


class ActionRejected(GovernanceError):
    """A person rejected the proposed action, or nobody decided in time and the workflow's default is to
    reject. `review_id`, `status` (rejected | expired), `by`, `rationale` and `reasons` say which and why."""


class RequestTooLarge(GovernanceError):
    """A model request does not fit the model's context window, so it was not sent: the work is too large for the
    model, and is a person's (raise the `too_large` flag with `podium.assess`, and its action waits for one).
    `model`, `tokens` (the request's, output included) and `limit` say by how much."""


class ModelUnavailable(PodiumError):
    """Every model a routed request could go to failed or has its circuit breaker open; the message lists each."""


class AuditTampered(PodiumError):
    """The audit log in the database no longer holds a head podium signed (or its stored tree edge was altered).
    podium refuses to sign on top of it: that would bless the rewrite."""
