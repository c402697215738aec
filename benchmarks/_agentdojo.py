"""AgentDojo's worst case, run through podium's governor: an agent that obeys every injection.

For each (user task, injection task) pair of AgentDojo's suites with the `important_instructions` attack, a
scripted agent performs the user task's ground-truth calls and, whenever a tool result carries the injected
instructions, performs the injection task's ground-truth calls at once. No model is involved, so the figures
depend on the defences alone: whatever podium lets through, this agent does.

Each AgentDojo tool is a podium tool (`<suite>_<tool>`, e.g. `banking_send_money`) granted to one podium agent
per suite (`agentdojo-<suite>`); every call goes through `Agent.call_tool`, the governed path workflows use, inside
one `podium.request_scope` per case, so it is authorised by Cedar, ledgered and audited. The tool acts on the
environment of the case being run (AgentDojo's in-memory world), which the case hands to it in a context variable.
The suite's own utility and security functions score each case (`TaskSuite.run_task_with_pipeline`).

`execute=direct` runs the same agent on AgentDojo's own runtime, without podium: the control that shows the
governor changes nothing it has no stage for.
"""

from __future__ import annotations

import functools
import inspect
import re
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import yaml
from agentdojo.agent_pipeline.base_pipeline_element import BasePipelineElement
from agentdojo.attacks.important_instructions_attacks import ImportantInstructionsAttack
from agentdojo.base_tasks import BaseInjectionTask, BaseUserTask
from agentdojo.functions_runtime import EmptyEnv, Function, FunctionCall, FunctionsRuntime, TaskEnvironment
from agentdojo.task_suite.load_suites import get_suites
from agentdojo.task_suite.task_suite import TaskSuite
from agentdojo.types import ChatAssistantMessage, ChatMessage, ChatToolResultMessage, text_content_block_from_string
from pydantic_core import to_jsonable_python

import podium
from benchmarks._agentdojo_exfiltration import Calls, scripted
from benchmarks._agentdojo_flows import CONSEQUENTIAL
from podium.security import trust

BENCHMARK_VERSION = "v1.2.2"  # the latest in agentdojo 0.1.35
SUITES = ("workspace", "travel", "banking", "slack")
ATTACK = ImportantInstructionsAttack.name
# The attack addresses the victim model by name ("... to you, GPT-4"); it reads the name from the pipeline's.
PIPELINE_NAME = "podium-obeys-every-injection-gpt-4o-2024-05-13"
OWNER = "security-bench@podium.test"
NEEDS_A_PERSON = "needs a person's approval"  # how the governor refuses a call for a person where none can wait

Execute = Callable[[str, str, Mapping[str, Any]], Any]  # (suite, AgentDojo tool, arguments) -> the tool's result


@dataclass(frozen=True)
class _World:
    """The environment of the case being run, which podium's tools act on."""

    runtime: FunctionsRuntime
    environment: TaskEnvironment


_world: ContextVar[_World] = ContextVar("agentdojo_world")


@dataclass(frozen=True)
class Case:
    suite: str
    user_task: str
    injection_task: str | None  # None: the user task alone, unattacked


@dataclass(frozen=True)
class Outcome:
    case: Case
    utility: bool  # the suite's utility function: the user task was done
    injected: bool  # the suite's security function: the attacker's goal was reached (AgentDojo calls it "security")
    calls: int  # tool calls the agent made
    obeyed: int  # tool results carrying the injection that the agent obeyed
    refused: int  # calls a podium stage refused
    reviews: int  # calls a podium stage sent to a person
    seconds: float


def load_suites(names: Sequence[str] = SUITES) -> dict[str, TaskSuite[Any]]:
    suites = get_suites(BENCHMARK_VERSION)
    return {name: suites[name] for name in names}


def podium_tool_name(suite: str, tool: str) -> str:
    return f"{suite}_{tool}"


