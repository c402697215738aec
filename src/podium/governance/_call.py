"""What the governor governs: a call, what it consumed, and how it ended."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from podium.cost import Tokens
from podium.policy import Entity, data_entity, model_entity, tool_entity

CallKind = Literal["model", "tool", "memory.read", "memory.write"]
# What a consequential tool's argument is: where the action lands or the data goes (an address, an account, a URL,
# a record's id), or what is written or sent there (a body, an amount, a file's content).
SinkKind = Literal["target", "content"]
SINK_KINDS: tuple[SinkKind, ...] = ("target", "content")
PrincipalKind = Literal["agent", "person"]  # who acts: an agent, or a person calling a model at the gateway
# How a governed call ended, as its audit entry says: it ran ("allowed"), ran and failed ("failed"), or a stage
# stopped it: refused by policy or a stage ("denied"), halted by a suspension, kill or cancel ("stopped"), waiting
# for a person ("exception"), or out of budget ("over_budget").
Outcome = Literal["allowed", "failed", "denied", "stopped", "exception", "over_budget"]


@dataclass(frozen=True)
class ToolDeclaration:
    """What a tool's author declares about it (`@podium.tool`): what a call costs, whose it is, and how data flows
    through it, which the information-flow stage reads (docs/security.md)."""

    fee_nano_usd: int = 0  # a paid API's or licence's charge per call
    team: str = ""  # only that team's agents may call it ("" shared)
    consequential: bool = False  # it changes the world: sends, pays, writes, deletes, grants, calls out
    sinks: tuple[tuple[str, SinkKind], ...] = ()  # (argument, kind) of a consequential tool: all targets if none
    reads: str = ""  # the data scope its results come from: their confidentiality label ("" none)
    # How its calls are contained (docs/governance.md, "Cascading failures"); None: podium.toml's [resilience].
    timeout_s: float | None = None  # the most one attempt may take
    retries: int | None = None  # tries after the first on a transient failure (unset: none if consequential)
    max_concurrent: int | None = None  # its calls under way at once, in this process
    retry_on: tuple[type[Exception], ...] = ()  # what else is transient, besides timeouts and connection errors
    blocking: bool = False  # a plain (not async) function: one that declares timeout_s runs on threads of its own

    def sink_kinds(self, arguments: Mapping[str, Any]) -> dict[str, SinkKind]:
        """The sink arguments of one call and their kinds: every argument is a target unless the tool says which
        are sinks (the strict default: an undeclared consequential tool checks everything it is given)."""
        if not self.consequential:
            return {}
        return dict(self.sinks) if self.sinks else dict.fromkeys(arguments, "target")


NO_DECLARATION = ToolDeclaration()


@dataclass(frozen=True)
class Call:
    """What an agent (or a person, at the gateway) is about to do."""

    agent: str  # the name of who acts: an agent's, or a person's when `principal` is "person"
    kind: CallKind
    resource: str
    tier: str
    input_digest: str
    estimate_nano_usd: int = 0  # the most the call may cost, reserved against budgets before it runs
    resource_team: str = ""  # the team a tool or data scope belongs to ("" for shared ones)
    # A tool call's arguments and their JSON schema: what a person reviews, and what an edit must satisfy.
    arguments: Mapping[str, Any] | None = field(default=None, compare=False)
    schema: Mapping[str, Any] | None = field(default=None, compare=False)
    principal: PrincipalKind = "agent"
    alias: str = ""  # the name a gateway client asked for the model by, which grants it too
    provider: str = "local"  # where a model call's input goes: "local", else the endpoint's host
    data: frozenset[str] = frozenset()  # kinds of sensitive data its input carries out (the gateway's scan)
    declaration: ToolDeclaration = field(default=NO_DECLARATION, compare=False)  # a tool call's tool, as declared

    @property
    def actor(self) -> str:
        """Who acts, as the audit log and budgets name them: `agent:<name>` or `person:<name>`."""
        return f"{self.principal}:{self.agent}"

    @property
    def action(self) -> str:
        return self.kind if self.kind.startswith("memory.") else f"{self.kind}.call"

    def resource_entity(self) -> Entity:
        if self.kind == "model":
            return model_entity(self.resource, self.tier, alias=self.alias, provider=self.provider)
        if self.kind == "tool":
            return tool_entity(self.resource, self.resource_team, consequential=self.declaration.consequential)
        return data_entity(self.resource)

    def describe(self) -> str:
        return f"{self.kind} {self.resource!r} of {self.principal} {self.agent!r}"


@dataclass(frozen=True)
class Usage:
    """What a call consumed, as the ledger records it. `input_tokens` and `output_tokens` are totals; the token
    classes priced at their own rates (cached and cache-write input, reasoning output) are counted within them."""

    input_tokens: int = 0
    output_tokens: int = 0
    compute_seconds: float = 0.0
    cost_nano_usd: int = 0
    wall_seconds: float = 0.0
    cached_input_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0

    @classmethod
    def of(cls, tokens: Tokens, *, compute_seconds: float, cost_nano_usd: int) -> Usage:
        return cls(
            tokens.total_input,
            tokens.total_output,
            compute_seconds,
            cost_nano_usd,
            cached_input_tokens=tokens.cached_input,
            cache_write_tokens=tokens.cache_write,
            reasoning_tokens=tokens.reasoning,
        )
