"""Agents: identities with accountable owners, acting through the governor."""

from podium.agents._agent import Agent, AgentIdentity
from podium.agents._registry import KEYS, AgentRecord, AgentRegistry

__all__ = ["KEYS", "Agent", "AgentIdentity", "AgentRecord", "AgentRegistry"]
