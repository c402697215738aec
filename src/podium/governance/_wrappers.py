"""The governor as pydantic-ai wrappers: a governed model and a governed toolset.

An agent never holds a bare model or toolset; it holds these, so no call can bypass the governor.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from pydantic_ai import RunContext
from pydantic_ai._utils import disable_threads  # private; pydantic-ai's Temporal integration uses it (pinned)
from pydantic_ai.messages import (
    ModelMessage,
    ModelRequestPart,
    ModelResponse,
    ModelResponsePart,
    RetryPromptPart,
    TextPart,
    ToolCallPart,
    ToolReturnPart,
)
from pydantic_ai.models import Model, ModelRequestContext, ModelRequestParameters, StreamedResponse
from pydantic_ai.models.wrapper import WrapperModel
from pydantic_ai.settings import ModelSettings
from pydantic_ai.toolsets import ToolsetTool, WrapperToolset
from pydantic_core import to_json

from podium._tiers import Tier
from podium.audit import canonical_json, digest
from podium.cost import Price
from podium.errors import RequestTooLarge, UsageError
from podium.governance._call import NO_DECLARATION, Call, ToolDeclaration, Usage
from podium.governance._governor import Governor
from podium.governance._site import CallSite, current_call
from podium.models import COMPUTE_SECONDS, to_chat

EXPECTED_OUTPUT_TOKENS = 256  # what a request that sets no max_tokens is expected to produce (for routing)
DEFAULT_MAX_TOKENS = 1024  # the cap the governor sets on a request that sets none, so its cost has a bound
TOKENS_PER_MESSAGE = 8  # the most a chat template adds around each message (role markers, separators)
SLOWEST_TOKENS_PER_SECOND = 2.0  # local compute is reserved as if the model managed no more than this
# Where a tool without a Python function (an MCP server's) carries its ToolDeclaration: its definition's metadata.
DECLARATION_METADATA = "podium_declaration"


def expected_tokens(prompt_chars: int, model_settings: ModelSettings | None) -> tuple[int, int]:
    """Input and output tokens a request is expected to take, before it runs: about four characters a token in,
    and its max_tokens out. For choosing a model; budgets reserve `most_tokens`."""
    return prompt_chars // 4 + 1, int((model_settings or {}).get("max_tokens") or EXPECTED_OUTPUT_TOKENS)


def most_tokens(
    messages: list[ModelMessage], parameters: ModelRequestParameters, model_settings: ModelSettings
) -> tuple[int, int]:
    """The most input and output tokens a request can be billed for: no tokeniser makes more tokens than the UTF-8
    bytes it reads (every part of every message: prompts, tool calls and their results, retries, attachments as
    their JSON, and the tool definitions sent with them), plus the chat template's markers; and no more output than
    its max_tokens (which the governor always sets)."""
    parts = [part for message in messages for part in message.parts]
    tools = [
        {"name": tool.name, "description": tool.description, "parameters": tool.parameters_json_schema}
        for tool in (*parameters.function_tools, *parameters.output_tools)
    ]
    read = sum(_bytes_read(part) for part in parts) + len(canonical_json(tools).encode())
    return read + TOKENS_PER_MESSAGE * (len(parts) + 2), int(model_settings.get("max_tokens") or DEFAULT_MAX_TOKENS)


def _bytes_read(part: ModelRequestPart | ModelResponsePart) -> int:
    """The UTF-8 bytes of what a part puts in front of the model."""
    if isinstance(part, ToolCallPart):
        text = part.tool_name + part.args_as_json_str()
    elif isinstance(part, ToolReturnPart):
        text = part.tool_name + part.model_response_str()
    elif isinstance(part, RetryPromptPart):
        text = part.model_response()
    else:
        content = getattr(part, "content", "")
        return len(content.encode()) if isinstance(content, str) else len(to_json(content))
    return len(text.encode())


class GovernedModel(WrapperModel):
    """A model whose every request passes the governor on behalf of one agent."""

    def __init__(self, wrapped: Model, *, governor: Governor, agent: str, name: str, tier: Tier, price: Price) -> None:
        super().__init__(wrapped)
        self._governor = governor
        self._agent = agent
        self._name = name
        self._tier = tier
        self._price = price

    @property
    def name(self) -> str:
        return self._name

    @property
    def price(self) -> Price:
        return self._price

    @property
    def tier(self) -> Tier:
        return self._tier

    async def request(
        self,
        messages: list[ModelMessage],
        model_settings: ModelSettings | None,
        model_request_parameters: ModelRequestParameters,
    ) -> ModelResponse:
        return await self.request_explained(messages, model_settings, model_request_parameters, {})

    async def request_explained(
        self,
        messages: list[ModelMessage],
        model_settings: ModelSettings | None,
        model_request_parameters: ModelRequestParameters,
        detail: dict[str, str],
        answered: Callable[[CallSite], None] | None = None,
    ) -> ModelResponse:
        """A request whose audit entry also carries `detail` (the router's reasons for choosing this model);
        `answered` is told the call's site once the model answered, inside the governed call."""
        turns = [(t.role, t.content) for t in to_chat(messages)]
        # The output is capped, so that the most the call can cost is known before it runs and reserved whole:
        # concurrent calls then cannot take a budget past its limit, whatever they turn out to cost.
        model_settings = {**(model_settings or {}), "max_tokens": self._max_tokens(model_settings)}
        self._check_fits(messages, model_settings["max_tokens"])
        tokens_in, tokens_out = most_tokens(messages, model_request_parameters, model_settings)
        slowest = getattr(self.wrapped, "slowest_tokens_per_second", SLOWEST_TOKENS_PER_SECOND)
        most = self._price.cost_nano_usd(tokens_in, tokens_out, (tokens_in + tokens_out) / slowest)
        call = Call(self._agent, "model", self._name, self._tier, digest(turns), estimate_nano_usd=most)

        async def execute(_: Call) -> ModelResponse:
            response = await self.wrapped.request(messages, model_settings, model_request_parameters)
            if answered is not None:
                answered(current_call())
            return response

        return await self._governor.govern(call, execute, self._measure, _response_text, detail)

    @asynccontextmanager
    async def request_stream(
        self,
        messages: list[ModelMessage],
        model_settings: ModelSettings | None,
        model_request_parameters: ModelRequestParameters,
        run_context: RunContext[Any] | None = None,
    ) -> AsyncGenerator[StreamedResponse]:
        """Refused: a streamed request would reach the provider past the governor (WrapperModel passes it on)."""
        raise UsageError(
            f"model {self._name!r} was asked to stream (run_stream), which podium does not govern yet, so it is "
            "refused rather than sent ungoverned. Use a non-streaming run (agent.run)."
        )
        yield  # pragma: no cover - makes this an async generator; never reached

    async def compact_messages(
        self, request_context: ModelRequestContext, *, instructions: str | None = None
    ) -> ModelResponse:
        """Refused: the provider's own compaction would be a model call past the governor."""
        raise UsageError(
            f"model {self._name!r} was asked to compact a conversation with the provider, which podium does not "
            "govern; keep histories short, or compact them with a governed call of your own."
        )

    def _check_fits(self, messages: list[ModelMessage], max_tokens: int) -> None:
        """Refuse a request larger than the model reads (prompt and output), before it is sent or charged: the
        model would fail on it, or cut it. A model that says how much it reads and counts its tokens is checked."""
        window = getattr(self.wrapped, "context_tokens", None)
        count = getattr(self.wrapped, "prompt_tokens", None)
        if window is None or count is None:
            return
        needed = int(count(to_chat(messages))) + max_tokens
        if needed > window:
            raise RequestTooLarge(
                f"the request to {self._name} takes {needed:,} tokens (with {max_tokens:,} of reply), more than the "
                f"{window:,} it reads: the work is too large for it. Give it to a person (podium.assess(flags="
                f'{{"too_large"}})), or route it to a model that reads more.',
                agent=self._agent,
                model=self._name,
                tokens=needed,
                limit=window,
            )

    def _max_tokens(self, model_settings: ModelSettings | None) -> int:
        """The request's own bound, else the model's configured one, else what the model makes unasked (a local
        model says; a remote one gets DEFAULT_MAX_TOKENS)."""
        unasked = getattr(self.wrapped, "default_max_tokens", DEFAULT_MAX_TOKENS)
        return int(
            (model_settings or {}).get("max_tokens") or (self.wrapped.settings or {}).get("max_tokens") or unasked
        )

    def _measure(self, response: ModelResponse) -> Usage:
        seconds = float((response.provider_details or {}).get(COMPUTE_SECONDS, 0.0))
        tokens_in, tokens_out = response.usage.input_tokens, response.usage.output_tokens
        return Usage(tokens_in, tokens_out, seconds, self._price.cost_nano_usd(tokens_in, tokens_out, seconds))


def _response_text(response: ModelResponse) -> str:
    return "".join(part.content for part in response.parts if isinstance(part, TextPart))


@dataclass
class GovernedToolset(WrapperToolset[Any]):
    """A toolset whose every call passes the governor on behalf of one agent."""

    governor: Governor = field(kw_only=True)
    agent: str = field(kw_only=True)
    # What each tool's author declared (fee, team, how data flows through it), by tool name.
    declarations: dict[str, ToolDeclaration] = field(kw_only=True, default_factory=dict)

    async def call_tool(
        self, name: str, tool_args: dict[str, Any], ctx: RunContext[Any], tool: ToolsetTool[Any]
    ) -> Any:
        declared = self.declarations.get(name) or _declared_in(tool)
        fee = declared.fee_nano_usd
        call = Call(
            self.agent,
            "tool",
            name,
            "tool",
            digest(tool_args),
            estimate_nano_usd=fee,
            resource_team=declared.team,
            arguments=tool_args,
            schema=tool.tool_def.parameters_json_schema,
            declaration=declared,
        )
        return await self.governor.govern(
            call,
            # What runs is what was admitted: these arguments, or a person's approved edit of them (validated).
            lambda admitted: _inline(self.wrapped.call_tool(name, _validated(tool, admitted.arguments), ctx, tool)),
            lambda _: Usage(cost_nano_usd=fee),
            canonical_json,
        )


async def _inline(call: Awaitable[Any]) -> Any:
    """Await a tool call with its function run in this thread, not handed to a worker thread as pydantic-ai does
    with plain functions: the governor around it already blocks this thread on the database, and under load the
    hand-off (two thread switches fighting for the GIL) cost more than the governed call itself."""
    with disable_threads():
        return await call


def _declared_in(tool: ToolsetTool[Any]) -> ToolDeclaration:
    """What a tool without a Python function declared, in its definition's metadata (an MCP server's tools carry
    the operator's declaration); nothing, for a tool that carries none."""
    declared = (tool.tool_def.metadata or {}).get(DECLARATION_METADATA)
    return declared if isinstance(declared, ToolDeclaration) else NO_DECLARATION


def _validated(tool: ToolsetTool[Any], arguments: Mapping[str, Any] | None) -> dict[str, Any]:
    """The arguments as the tool's own validator accepts them (a person's edit is checked again here)."""
    return dict(tool.args_validator.validate_python(dict(arguments or {})))