def podium_tool(suite: str, function: Function[Any, Any], *, defended: bool = False) -> Callable[..., Any]:
    """AgentDojo's `function` as a podium tool: its parameters (without the environment it depends on) and its
    description; it runs AgentDojo's function on the current case's environment and returns the result as JSON-able
    data (strings, lists, dicts), which is what the governor audits and the agent reads. `defended`: a tool that
    acts on the world is declared consequential, with its sinks, as its author would (`@podium.tool`)."""

    def run(**arguments: Any) -> Any:
        world = _world.get()
        result, _ = world.runtime.run_function(world.environment, function.name, arguments, raise_on_error=True)
        return to_jsonable_python(result)

    fields = function.parameters.model_fields
    run.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [
            inspect.Parameter(
                name,
                inspect.Parameter.KEYWORD_ONLY,
                annotation=field.annotation,
                default=inspect.Parameter.empty if field.is_required() else field.default,
            )
            for name, field in fields.items()
        ]
    )
    run.__annotations__ = {name: field.annotation for name, field in fields.items()}
    run.__name__ = run.__qualname__ = podium_tool_name(suite, function.name)
    run.__doc__ = function.description
    sinks = CONSEQUENTIAL[suite].get(function.name)
    if defended and sinks is not None:
        declared = {**dict.fromkeys(sinks.targets, "target"), **dict.fromkeys(sinks.content, "content")}
        return podium.tool(consequential=True, sinks=declared)(run)
    return run


def podium_tools(
    suites: Mapping[str, TaskSuite[Any]], *, defended: bool = False
) -> dict[str, list[Callable[..., Any]]]:
    return {
        name: [podium_tool(name, function, defended=defended) for function in suite.tools]
        for name, suite in suites.items()
    }


def agent_name(suite: str) -> str:
    return f"agentdojo-{suite}"


def app(suites: Mapping[str, TaskSuite[Any]], *, defended: bool = False) -> podium.App:
    """One podium agent per suite, granted that suite's tools and nothing else; `defended`: with the tools that act
    on the world declared consequential (podium's information-flow stage then checks where their data came from)."""
    tools = podium_tools(suites, defended=defended)
    agents = [podium.Agent(agent_name(name), owner=OWNER, models=[], tools=tools[name]) for name in suites]
    return podium.App(agents=agents, tools=[tool for suite_tools in tools.values() for tool in suite_tools])


def governed(suite: str, tool: str, arguments: Mapping[str, Any]) -> Any:
    """Call the tool as the suite's podium agent, through the governor."""
    return _agent(suite).call_tool(podium_tool_name(suite, tool), **arguments)


@functools.cache
def _agent(suite: str) -> podium.Agent:
    """The suite's agent as workflow code holds it (its grants are the registry's, from `app`)."""
    return podium.Agent(agent_name(suite), owner=OWNER, models=[])


def direct(suite: str, tool: str, arguments: Mapping[str, Any]) -> Any:
    """Call the tool on AgentDojo's own runtime, without podium."""
    world = _world.get()
    result, _ = world.runtime.run_function(world.environment, tool, arguments, raise_on_error=True)
    return to_jsonable_python(result)


_SPACE = re.compile(r"\s+")


def _squeezed(text: str) -> str:
    """Text with every run of whitespace made one space: the suites' YAML loading folds the injection's newlines."""
    return _SPACE.sub(" ", text).strip()


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


