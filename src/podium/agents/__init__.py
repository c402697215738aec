"""Agents: identities with accountable owners, acting through the governor."""

from podium.agents._agent import Agent, AgentIdentity
from podium.agents._registry import AgentRecord, AgentRegistry, split_key

__all__ = ["Agent", "AgentIdentity", "AgentRecord", "AgentRegistry", "split_key"]
