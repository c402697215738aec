"""podium: governed AI orchestration.

Durable workflows in which agents and people cooperate, with every model and tool call passing one governor
that authorises it, costs it in a ledger and records it in a tamper-evident audit log.

Each name below is imported on first use (PEP 562), so that `import podium` or a command line that only reads
the database does not load DBOS, pydantic-ai and the model libraries.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from podium._version import __version__

if TYPE_CHECKING:
    from podium._events import Event, EventBus
    from podium._routing import route_disagreed, route_outcome
    from podium._runtime import App, Podium, connect, launch
    from podium.agents import Agent
    from podium.cost import Price
    from podium.errors import (
        ActionDenied,
        ActionRejected,
        ActorStopped,
        BudgetExhausted,
        ConfigurationError,
        GovernanceError,
        InputDataError,
        ModelFileError,
        ModelUnavailable,
        NotFoundError,
        PodiumError,
        ReviewRequired,
        StaleError,
        Unauthenticated,
        UsageError,
    )
    from podium.governance import current_call, request_scope
    from podium.policy import Identity
    from podium.review import OWNER, Escalation, ExceptionRules, Judgement, assess
    from podium.settings import Settings
    from podium.tools import MCPServer, send_to_outbox, tool
    from podium.workflows import Reviewed, Run, step, workflow

_HOMES = {
    "podium._events": ("Event", "EventBus"),
    "podium._routing": ("route_disagreed", "route_outcome"),
    "podium._runtime": ("App", "Podium", "connect", "launch"),
    "podium.agents": ("Agent",),
    "podium.cost": ("Price",),
    "podium.errors": (
        "ActionDenied",
        "ActionRejected",
        "ActorStopped",
        "BudgetExhausted",
        "ConfigurationError",
        "GovernanceError",
        "InputDataError",
        "ModelFileError",
        "ModelUnavailable",
        "NotFoundError",
        "PodiumError",
        "ReviewRequired",
        "StaleError",
        "Unauthenticated",
        "UsageError",
    ),
    "podium.governance": ("current_call", "request_scope"),
    "podium.policy": ("Identity",),
    "podium.review": ("OWNER", "Escalation", "ExceptionRules", "Judgement", "assess"),
    "podium.settings": ("Settings",),
    "podium.tools": ("MCPServer", "send_to_outbox", "tool"),
    "podium.workflows": ("Reviewed", "Run", "step", "workflow"),
}
_MODULE_OF = {name: module for module, names in _HOMES.items() for name in names}


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'podium' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # once imported, an ordinary attribute
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_MODULE_OF})


__all__ = [
    "OWNER",
    "ActionDenied",
    "ActionRejected",
    "ActorStopped",
    "Agent",
    "App",
    "BudgetExhausted",
    "ConfigurationError",
    "Escalation",
    "Event",
    "EventBus",
    "ExceptionRules",
    "GovernanceError",
    "Identity",
    "InputDataError",
    "Judgement",
    "MCPServer",
    "ModelFileError",
    "ModelUnavailable",
    "NotFoundError",
    "Podium",
    "PodiumError",
    "Price",
    "ReviewRequired",
    "Reviewed",
    "Run",
    "Settings",
    "StaleError",
    "Unauthenticated",
    "UsageError",
    "__version__",
    "assess",
    "connect",
    "current_call",
    "launch",
    "request_scope",
    "route_disagreed",
    "route_outcome",
    "send_to_outbox",
    "step",
    "tool",
    "workflow",
]
