"""podium: governed AI orchestration.

Durable workflows in which agents and people cooperate, with every model and tool call passing one governor
that authorises it, costs it in a ledger and records it in a tamper-evident audit log.
"""

from podium._events import Event, EventBus
from podium._runtime import App, Podium, connect, launch, route_outcome
from podium._version import __version__
from podium.agents import Agent
from podium.cost import Price
from podium.errors import (
    ActionDenied,
    ActorStopped,
    BudgetExhausted,
    ConfigurationError,
    GovernanceError,
    InputDataError,
    ModelFileError,
    ModelUnavailable,
    NotFoundError,
    PodiumError,
    UsageError,
)
from podium.review import Decision, request_review
from podium.settings import Settings
from podium.tools import send_to_outbox, tool
from podium.workflows import Run, current_call, step, workflow

__all__ = [
    "ActionDenied",
    "ActorStopped",
    "Agent",
    "App",
    "BudgetExhausted",
    "ConfigurationError",
    "Decision",
    "Event",
    "EventBus",
    "GovernanceError",
    "InputDataError",
    "ModelFileError",
    "ModelUnavailable",
    "NotFoundError",
    "Podium",
    "PodiumError",
    "Price",
    "Run",
    "Settings",
    "UsageError",
    "__version__",
    "connect",
    "current_call",
    "launch",
    "request_review",
    "route_outcome",
    "send_to_outbox",
    "step",
    "tool",
    "workflow",
]
