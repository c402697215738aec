"""The governor as a pipeline: a new stage plugs in and is audited by name; front doors other than a workflow step
govern a call the same way (admitted, costed, budgeted, audited), idempotent under the door's request key."""

from __future__ import annotations

import json
from typing import ClassVar

import pytest
import sqlalchemy as sa
from pydantic_ai.messages import ModelResponse, TextPart

import podium
from podium import ActionDenied, BudgetExhausted, Settings
from podium.audit import canonical_json
from podium.governance import CallContext, Refusal, Stage
from podium.store import tables
from tests import _apps
from tests._people import operator
from tests.governance.test_governor import audit_rows as audit
from tests.governance.test_governor import ledger_rows as ledger


class RefuseMarkedArguments(Stage):
    """A stage of the kind a deployment adds: tool calls whose arguments contain a marker are refused."""

    name: ClassVar[str] = "marker"

    def check(self, ctx: CallContext) -> None:
        if ctx.call.kind == "tool" and "DO-NOT-SEND" in canonical_json(dict(ctx.call.arguments or {})):
            error = ActionDenied(
                f"{ctx.call.describe()} carries the DO-NOT-SEND marker; remove it from the text.",
                agent=ctx.call.agent,
                resource=ctx.call.resource,
            )
            raise Refusal(error, "denied", why="marked")


def test_a_stage_added_to_the_pipeline_refuses_and_its_refusal_is_audited_with_its_name(settings: Settings) -> None:
    with _apps.launch(settings) as pod:
        pod.governor.add_stage(RefuseMarkedArguments(), before="budgets")
        assert [stage.name for stage in pod.governor.stages] == [
            "run_limits",
            "admission",
            "information_flow",
            "screening",
            "authorisation",
            "egress",
            "exceptions",
            "containment",
            "measured_compute",
            "marker",
            "budgets",
        ]
        with pytest.raises(ActionDenied, match="DO-NOT-SEND marker"):
            _apps.worker.call_tool("note", text="hello DO-NOT-SEND")
        assert _apps.worker.call_tool("note", text="hello") == "queued"

        refused, allowed = audit(pod)[-2:]
        assert (refused.action, refused.resource, refused.decision) == ("tool.call", "note", "denied")
        detail = json.loads(refused.detail)
        assert (detail["stage"], detail["refusal"]) == ("marker", "marked")
        assert "DO-NOT-SEND marker" in detail["reason"]
        assert (allowed.decision, json.loads(allowed.detail).get("stage")) == ("allowed", None)
        assert [m.body for m in pod.outbox.messages()] == ["hello"]  # the marked call never ran
        assert pod.verify_audit().ok


def test_a_stage_is_inserted_by_name_and_a_wrong_name_says_which_there_are(sqlite_settings: Settings) -> None:
    with _apps.launch(sqlite_settings) as pod:
        with pytest.raises(
            ValueError, match="no stage named 'budget'; the pipeline's stages are run_limits, admission, "
        ):
            pod.governor.add_stage(RefuseMarkedArguments(), before="budget")
        pod.governor.add_stage(RefuseMarkedArguments(), before="admission")
        with pytest.raises(ValueError, match="already has a stage named 'marker'"):
            pod.governor.add_stage(RefuseMarkedArguments(), before="budgets")


def test_a_model_call_from_plain_code_is_governed_and_idempotent_under_its_request_key(settings: Settings) -> None:
    """No workflow, no step: the request door names the call. A client that sends the request again is recorded
    under the same key once; the second run of its call is real spend, so it is ledgered and charged as waste."""
    key = "request:person.ana@example.com:req-42:1"
    with _apps.launch(settings) as pod:
        pod.budgets.set("agent:tester", 5.0, by=operator(pod, "cfo@example.com"))
        for _ in range(2):  # the client sends the same request again
            with podium.request_scope("req-42", person="ana@example.com"):
                assert _apps.worker.run("hello", model="echo", max_tokens=10) == "echo"

        first, again = ledger(pod)
        assert (first.call_key, first.run_id, first.kind, first.resource, first.agent, first.wasted) == (
            key,
            None,
            "model",
            "echo",
            "tester",
            0,
        )
        assert again.call_key.startswith(f"{key}:retry-") and again.wasted == 1
        assert first.cost_nano_usd == again.cost_nano_usd == 9_000_000  # 7 tokens in at $1,000/M, 1 out at $2,000/M
        entries = [e for e in audit(pod) if e.action == "model.call"]
        assert [(e.call_key, e.decision, e.actor) for e in entries] == [
            (key, "allowed", "agent:tester"),
            (again.call_key, "allowed", "agent:tester"),
        ]
        assert json.loads(entries[0].detail)["on_behalf_of"] == "ana@example.com"
        assert json.loads(entries[1].detail)["retry_of"] == key
        budget = pod.budgets.get("agent:tester")
        assert (budget.spent_nano_usd, budget.reserved_nano_usd) == (18_000_000, 0)  # each run reserved, then settled
        with pod.engine.connect() as conn:
            holds = conn.execute(sa.select(tables.reservations.c.call_key, tables.reservations.c.status)).all()
        # Each run held its own reservation (a client may send the request again before the first has ended)
        assert [status for _, status in holds] == ["committed", "committed"]
        assert len({hold for hold, _ in holds}) == 2 and all(hold.startswith(f"{key}:x.") for hold, _ in holds)

        with podium.request_scope("req-43"):  # another request is another call
            _apps.worker.run("hello", model="echo", max_tokens=10)
        assert [r.call_key for r in ledger(pod)][-1] == "request:anonymous:req-43:1"
        assert pod.verify_audit().ok


