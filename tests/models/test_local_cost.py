"""Local compute is charged by the CPU time the work consumed: the same call costs the same on a busy machine."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pytest
from pydantic_ai.messages import ModelMessage, ModelRequest, UserPromptPart
from pydantic_ai.models import ModelRequestParameters

from podium import Price
from podium.models import COMPUTE_SECONDS, SMOLLM2_135M, LlamaCppModel

pytestmark = pytest.mark.slow

# The charge moved by 1-4% in six trials here, the wall time by 3-5x; once, on a fresh-clone CI run, the same call's
# CPU time itself moved by 40% (0.20 s against 0.28 s: three burners on one core also evict its caches). The claim
# tested is that the charge follows the CPU time, not the wall time: it moves far less than the wall time does.
TOLERANCE = 0.5
WALL_SLOWDOWN = 2.5  # three burners on the call's CPU leave it a quarter: the wall time grows 3-5x
LOCAL = Price(compute_per_hour=0.085)  # the default local rate
ASKED = "My card was stolen at the station, what do I do?"
BURN = "import os, sys; os.sched_setaffinity(0, {int(sys.argv[1])})\nwhile True: pass"


@contextmanager
def on_one_cpu() -> Iterator[int]:
    """Run this thread, and the threads it starts (each call's model thread), on one CPU, whatever the machine."""
    before = os.sched_getaffinity(0)
    cpu = min(before)
    os.sched_setaffinity(0, {cpu})
    try:
        yield cpu
    finally:
        os.sched_setaffinity(0, before)


@contextmanager
def competitors(cpu: int) -> Iterator[None]:
    """Three processes burning `cpu`, so a call on it gets a quarter of it at most while they run."""
    burners = [subprocess.Popen([sys.executable, "-c", BURN, str(cpu)]) for _ in range(3)]
    try:
        time.sleep(0.3)  # they are burning before the call starts
        yield
    finally:
        for burner in burners:
            burner.kill()
            burner.wait()


@dataclass(frozen=True)
class Charged:
    cost_nano_usd: int  # at the local rate, as the governor costs the call
    cpu_seconds: float
    wall_seconds: float


def charged(model: LlamaCppModel, text: str) -> Charged:
    started = time.perf_counter()
    request: list[ModelMessage] = [ModelRequest(parts=[UserPromptPart(text)])]
    response = asyncio.run(model.request(request, {"max_tokens": 8}, ModelRequestParameters()))
    seconds = float((response.provider_details or {})[COMPUTE_SECONDS])
    cost = LOCAL.cost_nano_usd(response.usage.input_tokens, response.usage.output_tokens, seconds)
    return Charged(cost, seconds, time.perf_counter() - started)


def median_of_five(model: LlamaCppModel) -> Charged:
    calls = sorted((charged(model, ASKED) for _ in range(5)), key=lambda c: c.cost_nano_usd)
    return calls[2]


def test_the_same_call_costs_the_same_on_a_busy_machine() -> None:
    model = LlamaCppModel.from_package("smollm2-135m", SMOLLM2_135M)
    with on_one_cpu() as cpu:
        charged(model, ASKED)  # from now on llama.cpp finds the prompt cached: each call does the same work
        quiet = median_of_five(model)
        with competitors(cpu):
            busy = median_of_five(model)
    assert busy.wall_seconds > WALL_SLOWDOWN * quiet.wall_seconds, "the competitors did not take the CPU"
    assert busy.cost_nano_usd == pytest.approx(quiet.cost_nano_usd, rel=TOLERANCE), (quiet, busy)
