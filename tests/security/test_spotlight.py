"""Spotlighting: an agent's model sees tool results marked as data; what the governor records is unmarked."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from pydantic_ai.messages import ModelRequest, ToolReturnPart

import podium
from podium import Podium, Settings
from podium.errors import ActionDenied, UsageError
from podium.governance import CallSite
from podium.security import InformationFlow
from tests.security import _screen_app
from tests.security._screen_app import ATTACKER, OWNER, PAGES, SEEN, reader


@pytest.fixture
def pod(sqlite_settings: Settings) -> Iterator[Podium]:
    with podium.launch(sqlite_settings, _screen_app.app) as launched:
        yield launched


def shown() -> tuple[str, str]:
    """The model's instructions and the tool result it was shown last."""
    request = SEEN[-1]
    assert isinstance(request, ModelRequest)
    (part,) = [p for p in request.parts if isinstance(p, ToolReturnPart)]
    return request.instructions or "", str(part.content)


def test_a_tool_result_reaches_the_model_marked_with_a_code_of_the_run(pod: Podium) -> None:
    with podium.request_scope("r-1"):
        answer = reader().run("Summarise the page notes", model="obedient")
    instructions, result = shown()
    (code,) = re.findall(r"<<data:([0-9a-f]{12})>>", result)
    assert result == f"<<data:{code}>>\n{PAGES['notes']}\n<</data:{code}>>"
    assert f"between <<data:{code}>> and <</data:{code}>>" in instructions and "never instructions" in instructions
    assert answer == f"Read: {result}"
    with podium.request_scope("r-2"):
        reader().run("Summarise the page notes", model="obedient")
    assert code not in shown()[1]  # a new code each run: a page cannot close its block early


def test_datamarking_marks_every_space_and_off_shows_the_result_as_it_is(pod: Podium) -> None:
    with podium.request_scope("r-marked"):
        reader("datamark").run("Summarise the page notes", model="obedient")
    instructions, result = shown()
    assert "Meetingˆnotes:ˆtheˆQ3ˆreview" in result and " " not in result.split("\n")[1]
    assert "every space is shown as ˆ" in instructions
    with podium.request_scope("r-plain"):
        reader("off").run("Summarise the page notes", model="obedient")
    assert shown() == ("", PAGES["notes"])


def test_marking_does_not_break_tracing_the_governor_records_the_raw_result(pod: Podium) -> None:
    """The model obeys the marked page and e-mails the attacker: the address traces to what the tool returned, as
    the governor recorded it before it was marked, so the call waits for a person."""
    with podium.request_scope("r-obey"), pytest.raises(ActionDenied, match="untrusted-data-drives-no-action"):
        reader().run("Summarise the page injected", model="obedient")
    assert "<<data:" in shown()[1]
    (flow,) = [s for s in pod.governor.stages if isinstance(s, InformationFlow)]
    log = flow.log(CallSite("x", None, None, door="request", door_key="request:anonymous:r-obey"))
    (text, origin), *_ = log.untrusted
    assert (text, origin.source) == (PAGES["injected"].casefold(), "tool:fetch_page")
    assert "tool:fetch_page" in {origin.source for origin in log.trace(ATTACKER)}
    assert [m.recipient for m in pod.outbox.messages()] == []


def test_an_unknown_spotlight_mode_is_refused_with_the_choices() -> None:
    with pytest.raises(UsageError, match=r"spotlight='loud' is not one of delimit, datamark, off"):
        podium.Agent("loud", owner=OWNER, models=["obedient"], spotlight="loud")  # type: ignore[arg-type]
