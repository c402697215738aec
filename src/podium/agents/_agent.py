"""Agents: an identity with an accountable owner and allow-lists, acting only through the governor."""

from __future__ import annotations

import asyncio
import contextvars
import functools
import re
import threading
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from podium import _current
from podium.errors import NotFoundError, UsageError

if TYPE_CHECKING:  # pydantic-ai loads when an agent first acts, not when the registry is read
    from pydantic_ai.models import Model
    from pydantic_ai.settings import ModelSettings
    from pydantic_ai.toolsets import AbstractToolset

    from podium.agents._spotlight import SpotlightMode

T = TypeVar("T")
_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
SPOTLIGHT_MODES = ("delimit", "datamark", "off")  # how `run` shows tool results to the model (`_spotlight`)


def check_name(name: str) -> str:
    if not _NAME.match(name):
        raise UsageError(
            f"agent name {name!r} is not valid: use lower-case letters, digits, '-' and '_', "
            "starting with a letter (for example 'support-triage')."
        )
    return name


@dataclass(frozen=True)
class AgentIdentity:
    """Who the agent is, who answers for it, and what it may use."""

    name: str
    owner: str
    models: tuple[str, ...]
    tools: tuple[str, ...]
    team: str = ""


class Agent:
    """A governed agent.

    Its model requests and tool calls go through the governor of the podium runtime launched in this process,
    which checks its status and allow-lists and records every call in the ledger and the audit log::

        triage = podium.Agent("support-triage", owner="ops-lead@example.com",
                              models=["intent-classifier", "smollm2-135m"], tools=["send_reply"])
        text = triage.run("Draft a reply to: ...", model="smollm2-135m")
        triage.call_tool("send_reply", recipient="c-42", body=text)
    """

    def __init__(
        self,
        name: str,
        *,
        owner: str,
        models: Sequence[str],
        tools: Sequence[str | Callable[..., Any]] = (),
        instructions: str | None = None,
        team: str = "",
        spotlight: SpotlightMode = "delimit",
    ) -> None:
        """`spotlight`: how `run` shows the model what tools returned: marked as data, never instructions
        ("delimit", "datamark"), or as it is ("off"); see docs/screening.md."""
        check_name(name)
        if not owner.strip():
            raise UsageError(f"agent {name!r} has no owner. Every agent needs an accountable person: owner='…'.")
        if spotlight not in SPOTLIGHT_MODES:
            raise UsageError(
                f"agent {name!r}: spotlight={spotlight!r} is not one of {', '.join(SPOTLIGHT_MODES)} "
                '("delimit" marks tool results as data for the model; "off" shows them as they are).'
            )
        self.spotlight: SpotlightMode = spotlight
        tool_names = tuple(t if isinstance(t, str) else t.__name__ for t in tools)
        self.identity = AgentIdentity(name, owner.strip(), tuple(models), tool_names, team.strip())
        self._instructions = instructions

    @property
    def name(self) -> str:
        return self.identity.name

    def run(
        self,
        prompt: str,
        *,
        model: str | Sequence[str],
        instructions: str | None = None,
        max_tokens: int | None = None,
    ) -> str:
        """Ask `model` for a text answer to `prompt`, governed. Call it inside a `@podium.step`.

        Given several models, the router picks one per request (the cheapest likely to do it well enough) and
        falls back to the others if its provider fails.
        """
        from pydantic_ai import Agent as PydanticAgent

        podium = _current.get()
        governed: Model = (
            podium.governed_model(self.identity.name, model)
            if isinstance(model, str)
            else podium.routed_model(self.identity.name, tuple(model))
        )
        allowed = set(self.identity.tools)
        toolset = podium.governed_toolset(self.identity.name, allowed)
        tools: AbstractToolset[None] = toolset.filtered(lambda _ctx, tool: tool.name in allowed)
        given = [instructions or self._instructions or ""]
        if self.spotlight != "off":  # tool results marked as data on their way to the model (a new code each run)
            from podium.agents._spotlight import Spotlight, SpotlitToolset

            spotlight = Spotlight(self.spotlight)
            tools, given = SpotlitToolset(tools, spotlight=spotlight), [*given, spotlight.instructions()]
        agent: PydanticAgent[None, str] = PydanticAgent(
            governed, instructions=[text for text in given if text], toolsets=[tools]
        )
        settings: ModelSettings = {"max_tokens": max_tokens} if max_tokens else {}
        return agent.run_sync(prompt, model_settings=settings).output

    def call_tool(self, tool: str, /, **arguments: Any) -> Any:
        """Call `tool` with `arguments` from workflow code, governed. Call it inside a `@podium.step`."""
        toolset = _current.get().governed_toolset(self.identity.name, (tool,))
        from pydantic_ai import RunContext
        from pydantic_ai.usage import RunUsage

        context = RunContext[None](deps=None, model=_workflow_code(), usage=RunUsage())

        async def call() -> Any:
            async with toolset:  # one session with an MCP server, for listing its tools and the call
                tools = await toolset.get_tools(context)
                if tool not in tools:
                    raise NotFoundError(f"no tool named {tool!r} is registered (known: {', '.join(sorted(tools))}).")
                return await toolset.call_tool(tool, arguments, context, tools[tool])

        return _run_in_thread_loop(call())


_thread_loops = threading.local()


def _run_in_thread_loop(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run `coroutine` on this thread's own event loop, made once: a fresh loop per call costs more than the
    governed call itself.

    It runs in a copy of the caller's context, not the runner's own: the runner would otherwise keep the
    context of the first call it ran, and a pooled thread that later runs another workflow would attribute
    that workflow's calls to the first one's step.
    """
    runner: asyncio.Runner | None = getattr(_thread_loops, "runner", None)
    if runner is None:
        runner = _thread_loops.runner = asyncio.Runner()
    return runner.run(coroutine, context=contextvars.copy_context())


@functools.cache
def _workflow_code() -> Model:
    """Stands in for "a model" in the run context of a tool call that workflow code made directly (made on first
    use, with pydantic-ai)."""
    from pydantic_ai.messages import ModelMessage, ModelResponse
    from pydantic_ai.models import Model, ModelRequestParameters

    class WorkflowCode(Model):
        @property
        def model_name(self) -> str:
            return "workflow-code"

        @property
        def system(self) -> str:
            return "podium"

        async def request(
            self,
            messages: list[ModelMessage],
            model_settings: ModelSettings | None,
            params: ModelRequestParameters,
        ) -> ModelResponse:
            raise UsageError("workflow code does not request completions; use Agent.run.")

    return WorkflowCode()
