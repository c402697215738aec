"""What a workflow tells the cost router, and asks it: `podium.route_outcome` and `podium.route_disagreed`.

Both are DBOS steps: a run that recovers replays its body, and must neither credit again (nor credit answers that
came after) nor read a different answer than the first time.
"""

from __future__ import annotations

from dbos import DBOS

from podium import _current
from podium.errors import UsageError


def route_outcome(success: bool) -> int:
    """Tell the router whether the routed answers of this run were good (say, a person approved the draft).

    Call it in the workflow, once the outcome is known; it teaches the routers of this process (others learn it when
    they next start) and returns how many served answers it credited. A shadow answer that agreed with the served
    one is credited with it (docs/routing.md).
    """
    _in_a_run("route_outcome")
    return _credit(success)


def route_disagreed() -> bool:
    """Whether the strongest model, asked in the router's shadow sample (`routing.shadow_rate`), answered
    differently from the model that served this run. A fact for the run's exception rules: raise a flag with
    `podium.assess(flags={"shadow_disagreed"})` and `ExceptionRules(compliance_flags={"shadow_disagreed"})` sends
    the run's next action to a person. Recorded once, so a replayed run reads the same answer.
    """
    _in_a_run("route_disagreed")
    return _disagreed()


@DBOS.step(name="podium.route_outcome")
def _credit(success: bool) -> int:
    return _current.get().route_outcome(str(DBOS.workflow_id), success)


@DBOS.step(name="podium.route_disagreed")
def _disagreed() -> bool:
    return _current.get().routed.disagreed(str(DBOS.workflow_id))


def _in_a_run(asked: str) -> None:
    if DBOS.workflow_id is None:
        raise UsageError(f"{asked}() is about a workflow run: call it inside a @podium.workflow or @podium.step.")
