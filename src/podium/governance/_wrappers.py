"""The governor as pydantic-ai wrappers: a governed model and a governed toolset.

An agent never holds a bare model or toolset; it holds these, so no call can bypass the governor.
"""

from __future__ import annotations

from collections.abc import Awaitable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic_ai import RunContext
from pydantic_ai._utils import disable_threads  # private; pydantic-ai's Temporal integration uses it (pinned)
from pydantic_ai.messages import ModelMessage, ModelResponse, TextPart
from pydantic_ai.models import Model, ModelRequestParameters
from pydantic_ai.models.wrapper import WrapperModel
from pydantic_ai.settings import ModelSettings
from pydantic_ai.toolsets import ToolsetTool, WrapperToolset

from podium.audit import canonical_json, digest
from podium.cost import Price
from podium.governance._governor import Call, Governor, Usage
from podium.models._local import COMPUTE_SECONDS, to_chat

EXPECTED_OUTPUT_TOKENS = 256  # when a request sets no max_tokens


def expected_tokens(prompt_chars: int, model_settings: ModelSettings | None) -> tuple[int, int]:
    """Input and output tokens a request is expected to take, before it runs: about four characters a token in,
    and its max_tokens out."""
    return prompt_chars // 4 + 1, int((model_settings or {}).get("max_tokens") or EXPECTED_OUTPUT_TOKENS)


class GovernedModel(WrapperModel):
    """A model whose every request passes the governor on behalf of one agent."""

    def __init__(self, wrapped: Model, *, governor: Governor, agent: str, name: str, tier: str, price: Price) -> None:
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
    def tier(self) -> str:
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
    ) -> ModelResponse:
        """A request whose audit entry also carries `detail` (the router's reasons for choosing this model)."""
        turns = [(t.role, t.content) for t in to_chat(messages)]
        tokens_in, tokens_out = expected_tokens(sum(len(content) for _, content in turns), model_settings)
        # At most: a local model is assumed no slower than 20 tokens a second.
        estimate = self._price.cost_nano_usd(tokens_in, tokens_out, tokens_out / 20)
        call = Call(self._agent, "model", self._name, self._tier, digest(turns), estimate_nano_usd=estimate)
        return await self._governor.govern(
            call,
            lambda _: self.wrapped.request(messages, model_settings, model_request_parameters),
            self._measure,
            _response_text,
            detail,
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
    fees: dict[str, int] = field(kw_only=True, default_factory=dict)  # nano-USD per call, by tool name
    teams: dict[str, str] = field(kw_only=True, default_factory=dict)  # the team owning each tool ("" shared)

    async def call_tool(
        self, name: str, tool_args: dict[str, Any], ctx: RunContext[Any], tool: ToolsetTool[Any]
    ) -> Any:
        fee = self.fees.get(name, 0)
        call = Call(
            self.agent,
            "tool",
            name,
            "tool",
            digest(tool_args),
            estimate_nano_usd=fee,
            resource_team=self.teams.get(name, ""),
            arguments=tool_args,
            schema=tool.tool_def.parameters_json_schema,
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


def _validated(tool: ToolsetTool[Any], arguments: Mapping[str, Any] | None) -> dict[str, Any]:
    """The arguments as the tool's own validator accepts them (a person's edit is checked again here)."""
    return dict(tool.args_validator.validate_python(dict(arguments or {})))