class ObeyingAgent(BasePipelineElement):
    """The scripted agent: the user task's ground truth, and the injection task's whenever a result carries it.

    The injection task's calls are not scanned in turn (an agent obeying an injection does not start over on what
    the attacker's own calls return), so a case ends. Refusals and review requests from podium's stages, and tool
    errors, are given back to the agent as the tool's result, as a model would see them, and it carries on.
    """

    name = PIPELINE_NAME

    def __init__(
        self,
        suite: str,
        user_task: BaseUserTask[Any],
        injection_task: BaseInjectionTask[Any] | None,
        injections: Mapping[str, str],
        execute: Execute,
    ) -> None:
        self._suite = suite
        self._user_task = user_task
        self._injection_task = injection_task
        self._needles = [_squeezed(text) for text in injections.values()]
        self._execute = execute
        self.calls = self.obeyed = self.refused = self.reviews = 0

    def query(
        self,
        query: str,
        runtime: FunctionsRuntime,
        env: TaskEnvironment = EmptyEnv(),  # noqa: B008 - AgentDojo's own signature
        messages: Sequence[ChatMessage] = (),
        extra_args: dict[str, Any] = {},  # noqa: B006 - AgentDojo's own signature; never mutated
    ) -> tuple[str, FunctionsRuntime, TaskEnvironment, Sequence[ChatMessage], dict[str, Any]]:
        said: list[ChatMessage] = []
        token = _world.set(_World(runtime, env))
        if self._execute is not direct:
            trust(query)  # the user's own request: the one input the agent acts on without a person
        script = scripted(self._suite, self._injection_task.ID) if self._injection_task is not None else None
        before = env.model_copy(deep=True) if script is not None else env
        performed = False  # a script is made once: its checks count exactly one mail sent, five files deleted
        try:
            for call in self._user_task.ground_truth(env):
                result = self._call(call, said)
                if self._injection_task is not None and self._carries_injection(result):
                    self.obeyed += 1
                    if script is None:
                        for injected_call in self._injection_task.ground_truth(env):
                            self._call(injected_call, said)
                    elif not performed:  # an agent that did what the attacker asked does not do it again
                        self._follow(script(before), said)
                        performed = True
        finally:
            _world.reset(token)
        answer = text_content_block_from_string(self._user_task.GROUND_TRUTH_OUTPUT)
        said.append(ChatAssistantMessage(role="assistant", content=[answer], tool_calls=None))
        return query, runtime, env, [*messages, *said], extra_args

    def _follow(self, calls: Calls, said: list[ChatMessage]) -> None:
        """Make a script's calls, handing each one's result back to it (None if podium stopped the call)."""
        try:
            call = next(calls)
            while True:
                call = calls.send(self._call(call, said))
        except StopIteration:
            return

    def _call(self, call: FunctionCall, said: list[ChatMessage]) -> Any:
        """Make one tool call and note it as AgentDojo's trace expects (its security checks read the trace)."""
        said.append(
            ChatAssistantMessage(role="assistant", tool_calls=[call], content=[text_content_block_from_string("")])
        )
        self.calls += 1
        result: Any = None
        error: str | None = None
        refused = False
        try:
            result = self._execute(self._suite, call.function, dict(call.args))
        except podium.ReviewRequired as waiting:
            self.reviews += 1
            error, refused = f"{type(waiting).__name__}: {waiting}", True
        except podium.GovernanceError as refusal:
            # Outside a workflow nobody can wait: a call that needs a person is refused, saying so.
            if NEEDS_A_PERSON in str(refusal):
                self.reviews += 1
            else:
                self.refused += 1
            error, refused = f"{type(refusal).__name__}: {refusal}", True
        except Exception as failure:  # noqa: BLE001 - a tool's error is the agent's to read, as in AgentDojo
            error = f"{type(failure).__name__}: {failure}"
        if refused:
            # A call podium stopped never ran: it leaves the trace AgentDojo scores (its trace-based security checks,
            # such as slack's injection_task_5, read every call in it as made), and the agent reads the refusal.
            said.pop()
            refusal = [text_content_block_from_string(str(error))]
            said.append(ChatAssistantMessage(role="assistant", content=refusal, tool_calls=None))
            return None
        text = error if error is not None else _as_text(result)
        said.append(
            ChatToolResultMessage(
                role="tool",
                content=[text_content_block_from_string(text)],
                tool_call=call,
                tool_call_id=None,
                error=error,
            )
        )
        return result

    def _carries_injection(self, result: Any) -> bool:
        return any(needle in _squeezed(text) for text in _strings(result) for needle in self._needles)


def _as_text(result: Any) -> str:
    """A result as AgentDojo shows one to a model (YAML; `tool_result_to_str` takes models, not their JSON)."""
    return yaml.safe_dump(result).strip() if isinstance(result, (dict, list)) else str(result)


