"""Small governed workflows the tests run (registered with DBOS at import, like any application's)."""

from __future__ import annotations

import threading

from pydantic_ai.messages import ModelMessage, ModelResponse, TextPart
from pydantic_ai.models.function import AgentInfo, FunctionModel
from pydantic_ai.usage import RequestUsage

import podium
from podium import Podium, Price, Settings
from podium.models import ModelEntry


def note(text: str) -> str:
    """Write `text` to the outbox (the side effect the tests count)."""
    return "queued" if podium.send_to_outbox("notes", "tests", text) else "already queued"


def shout(text: str) -> str:
    """A tool no test agent is allowed."""
    return text.upper()


@podium.tool(team="finance")
def wire_money(text: str) -> str:
    """A finance team's tool: only finance's agents may call it, whatever they are granted."""
    return "queued" if podium.send_to_outbox("payments", "bank", text) else "already queued"


# A tool that pauses between its admission and its side effect, so a kill can land while it is under way.
inside_tool = threading.Event()
let_tool_finish = threading.Event()


def slow_note(text: str) -> str:
    inside_tool.set()
    let_tool_finish.wait(timeout=60)
    return "queued" if podium.send_to_outbox("notes", "tests", text) else "already queued"


def _echo(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
    return ModelResponse(parts=[TextPart("echo")], usage=RequestUsage(input_tokens=7, output_tokens=1))


worker = podium.Agent("tester", owner="qa-lead@example.com", models=["echo"], tools=[note, slow_note])
intruder = podium.Agent("intruder", owner="qa-lead@example.com", models=["echo"], tools=[])
teller = podium.Agent("teller", owner="support-lead@example.com", team="support", models=["echo"], tools=[note])

AGENTS = [worker, intruder, teller]
ECHO_PRICE = Price(input_per_mtok=1_000.0, output_per_mtok=2_000.0)


APP = podium.App(
    agents=AGENTS,
    tools=[note, shout, wire_money, slow_note],
    models=[
        ModelEntry("echo", "frontier", ECHO_PRICE, lambda: FunctionModel(_echo, model_name="echo")),
        ModelEntry("other", "frontier", ECHO_PRICE, lambda: FunctionModel(_echo, model_name="other")),
    ],
)


def launch(settings: Settings) -> Podium:
    return podium.launch(settings, APP)


@podium.step(name="tests.ask")
def ask(agent_name: str, model: str) -> str:
    return {a.name: a for a in AGENTS}[agent_name].run("hello", model=model, max_tokens=10)


@podium.step(name="tests.use")
def use(agent_name: str, tool: str, text: str) -> str:
    return str({a.name: a for a in AGENTS}[agent_name].call_tool(tool, text=text))


@podium.workflow(name="tests.ask_then_note")
def ask_then_note(agent_name: str, text: str) -> str:
    answer = ask(agent_name, "echo")
    return use(agent_name, "note", f"{text}: {answer}")


# A run that parks inside its second step until the test lets it go, to cancel it mid-flight.
parked = threading.Event()
release = threading.Event()


@podium.step(name="tests.park_then_note")
def park_then_note(text: str) -> str:
    parked.set()
    release.wait(timeout=60)
    return str(worker.call_tool("note", text=text))


@podium.step(name="tests.final_note")
def final_note(text: str) -> str:
    return str(worker.call_tool("note", text=f"final {text}"))


@podium.workflow(name="tests.cancellable")
def cancellable(text: str) -> str:
    ask("tester", "echo")
    park_then_note(text)
    return final_note(text)


@podium.workflow(name="tests.slow_side_effect")
def slow_side_effect(text: str) -> str:
    answer = ask("tester", "echo")
    return use("tester", "slow_note", f"{text}: {answer}")


@podium.step(name="tests.request_inside_step")
def _request_inside(text: str) -> str:
    with podium.request_scope("nested"):
        return str(worker.call_tool("note", text=text))


@podium.workflow(name="tests.request_inside_step")
def request_inside_step() -> str:
    return _request_inside("hidden from the run")
