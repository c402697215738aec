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
from podium.tools import send_to_outbox, tool
from podium.workflows import Reviewed, Run, step, workflow

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
    "route_outcome",
    "send_to_outbox",
    "step",
    "tool",
    "workflow",
]
