"""AgentDojo's worst case as workflow runs, with a person on the loop.

The same scripted agent (`ObeyingAgent`), but each pair is a podium workflow run and each tool call a step of it, so a
call the information-flow stage stops waits, durably, for a person's decision, as in production. The person is
scripted too, and knows only their own request: they approve an action if it is one of the calls their task needs
(the user task's ground truth, exactly: tool and arguments) and reject anything else. A pair then ends in one of
three ways: done without a person (no review), done after a person approved a declassification, or not done.

The workflow's body runs the agent in the calling thread (podium runs a workflow called directly inline), so the
tools act on the pair's AgentDojo environment as in the request-scoped harness.
"""

from __future__ import annotations

import dataclasses
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from dbos import DBOS
from pydantic_core import to_jsonable_python

import podium
from benchmarks import _agentdojo as dojo
from podium.testing import sign_in

_bodies: dict[str, Callable[[], None]] = {}  # what each run's body does: the agent's loop of the pair
_expected: dict[str, list[tuple[str, Any]]] = {}  # run id -> the calls its person asked for (tool, arguments)
_runs: dict[str, str] = {}  # body key -> its run's id


@podium.step(name="agentdojo.call")
def call_step(suite: str, tool: str, arguments: dict[str, Any]) -> Any:
    """One tool call of the pair, as the suite's agent (a step: a call that needs a person waits here)."""
    return dojo.governed(suite, tool, arguments)


@podium.workflow(name="agentdojo.pair")
def pair_run(key: str) -> None:
    """A pair as a run: its body is the scripted agent's loop, each call a step."""
    _bodies.pop(key)()


def in_workflow(suite: str, tool: str, arguments: Mapping[str, Any]) -> Any:
    """How the agent makes a call inside the pair's run."""
    return call_step(suite, tool, dict(arguments))


class ReviewedHarness(dojo.Harness):
    """Runs each pair as a workflow run, with a scripted person deciding what waits for one."""

    def __init__(self, suites: Mapping[str, Any], pod: podium.Podium, *, run: str | None = None) -> None:
        super().__init__(suites, in_workflow, run=run)
        self._pod = pod
        self._person: PersonOnTheLoop | None = None

    def run(self, case: dojo.Case) -> dojo.Outcome:
        suite = self.suites[case.suite]
        user_task = suite.get_user_task_by_id(case.user_task)
        injection_task = suite.get_injection_task_by_id(case.injection_task) if case.injection_task else None
        injections = self._attacks[case.suite].attack(user_task, injection_task) if injection_task else {}
        # The world as the agent sees it (slack's channel names carry the injection): what the task's calls are.
        environment = suite.load_and_inject_default_environment(injections)
        wanted = [(dojo.podium_tool_name(case.suite, c.function), c.args) for c in user_task.ground_truth(environment)]
        key = self.request_id(case)
        outcome: list[dojo.Outcome] = []

        def body() -> None:
            _runs[key] = run_id = str(DBOS.workflow_id)
            _expected[run_id] = [(tool, to_jsonable_python(args)) for tool, args in wanted]
            outcome.append(super(ReviewedHarness, self).run(case))

        _bodies[key] = body
        pair_run(key)
        approved = self._person.approved_in.get(_runs[key], 0) if self._person is not None else 0
        # `reviews`: the actions a person approved (what they rejected the agent read as a refusal).
        return dataclasses.replace(outcome[0], reviews=approved)

    @contextmanager
    def person(self, name: str = dojo.OWNER, *, every: float = 0.02) -> Iterator[PersonOnTheLoop]:
        """A scripted person deciding the pending reviews while the pairs run."""
        self._person = decider = PersonOnTheLoop(self._pod, name, every)
        decider.start()
        try:
            yield decider
        finally:
            decider.stop()
            self._person = None


class PersonOnTheLoop(threading.Thread):
    """Approves a waiting action iff it is one of the calls the run's task asked for; rejects the rest."""

    def __init__(self, pod: podium.Podium, name: str, every: float) -> None:
        super().__init__(daemon=True, name="person-on-the-loop")
        self._pod = pod
        self._identity = sign_in(pod, name)
        self._every = every
        self._stopped = threading.Event()
        self.approved = self.rejected = 0
        self.approved_in: Counter[str] = Counter()  # approvals by run id

    def run(self) -> None:
        while not self._stopped.wait(self._every):
            for request in self._pod.reviews.list(status="pending"):
                action = request.action
                asked = (action["resource"], to_jsonable_python(action["arguments"]))
                if asked in _expected.get(request.run_id or "", []):
                    self._pod.reviews.approve(request.id, by=self._identity, rationale="my own request")
                    self.approved += 1
                    self.approved_in[request.run_id or ""] += 1
                else:
                    self._pod.reviews.reject(request.id, by=self._identity, rationale="not what I asked for")
                    self.rejected += 1

    def stop(self) -> None:
        self._stopped.set()
        self.join(timeout=10)
