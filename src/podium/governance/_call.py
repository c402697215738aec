"""What the governor governs: a call, what it consumed, and how it ended."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from podium.policy import Entity, data_entity, model_entity, tool_entity

CallKind = Literal["model", "tool", "memory.read", "memory.write"]
# How a governed call ended, as its audit entry says: it ran ("allowed"), ran and failed ("failed"), or a stage
# stopped it: refused by policy or a stage ("denied"), halted by a suspension, kill or cancel ("stopped"), waiting
# for a person ("exception"), or out of budget ("over_budget").
Outcome = Literal["allowed", "failed", "denied", "stopped", "exception", "over_budget"]


@dataclass(frozen=True)
class Call:
    """What an agent is about to do."""

    agent: str
    kind: CallKind
    resource: str
    tier: str
    input_digest: str
    estimate_nano_usd: int = 0  # the most the call may cost, reserved against budgets before it runs
    resource_team: str = ""  # the team a tool or data scope belongs to ("" for shared ones)
    # A tool call's arguments and their JSON schema: what a person reviews, and what an edit must satisfy.
    arguments: Mapping[str, Any] | None = field(default=None, compare=False)
    schema: Mapping[str, Any] | None = field(default=None, compare=False)

    @property
    def action(self) -> str:
        return self.kind if self.kind.startswith("memory.") else f"{self.kind}.call"

    def resource_entity(self) -> Entity:
        if self.kind == "model":
            return model_entity(self.resource, self.tier)
        if self.kind == "tool":
            return tool_entity(self.resource, self.resource_team)
        return data_entity(self.resource)

    def describe(self) -> str:
        return f"{self.kind} {self.resource!r} of agent {self.agent!r}"


@dataclass(frozen=True)
class Usage:
    """What a call consumed, as the ledger records it."""

    input_tokens: int = 0
    output_tokens: int = 0
    compute_seconds: float = 0.0
    cost_nano_usd: int = 0
    wall_seconds: float = 0.0
