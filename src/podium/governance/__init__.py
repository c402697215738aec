"""Governance: the governor and its pipeline of stages, its front doors, its pydantic-ai wrappers, Cedar policies
and the kill switch."""

from podium.governance._call import Call, CallKind, Outcome, Usage
from podium.governance._governor import Governor
from podium.governance._kill import KillReport, KillSwitch, kill_scope
from podium.governance._pipeline import Approval, CallContext, NeedsReview, Refusal, Stage, Standing
from podium.governance._report import GovernanceReport, governance_report, report_markdown
from podium.governance._routed import RoutedModel, RoutedModels
from podium.governance._site import CallSite, FrontDoor, current_call, enter_door, request_scope
from podium.governance._wrappers import GovernedModel, GovernedToolset

__all__ = [
    "Approval",
    "Call",
    "CallContext",
    "CallKind",
    "CallSite",
    "FrontDoor",
    "GovernedModel",
    "GovernedToolset",
    "GovernanceReport",
    "Governor",
    "KillReport",
    "KillSwitch",
    "NeedsReview",
    "Outcome",
    "Refusal",
    "RoutedModel",
    "RoutedModels",
    "Stage",
    "Standing",
    "Usage",
    "current_call",
    "enter_door",
    "governance_report",
    "kill_scope",
    "report_markdown",
    "request_scope",
]
