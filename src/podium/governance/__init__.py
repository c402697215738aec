"""Governance: the governor and its pipeline of stages, its front doors, its pydantic-ai wrappers, Cedar policies
and the kill switch.

The pydantic-ai wrappers (GovernedModel, GovernedToolset, RoutedModel, RoutedModels) load on first use: reading
runs, reviews and the registry needs the governor's records, not pydantic-ai.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from podium.governance._call import SINK_KINDS, Call, CallKind, Outcome, SinkKind, ToolDeclaration, Usage
from podium.governance._compute import MeasuredCompute
from podium.governance._containment import Bulkhead, Containment
from podium.governance._floor import FloorStatus, ModelFloor, floor_status
from podium.governance._governor import Governor
from podium.governance._kill import KillReport, KillSwitch, kill_scope
from podium.governance._limits import RunLimits
from podium.governance._pipeline import Approval, CallContext, Flow, NeedsReview, Refusal, Screened, Stage, Standing
from podium.governance._report import GovernanceReport, governance_report, report_markdown
from podium.governance._shadow import SHADOW_OF, Said, answers_agree, in_shadow_sample, said
from podium.governance._site import (
    CallSite,
    DoorMemory,
    FrontDoor,
    current_call,
    current_door_key,
    enter_door,
    request_scope,
    side_scope,
    valid_request_id,
)

if TYPE_CHECKING:
    from podium.governance._routed import RoutedModel, RoutedModels
    from podium.governance._wrappers import DECLARATION_METADATA, GovernedModel, GovernedToolset

_ON_FIRST_USE = {
    "DECLARATION_METADATA": "podium.governance._wrappers",
    "GovernedModel": "podium.governance._wrappers",
    "GovernedToolset": "podium.governance._wrappers",
    "RoutedModel": "podium.governance._routed",
    "RoutedModels": "podium.governance._routed",
}


def __getattr__(name: str) -> Any:
    if name not in _ON_FIRST_USE:
        raise AttributeError(f"module 'podium.governance' has no attribute {name!r}")
    return getattr(importlib.import_module(_ON_FIRST_USE[name]), name)


__all__ = [
    "DECLARATION_METADATA",
    "SHADOW_OF",
    "SINK_KINDS",
    "Approval",
    "Bulkhead",
    "Call",
    "CallContext",
    "CallKind",
    "CallSite",
    "Containment",
    "DoorMemory",
    "FloorStatus",
    "Flow",
    "FrontDoor",
    "GovernanceReport",
    "GovernedModel",
    "GovernedToolset",
    "Governor",
    "KillReport",
    "KillSwitch",
    "MeasuredCompute",
    "ModelFloor",
    "NeedsReview",
    "Outcome",
    "Refusal",
    "RoutedModel",
    "RoutedModels",
    "RunLimits",
    "Said",
    "Screened",
    "SinkKind",
    "Stage",
    "Standing",
    "ToolDeclaration",
    "Usage",
    "answers_agree",
    "current_call",
    "current_door_key",
    "enter_door",
    "floor_status",
    "governance_report",
    "in_shadow_sample",
    "kill_scope",
    "report_markdown",
    "request_scope",
    "said",
    "side_scope",
    "valid_request_id",
]