def test_a_key_budget_stops_the_calls_of_requests_made_with_that_key(settings: Settings) -> None:
    with _apps.launch(settings) as pod:
        cfo = operator(pod, "cfo@example.com")
        key = pod.agents.rotate_key("tester", by=operator(pod, "qa-lead@example.com"))
        pod.budgets.set(f"key:{key.id}", 5.0, by=cfo)
        with podium.request_scope("with-key-1", api_key=key.id):
            _apps.worker.run("hello", model="echo", max_tokens=10)
        with pod.engine.connect() as conn:
            most = conn.execute(sa.select(tables.reservations.c.amount_nano_usd)).scalar_one()
        spent = pod.budgets.get(f"key:{key.id}").spent_nano_usd
        assert spent == 9_000_000 < most  # the reservation was the most the call could cost; it cost less
        pod.budgets.set(f"key:{key.id}", (spent + most - 1) / 1e9, by=cfo)  # no room for another
        with (
            pytest.raises(BudgetExhausted, match=f"budget key:{key.id} is exhausted"),
            podium.request_scope("with-key-2", api_key=key.id),
        ):
            _apps.worker.run("hello", model="echo", max_tokens=10)
        with podium.request_scope("without-key"):  # the key's budget covers only its own requests
            _apps.worker.run("hello", model="echo", max_tokens=10)

        assert pod.budgets.get(f"key:{key.id}").spent_nano_usd == 9_000_000
        assert [(r.call_key, r.api_key) for r in ledger(pod)] == [
            (f"request:key.{key.id}:with-key-1:1", key.id),
            ("request:anonymous:without-key:1", None),
        ]
        refused = [e for e in audit(pod) if e.decision == "over_budget"]
        [(call_key, stage)] = [(e.call_key, json.loads(e.detail)["stage"]) for e in refused]
        assert call_key.startswith(f"request:key.{key.id}:with-key-2:1:over_budget:x.") and stage == "budgets"


def test_a_request_id_that_cannot_key_a_call_is_refused_with_the_fix(sqlite_settings: Settings) -> None:
    with _apps.launch(sqlite_settings):
        for bad in ("a\nb", "", "run-1:2:1", "x" * 201):
            with pytest.raises(podium.UsageError, match="use the client's idempotency key"), podium.request_scope(bad):
                pass


def test_the_same_request_id_from_two_askers_is_two_requests(sqlite_settings: Settings) -> None:
    with _apps.launch(sqlite_settings) as pod:
        for person in ("ana@example.com", "bo@example.com"):
            with podium.request_scope("1", person=person):
                assert _apps.worker.call_tool("note", text=f"from {person}") == "queued"
        assert [m.body for m in pod.outbox.messages()] == ["from ana@example.com", "from bo@example.com"]
        assert len(ledger(pod)) == 2


def test_a_request_scope_inside_a_workflow_step_is_refused(sqlite_settings: Settings) -> None:
    """Inside a step, calls belong to the run (its cancel, its kills, its budgets): a request door would hide them."""
    with _apps.launch(sqlite_settings):
        run = _apps.request_inside_step.start()
        with pytest.raises(podium.UsageError, match="opened inside another front door"):
            run.result()


def test_a_streamed_request_is_refused_rather_than_sent_past_the_governor(sqlite_settings: Settings) -> None:
    """pydantic-ai's WrapperModel passes request_stream straight to the provider: the governed model refuses it."""
    import asyncio
    from collections.abc import AsyncIterator

    from pydantic_ai import Agent as PydanticAgent
    from pydantic_ai.messages import ModelMessage
    from pydantic_ai.models.function import AgentInfo, FunctionModel

    from podium.governance import GovernedModel

    reached: list[str] = []

    async def stream(messages: list[ModelMessage], info: AgentInfo) -> AsyncIterator[str]:
        reached.append("stream")
        yield "ungoverned"

    def answer(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        reached.append("request")
        return ModelResponse(parts=[TextPart("governed")])

    with _apps.launch(sqlite_settings) as pod:
        model = GovernedModel(
            FunctionModel(answer, stream_function=stream),
            governor=pod.governor,
            agent="tester",
            name="echo",
            tier="frontier",
            price=_apps.ECHO_PRICE,
        )

        async def streamed() -> None:
            async with PydanticAgent(model).run_stream("hello") as result:
                await result.get_output()

        with pytest.raises(podium.UsageError, match="does not govern yet, so it is refused"):
            asyncio.run(streamed())
        assert reached == [] and ledger(pod) == []
        assert PydanticAgent(model).run_sync("hello", model_settings={"max_tokens": 10}).output == "governed"
        assert reached == ["request"] and len(ledger(pod)) == 1
