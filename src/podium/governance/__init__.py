"""Governance: the governor, its pydantic-ai wrappers, Cedar policies and the kill switch."""

from podium.governance._governor import Call, Governor, Usage
from podium.governance._wrappers import GovernedModel, GovernedToolset

__all__ = [
    "Call",
    "GovernedModel",
    "GovernedToolset",
    "Governor",
    "Usage",
]
