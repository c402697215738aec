"""What a workflow tells the cost router, and asks it: `podium.route_outcome` and `podium.route_disagreed`."""

from __future__ import annotations

from podium import _current
from podium.errors import UsageError


def route_outcome(success: bool) -> int:
    """Tell the router whether the routed answers of this run were good (say, a person approved the draft).

    Call it in the workflow, once the outcome is known; it teaches the routers of this process (others learn it when
    they next start) and returns how many served answers it credited. A shadow answer that agreed with the served
    one is credited with it (docs/routing.md).
    """
    return _current.get().route_outcome(_run_id("route_outcome"), success)


def route_disagreed() -> bool:
    """Whether the strongest model, asked in the router's shadow sample, answered differently from the model that
    served this run (`routing.shadow_rate`). A fact for the run's exception rules: raise a flag with
    `podium.assess(flags={"shadow_disagreed"})` and `ExceptionRules(compliance_flags={"shadow_disagreed"})` sends
    the run's next action to a person. It reads what the run stored, so a replayed run gets the same answer.
    """
    return _current.get().routed.disagreed(_run_id("route_disagreed"))


def _run_id(asked: str) -> str:
    from dbos import DBOS

    run_id = DBOS.workflow_id
    if run_id is None:
        raise UsageError(f"{asked}() is about a workflow run: call it inside a @podium.workflow or @podium.step.")
    return str(run_id)
