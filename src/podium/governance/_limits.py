"""Limits on one run (or request): its steps, its governed calls, and the same call made again and again (a loop).

    [resilience]        (podium.toml)
    max_steps = 10000   a run's durable steps, as DBOS numbers them (steps, sleeps and waits for a person)
    max_calls = 10000   governed calls in one run or request
    max_repeats = 20    times one run may make the same call: the same agent, tool or model, and input
    max_depth = 3       governed calls nested inside other calls' execution: sub-agents run by tools, and so on

The stage runs first in the pipeline, so a run past a limit is stopped before anything else is asked. Its refusal
is audited with outcome "stopped" and raises `RunLimitReached`, which a step does not retry: the run ends there.

Counting: a run's step number is DBOS's, durable. Its calls are counted once per call site: a step that runs again
(after a crash, or after a person's approval) makes the same calls under the same keys, which are not counted twice.
The count lives in the memory of the process running the run; a run it has not seen (recovered from a process that
crashed, or forgotten among the oldest of the last 4,096 runs) is counted again from its audit entries, in one
indexed read. A request's calls (the gateway, an MCP session) are counted while the process remembers the request.
Calls from plain code outside any front door are each their own: nothing to count.
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import ClassVar

import sqlalchemy as sa

from podium.errors import RunLimitReached
from podium.governance._call import Call
from podium.governance._pipeline import CallContext, Refusal, Stage
from podium.governance._site import CallSite, DoorMemory
from podium.models import ResilienceSetting
from podium.store import reader, tables

REMEMBERED_DOORS = 4_096  # runs and requests whose counts this process keeps; an older run is counted again
FIRST_STEP = 1  # DBOS's number for a run's first step: nothing was done before it, so there is nothing to read
_CALL_ACTIONS = ("model.call", "tool.call", "memory.read", "memory.write")
_RUN_CALLS = sa.select(
    tables.audit_log.c.call_key,
    tables.audit_log.c.actor,
    tables.audit_log.c.action,
    tables.audit_log.c.resource,
    tables.audit_log.c.input_digest,
).where(tables.audit_log.c.run_id == sa.bindparam("run_id"), tables.audit_log.c.action.in_(_CALL_ACTIONS))


def signature(actor: str, action: str, resource: str, input_digest: str) -> int:
    """What makes two calls "the same call": who, what, on what, with what input."""
    return hash((actor, action, resource, input_digest))


@dataclass
class _Step:
    """The call numbers seen in one step: every number up to `high`, except the `gaps` not seen yet."""

    high: int = 0
    gaps: set[int] = field(default_factory=set)

    def first_time(self, number: int) -> bool:
        """Whether the call numbered `number` is new here (not a step's re-run making it again)."""
        if number > self.high:
            self.gaps.update(range(self.high + 1, number))
            self.high = number
            return True
        if number in self.gaps:
            self.gaps.discard(number)
            return True
        return False


@dataclass
class Tally:
    """What one run (or request) did, as far as this process knows."""

    steps: dict[int | None, _Step] = field(default_factory=dict)
    calls: int = 0
    repeats: Counter[int] = field(default_factory=Counter)

    def count(self, step: int | None, number: int | None, same: int) -> int | None:
        """Count the call numbered `number` in `step`, made with signature `same`; return how many times a call
        with that signature was made, or None if this call was counted before."""
        if number is not None and not self.steps.setdefault(step, _Step()).first_time(number):
            return None
        self.calls += 1
        self.repeats[same] += 1
        return self.repeats[same]


class RunLimits(Stage):
    """Stops a run (or request) past its steps or calls, or repeating the same call (see the module's docstring)."""

    name: ClassVar[str] = "run_limits"

    def __init__(self, engine: sa.Engine, setting: ResilienceSetting) -> None:
        self._reader = reader(engine)
        self.setting = setting
        self._lock = threading.Lock()
        self._tallies: DoorMemory[Tally] = DoorMemory(REMEMBERED_DOORS)

    def check(self, ctx: CallContext) -> None:
        site, call, setting = ctx.site, ctx.call, self.setting
        if site.depth > setting.max_depth:
            raise _stop(
                call,
                site,
                "max_depth",
                f"{call.describe()} is nested {site.depth} calls deep (an agent run by a tool run by an agent …), "
                f"past the limit of {setting.max_depth}",
            )
        if site.door == "adhoc":
            return
        if site.step_id is not None and site.step_id > setting.max_steps:
            raise _stop(
                call,
                site,
                "max_steps",
                f"run {site.run_id} is at step {site.step_id}, past its limit of {setting.max_steps} steps",
            )
        tally = self._tally(site)
        same = signature(call.actor, call.action, call.resource, call.input_digest)
        with self._lock:
            made = tally.count(site.step_id, _number(site.key), same)
            calls = tally.calls
        if made is None:
            return  # made before, by an earlier run of this step: counted then
        where = f"run {site.run_id}" if site.run_id else f"request {site.door_key}"
        if calls > setting.max_calls:
            raise _stop(
                call, site, "max_calls", f"{where} made {calls} governed calls, past its limit of {setting.max_calls}"
            )
        if made > setting.max_repeats:
            raise _stop(
                call,
                site,
                "max_repeats",
                f"{call.describe()} was made {made} times with the same input in {where}, more than "
                f"{setting.max_repeats}: a loop",
            )

    def _tally(self, site: CallSite) -> Tally:
        """The run's tally: remembered, or read from its audit entries if the run did anything before in another
        process (or so long ago that this one forgot it)."""
        run_id, step_id = site.run_id, site.step_id
        if run_id is not None and step_id is not None and step_id > FIRST_STEP:
            return self._tallies.get(site.door_key, lambda: self._read(run_id))
        return self._tallies.get(site.door_key, Tally)

    def _read(self, run_id: str) -> Tally:
        tally = Tally()
        prefix = f"{run_id}:"
        with self._reader.connect() as conn:
            rows = conn.execute(_RUN_CALLS, {"run_id": run_id}).all()
        for row in rows:
            if not row.call_key.startswith(prefix):
                continue
            step, _, rest = row.call_key[len(prefix) :].partition(":")
            number = _number(rest.split(":", 1)[0])
            if step.isdigit() and number is not None:
                tally.count(int(step), number, signature(row.actor, row.action, row.resource, row.input_digest))
        return tally


def _number(key: str) -> int | None:
    """A call's number within its step or request: the last part of its key (`<run>:<step>:<n>`,
    `request:<asker>:<id>:<n>`)."""
    last = key.rsplit(":", 1)[-1]
    return int(last) if last.isdigit() else None


def _stop(call: Call, site: CallSite, limit: str, why: str) -> Refusal:
    message = (
        f"{why} ([resilience] {limit} in podium.toml): it stops here. If the work needs more, raise {limit}; "
        "otherwise look for the loop in the workflow or the agent's instructions."
    )
    error = RunLimitReached(message, agent=call.agent, resource=call.resource, run_id=site.run_id, limit=limit)
    return Refusal(error, "stopped", why=limit)