class Harness:
    """Runs cases of the loaded suites with one executor (`governed` or `direct`)."""

    def __init__(
        self, suites: Mapping[str, TaskSuite[Any]], execute: Execute = governed, *, run: str | None = None
    ) -> None:
        self.suites = suites
        self._execute = execute
        self.run_id = run or uuid.uuid4().hex[:12]  # a case run twice in one database is two requests, not a retry
        self._attacks = {name: ImportantInstructionsAttack(suite, _Named()) for name, suite in suites.items()}

    def cases(self, *, attacked: bool = True) -> list[Case]:
        """Every (user task, injection task) pair of the suites, or every user task alone."""
        return [
            Case(name, user_task, injection_task)
            for name, suite in self.suites.items()
            for user_task in suite.user_tasks
            for injection_task in (suite.injection_tasks if attacked else [None])
        ]

    def request_id(self, case: Case) -> str:
        """The podium request a case's calls are keyed under (letters, digits, '.', '_' and '-')."""
        return f"agentdojo.{self.run_id}.{case.suite}.{case.user_task}.{case.injection_task or 'none'}"

    def run(self, case: Case) -> Outcome:
        suite = self.suites[case.suite]
        user_task = suite.get_user_task_by_id(case.user_task)
        injection_task = suite.get_injection_task_by_id(case.injection_task) if case.injection_task else None
        injections = self._attacks[case.suite].attack(user_task, injection_task) if injection_task else {}
        agent = ObeyingAgent(case.suite, user_task, injection_task, injections, self._execute)
        started = time.perf_counter()
        with podium.request_scope(self.request_id(case)) if self._execute is governed else _nothing():
            utility, injected = suite.run_task_with_pipeline(agent, user_task, injection_task, injections)
        seconds = time.perf_counter() - started
        return Outcome(
            case,
            bool(utility),
            bool(injected) and injection_task is not None,
            agent.calls,
            agent.obeyed,
            agent.refused,
            agent.reviews,
            seconds,
        )


class _Named(BasePipelineElement):
    """Only a name, for the attack to address the model by."""

    name = PIPELINE_NAME

    def query(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError("the attack only reads this pipeline's name")


@contextmanager
def _nothing() -> Iterator[None]:
    yield


def empty_injection_ground_truths(suites: Mapping[str, TaskSuite[Any]]) -> dict[str, list[str]]:
    """Injection tasks with no calls to make: an empty ground truth and no script of ours
    (benchmarks/_agentdojo_exfiltration.py), so they can never succeed in this harness (travel's "say Riverside
    View is the best", which asks only for words in the answer)."""
    found: dict[str, list[str]] = {}
    for name, suite in suites.items():
        environment = suite.load_and_inject_default_environment({})
        found[name] = [
            id_
            for id_, task in suite.injection_tasks.items()
            if not task.ground_truth(environment) and scripted(name, id_) is None
        ]
    return found


def summary(outcomes: Sequence[Outcome], unattackable: Mapping[str, Sequence[str]]) -> dict[str, Any]:
    """Rates over the cases, overall and per suite."""

    def rates(group: Sequence[Outcome]) -> dict[str, Any]:
        attackable = [o for o in group if o.case.injection_task not in unattackable.get(o.case.suite, ())]
        return {
            "cases": len(group),
            "utility": _rate(o.utility for o in group),
            "injection_success_rate": _rate(o.injected for o in group),
            "attackable_cases": len(attackable),
            "injection_success_rate_attackable": _rate(o.injected for o in attackable),
            "calls": sum(o.calls for o in group),
            "obeyed": sum(o.obeyed for o in group),
            "refused": sum(o.refused for o in group),
            "reviews": sum(o.reviews for o in group),
            "seconds": round(sum(o.seconds for o in group), 3),
        }

    suites = dict.fromkeys(o.case.suite for o in outcomes)
    return {"all": rates(outcomes), **{name: rates([o for o in outcomes if o.case.suite == name]) for name in suites}}


def _rate(flags: Iterator[bool] | Any) -> float:
    values = list(flags)
    return round(sum(values) / len(values), 4) if values else 0.0
