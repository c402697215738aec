"""Agents: identities with accountable owners, acting through the governor."""

from podium.agents._agent import Agent, AgentIdentity
from podium.agents._records import AgentRecord
from podium.agents._registry import KEYS, MAX_DELEGATION_DEPTH, AgentRegistry

__all__ = ["KEYS", "MAX_DELEGATION_DEPTH", "Agent", "AgentIdentity", "AgentRecord", "AgentRegistry"]
