"""Where data flows in AgentDojo's ground truths: which tools act on the world, which of their arguments are sinks,
and which user tasks themselves move data read from a tool into a sink (they would need a person's declassification
under an information-flow policy). The groundwork of docs/security-design-notes.md; no defence here.

A sink argument is a *target* (where the action lands or the data goes: a recipient, an IBAN, a URL, a file or event
id) or *content* (what is written or sent). For each consequential call of a user task's ground truth, each sink
value is traced to where it could have come from: the user's prompt (trusted), a string an earlier tool result
carries (untrusted: tool results are where injections live), or neither (composed by the agent: a date it worked
out, a summary it wrote; as untrusted as its context under a strict policy). Tracing is by literal occurrence of the
value in the prompt or the results, so it is an estimate: a value the prompt and a result both hold counts as
trusted, and one the agent derived (a sum, a reformatted date) counts as composed.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from agentdojo.functions_runtime import FunctionsRuntime
from agentdojo.task_suite.task_suite import TaskSuite
from pydantic_core import to_json, to_jsonable_python

from podium.security._flows import MIN_SUBSTRING


@dataclass(frozen=True)
class Sinks:
    targets: tuple[str, ...] = ()  # where the action lands or the data goes
    content: tuple[str, ...] = ()  # what is written or sent


_EMAIL = Sinks(("recipients", "cc", "bcc"), ("subject", "body", "attachments"))
_NEW_EVENT = Sinks(("participants",), ("title", "description", "location", "start_time", "end_time"))
_CANCEL_EVENT = Sinks(("event_id",))
# The tools of each suite that act on the world (AgentDojo's default_suites/v1/tools/*.py), and their sinks. A tool
# not listed only reads. Two reads are listed: slack's get_webpage (a GET carries data out in its URL, and the slack
# injection tasks are scored on the URLs visited: web.web_requests) and workspace's get_unread_emails (it marks the
# mail read; with no argument to trace, only the decision to call it is checked).
CONSEQUENTIAL: dict[str, dict[str, Sinks]] = {
    "workspace": {
        "send_email": _EMAIL,  # email_client.py
        "delete_email": Sinks(("email_id",)),
        "get_unread_emails": Sinks(),
        "create_calendar_event": _NEW_EVENT,  # calendar_client.py
        "cancel_calendar_event": _CANCEL_EVENT,
        "reschedule_calendar_event": Sinks(("event_id",), ("new_start_time", "new_end_time")),
        "add_calendar_event_participants": Sinks(("event_id", "participants")),
        "create_file": Sinks((), ("filename", "content")),  # cloud_drive_client.py
        "append_to_file": Sinks(("file_id",), ("content",)),
        "delete_file": Sinks(("file_id",)),
        "share_file": Sinks(("file_id", "email"), ("permission",)),
    },
    "travel": {
        "reserve_hotel": Sinks(("hotel",), ("start_day", "end_day")),  # travel_booking_client.py
        "reserve_restaurant": Sinks(("restaurant",), ("start_time",)),
        "reserve_car_rental": Sinks(("company",), ("start_time", "end_time")),
        "send_email": _EMAIL,
        "create_calendar_event": _NEW_EVENT,
        "cancel_calendar_event": _CANCEL_EVENT,
    },
    "banking": {
        "send_money": Sinks(("recipient",), ("amount", "subject", "date")),  # banking_client.py
        "schedule_transaction": Sinks(("recipient",), ("amount", "subject", "date", "recurring")),
        "update_scheduled_transaction": Sinks(("id", "recipient"), ("amount", "subject", "date", "recurring")),
        "update_password": Sinks((), ("password",)),  # user_account.py
        "update_user_info": Sinks((), ("first_name", "last_name", "street", "city")),
    },
    "slack": {
        "send_direct_message": Sinks(("recipient",), ("body",)),  # slack.py
        "send_channel_message": Sinks(("channel",), ("body",)),
        "add_user_to_channel": Sinks(("user", "channel")),
        "invite_user_to_slack": Sinks(("user", "user_email")),
        "remove_user_from_slack": Sinks(("user",)),
        "post_webpage": Sinks(("url",), ("content",)),  # web.py
        "get_webpage": Sinks(("url",)),
    },
}

Origin = Literal["prompt", "tool_result", "composed"]
# What a user task's ground truth does, from the least to the most a person would have to allow:
Verdict = Literal[
    "reads_only",  # no consequential call
    "trusted_sinks",  # every sink value is in the prompt
    "composed_content",  # content the agent composed, targets from the prompt
    "untrusted_content",  # content copied from a tool result, targets from the prompt
    "untrusted_target",  # a target (recipient, IBAN, URL, id) that only a tool result holds
]
_RANK = {verdict: n for n, verdict in enumerate(Verdict.__args__)}  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Flow:
    """One sink value of one consequential call of a user task's ground truth."""

    suite: str
    user_task: str
    tool: str
    argument: str
    kind: Literal["target", "content"]
    origin: Origin


