"""Tools that fail, hang and repeat, the agents that call them, and the workflows that run them: what the
containment and run-limit tests exercise (registered with DBOS at import, like any application's)."""

from __future__ import annotations

import asyncio
import contextvars
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import podium
from podium import Podium, Settings

tries: Counter[str] = Counter()  # every time a tool's body starts, by tool
release = threading.Event()  # what the hanging tools wait for


def reset() -> None:
    tries.clear()
    release.clear()


@podium.tool(retries=0)
def broken(text: str) -> str:
    """A dependency that is down."""
    tries["broken"] += 1
    raise ConnectionError(f"connection refused for {text!r}")


@podium.tool(retries=0)
def broken_too(text: str) -> str:
    tries["broken_too"] += 1
    raise ConnectionError("connection refused")


def fine(text: str) -> str:
    tries["fine"] += 1
    return text


def flaky(text: str) -> str:
    """Declares nothing (so [resilience] tool_retries applies); its first try meets a reset connection."""
    tries["flaky"] += 1
    if tries["flaky"] == 1:
        raise ConnectionError("connection reset by peer")
    return text


@podium.tool(consequential=True)
def charge(text: str) -> str:
    """Consequential, and declares no retries: its side effect may not be keyed, so a failure is not tried again."""
    tries["charge"] += 1
    raise ConnectionError("the payment provider reset the connection")


@podium.tool(timeout_s=0.2, retries=2)
async def lookup(text: str) -> str:
    """Hangs on its first try (an async tool: cancelled at the timeout), answers on the next."""
    tries["lookup"] += 1
    if tries["lookup"] == 1:
        await asyncio.sleep(30)
    return text.upper()


@podium.tool(timeout_s=0.2, retries=3)
async def hangs(text: str) -> str:
    """Never answers in time."""
    tries["hangs"] += 1
    await asyncio.sleep(30)
    return text


@podium.tool(retries=3)
def wrong(text: str) -> str:
    """Fails in a way another try would not fix."""
    tries["wrong"] += 1
    raise ValueError(f"cannot parse {text!r}")


@podium.tool(consequential=True, timeout_s=0.3, retries=2)
def deliver(text: str) -> str:
    """A consequential plain function with a keyed side effect: its first try queues the message and then hangs
    past its timeout (the worst case: the effect happened, the caller never heard), so it is tried again."""
    tries["deliver"] += 1
    queued = podium.send_to_outbox("cascade", "customer", text)
    if tries["deliver"] == 1:
        release.wait(timeout=5)
    return "queued" if queued else "already queued"


@podium.tool(timeout_s=0.2, retries=0, max_concurrent=1)
def stuck(text: str) -> str:
    """A plain function that hangs until released, one call at a time."""
    tries["stuck"] += 1
    release.wait(timeout=10)
    return text


@podium.tool(timeout_s=10, retries=0, max_concurrent=2)
def busy(text: str) -> str:
    """Holds one of its two slots until released."""
    tries["busy"] += 1
    release.wait(timeout=10)
    return text


def nest(levels: int) -> str:
    """Makes a governed call of itself inside its own execution, `levels` deep: an agent whose tool runs an agent
    whose tool runs an agent … (each on a thread of its own, in the caller's context, as a sub-agent would run)."""
    tries["nest"] += 1
    if levels <= 0:
        return "bottom"
    with ThreadPoolExecutor(1) as below:
        return str(below.submit(contextvars.copy_context().run, caller.call_tool, "nest", levels=levels - 1).result())


TOOLS = [broken, broken_too, fine, flaky, charge, lookup, hangs, wrong, deliver, stuck, busy, nest]
caller = podium.Agent("cascade-caller", owner="sre@example.com", models=[], tools=TOOLS)
bystander = podium.Agent("cascade-bystander", owner="sre@example.com", models=[], tools=[fine])
APP = podium.App(agents=[caller, bystander], tools=TOOLS)

RESILIENCE = """
[resilience]
max_steps = 6
max_calls = 8
max_repeats = 3
max_depth = 2
tool_retries = 2
backoff_s = 0.01
backoff_max_s = 0.02
[resilience.breaker]
window = 4
min_calls = 4
failure_rate = 0.5
cooldown_s = 0.3
trials = 1
"""


def launch(settings: Settings, tmp_path: Path) -> Podium:
    """Launch with small limits and breakers, so that the tests reach them in a few calls."""
    config = tmp_path / "podium.toml"
    config.write_text(RESILIENCE)
    reset()
    return podium.launch(settings.model_copy(update={"config": config}), APP)


@podium.step(name="cascade.use")
def use(tool: str, text: str) -> str:
    return str(caller.call_tool(tool, text=text))


@podium.step(name="cascade.use_times", retries=1)
def use_times(tool: str, texts: list[str], fail_first: bool) -> list[str]:
    """Call `tool` once for each text; if `fail_first`, fail after the calls the first time the step runs."""
    answers = [str(caller.call_tool(tool, text=text)) for text in texts]
    tries["use_times"] += 1
    if fail_first and tries["use_times"] == 1:
        raise RuntimeError("the step fails after its calls, and runs again")
    return answers


@podium.workflow(name="cascade.repeat")
def repeat(tool: str, texts: list[str], fail_first: bool = False) -> list[str]:
    return use_times(tool, texts, fail_first)


@podium.workflow(name="cascade.steps")
def steps(count: int) -> list[str]:
    return [use("fine", f"step {i}") for i in range(count)]


@podium.workflow(name="cascade.once")
def once(tool: str, text: str) -> str:
    return use(tool, text)