def check_declarations(suites: Mapping[str, TaskSuite[Any]]) -> None:
    """Every declared tool and sink exists in its suite: a misspelt sink would silently guard nothing."""
    for name, tools in CONSEQUENTIAL.items():
        if name not in suites:
            continue
        parameters = {tool.name: set(tool.parameters.model_fields) for tool in suites[name].tools}
        for tool, sinks in tools.items():
            if tool not in parameters:
                raise ValueError(f"{name}: no tool {tool!r} (its tools: {', '.join(sorted(parameters))})")
            unknown = set(sinks.targets + sinks.content) - parameters[tool]
            if unknown:
                raise ValueError(f"{name}.{tool}: no argument {sorted(unknown)} (it takes {sorted(parameters[tool])})")


def flows(suites: Mapping[str, TaskSuite[Any]]) -> Iterator[Flow]:
    """The sink values of every user task's ground truth, run on the suite's unattacked environment."""
    check_declarations(suites)
    for name, suite in suites.items():
        for user_task_id, user_task in suite.user_tasks.items():
            environment = user_task.init_environment(suite.load_and_inject_default_environment({}))
            runtime = FunctionsRuntime(suite.tools)
            prompt = user_task.PROMPT.casefold()
            seen = ""  # every tool result so far, as text
            for call in user_task.ground_truth(environment):
                sinks = CONSEQUENTIAL[name].get(call.function)
                if sinks is not None:
                    for kind, arguments in (("target", sinks.targets), ("content", sinks.content)):
                        for argument in arguments:
                            if argument in call.args and call.args[argument] not in (None, "", []):
                                origin = _origin(call.args[argument], prompt, seen)
                                yield Flow(name, user_task_id, call.function, argument, kind, origin)  # type: ignore[arg-type]
                result, _ = runtime.run_function(environment, call.function, call.args)
                seen += "\n" + to_json(to_jsonable_python(result)).decode().casefold()


def _origin(value: Any, prompt: str, seen: str) -> Origin:
    """Where a sink value could have come from: every part of it in the prompt, else some part in a tool result."""
    parts = [str(part).casefold() for part in (value if isinstance(value, list) else [value])]
    if all(_holds(prompt, part) for part in parts):
        return "prompt"
    if any(_holds(seen, part) for part in parts if not _holds(prompt, part)):
        return "tool_result"
    return "composed"


def _holds(text: str, part: str) -> bool:
    """Whether `text` holds `part`: a short one (an id such as "5") only as a whole token, as podium's tracer reads
    it (`podium.security._flows.MIN_SUBSTRING`), so that "5" is not found in "2024-05-20"."""
    if len(part) >= MIN_SUBSTRING:
        return part in text
    return re.search(rf"(?<!\w){re.escape(part)}(?!\w)", text) is not None


def verdicts(suites: Mapping[str, TaskSuite[Any]]) -> dict[str, dict[str, Verdict]]:
    """Per suite, per user task: the most its ground truth asks of an information-flow policy."""
    found: dict[str, dict[str, Verdict]] = {
        name: dict.fromkeys(suite.user_tasks, "reads_only") for name, suite in suites.items()
    }
    for flow in flows(suites):
        verdict: Verdict = (
            "trusted_sinks"
            if flow.origin == "prompt"
            else "untrusted_target"
            if flow.kind == "target"
            else "untrusted_content"
            if flow.origin == "tool_result"
            else "composed_content"
        )
        if _RANK[verdict] > _RANK[found[flow.suite][flow.user_task]]:
            found[flow.suite][flow.user_task] = verdict
    return found


def verdict_counts(suites: Mapping[str, TaskSuite[Any]]) -> dict[str, dict[str, int]]:
    return {name: dict(Counter(tasks.values())) for name, tasks in verdicts(suites).items()}


def changing_tools(suites: Mapping[str, TaskSuite[Any]]) -> dict[str, set[str]]:
    """The tools whose calls changed the environment in some ground truth (user or injection task): the check that
    `CONSEQUENTIAL` misses none."""
    changed: dict[str, set[str]] = {name: set() for name in suites}
    for name, suite in suites.items():
        pristine = suite.load_and_inject_default_environment({})
        for task in [*suite.user_tasks.values(), *suite.injection_tasks.values()]:
            environment = pristine.model_copy(deep=True)
            environment = task.init_environment(environment) if hasattr(task, "init_environment") else environment
            runtime = FunctionsRuntime(suite.tools)
            for call in task.ground_truth(environment):
                before = environment.model_dump_json()
                runtime.run_function(environment, call.function, call.args)
                if environment.model_dump_json() != before:
                    changed[name].add(call.function)
    return changed
