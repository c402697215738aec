"""`podium/auto`: the router picks among the models the caller may use, explains itself in the audit entry, and
learns from the client's feedback (once per request), in a way a new process starts from."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import httpx2 as httpx
import openai
import pytest
import sqlalchemy as sa

from podium import Podium, Settings
from podium.cost import Tokens
from podium.gateway._auto import AutoRouter
from podium.governance import floor_status
from podium.store import tables
from tests.gateway.conftest import AGENT, PERSON, Served, remote_model, served_with
from tests.gateway.openai_server import OpenAIServer, Script

pytestmark = pytest.mark.slow  # the router may choose the local model


LOCAL = "smollm2-135m"


def _dear_remote(base_url: str) -> str:
    """`remote` at $100 a million tokens of any class."""
    return remote_model("remote", base_url, price="{ input_per_mtok = 100.0, output_per_mtok = 100.0 }")


def _ask(served: Served, key: str) -> tuple[str, str]:
    client = openai.OpenAI(base_url=served.openai_base, api_key=key, max_retries=0)
    raw = client.chat.completions.with_raw_response.create(
        model="podium/auto", messages=[{"role": "user", "content": "Say yes."}], max_tokens=3
    )
    return raw.headers["x-podium-request-id"], raw.parse().model


def test_auto_routes_within_what_the_caller_may_use_and_learns_from_feedback(settings: Settings) -> None:
    with OpenAIServer() as upstream, served_with(settings, remote_model("remote", upstream.base_url)) as served:
        assert "podium/auto" in [
            m.id for m in openai.OpenAI(base_url=served.openai_base, api_key=served.agent_key).models.list()
        ]
        request_id, answered_as = _ask(served, served.agent_key)
        assert answered_as == "podium/auto"
        [entry] = [e.entry for e in served.pod.audit.entries(actor=f"agent:{AGENT}") if e.entry.action == "model.call"]
        detail = json.loads(entry.detail)
        assert detail["alias"] == "podium/auto" and detail["route"] in ("smollm2-135m", "remote")
        assert detail["router"] == "gateway:smollm2-135m|remote"  # both: the agent's grants allow both tiers

        said = httpx.post(
            f"{served.url}/v1/podium/feedback",
            json={"request_id": request_id, "good": True},
            headers={"Authorization": f"Bearer {served.agent_key}"},
        )
        assert said.status_code == 200 and said.json()["credited"] == 1
        again = httpx.post(
            f"{served.url}/v1/podium/feedback",
            json={"request_id": request_id, "good": False},
            headers={"Authorization": f"Bearer {served.agent_key}"},
        )
        assert again.status_code == 404  # once per request
        with served.pod.engine.connect() as conn:
            [row] = conn.execute(sa.select(tables.routed)).all()
        assert (row.run_id, row.success, row.model) == (
            f"request:key.{served.agent_key.split('_')[1]}:{request_id}",
            1,
            detail["route"],
        )
        assert "Say yes" not in row.features  # hashed features, never the text

        # A person may use the local tier only (the default policy): auto never sends them elsewhere.
        _, _ = _ask(served, served.person_key)
        [person_entry] = [
            e.entry for e in served.pod.audit.entries(actor=f"person:{PERSON}") if e.entry.action == "model.call"
        ]
        assert json.loads(person_entry.detail)["router"] == "gateway:smollm2-135m"
        assert upstream.chat_requests() == [] or detail["route"] == "remote"


def test_feedback_on_another_keys_request_finds_nothing(settings: Settings) -> None:
    with OpenAIServer() as upstream, served_with(settings, remote_model("remote", upstream.base_url)) as served:
        request_id, _ = _ask(served, served.agent_key)
        said = httpx.post(
            f"{served.url}/v1/podium/feedback",
            json={"request_id": request_id, "good": True},
            headers={"Authorization": f"Bearer {served.person_key}"},
        )
        assert said.status_code == 404
        assert said.json()["error"]["type"] == "invalid_request_error" and said.json()["error"]["code"] is None


def _weighed(served: Served) -> tuple[str, dict[str, float]]:
    """The model podium/auto chose for the agent's latest request, and the cost it weighed each model at."""
    entry = [e.entry for e in served.pod.audit.entries(actor=f"agent:{AGENT}") if e.entry.action == "model.call"][-1]
    detail = json.loads(entry.detail)
    pairs = (pair.rsplit(" ", 1) for pair in detail["route_costs"].split(", "))
    return detail["route"], {model: float(cost) for model, cost in pairs}


def _per_token(served: Served, seconds_a_token: float) -> float:
    """What a token costs on the local model at `seconds_a_token`, over what it costs on the remote one."""
    local, remote = (served.pod.models.entry(name).price for name in (LOCAL, "remote"))
    million = Tokens(input=1_000_000)
    return local.cost_of(Tokens(), seconds_a_token * 1_000_000) / remote.cost_of(million)


def test_auto_costs_a_local_model_at_the_compute_it_has_taken_and_a_slow_one_loses(settings: Settings) -> None:
    """The ledger says the local model took 100 CPU seconds a token (in another process, say): podium/auto weighs
    this request's tokens at that rate, not at the slowest it reserves (2 tokens a second), and the dear remote model
    ($100 a million tokens) is now the cheaper one, so it answers."""
    with OpenAIServer() as upstream, served_with(settings, _dear_remote(upstream.base_url)) as served:
        with served.pod.engine.begin() as conn:
            conn.execute(
                sa.insert(tables.ledger).values(
                    call_key="an earlier call", agent="someone", kind="model", resource=LOCAL, tier="local",
                    input_tokens=40, output_tokens=10, compute_seconds=5_000.0, cost_nano_usd=118_055, at=0.0,
                )
            )  # fmt: skip
        _ask(served, served.agent_key)
        route, costs = _weighed(served)
        assert route == "remote" and len(upstream.chat_requests()) == 1
        assert costs[LOCAL] / costs["remote"] == pytest.approx(_per_token(served, 100.0), rel=0.01)  # 23.6 to 1


def test_auto_weighs_each_token_class_at_its_own_price_not_at_the_dearest(settings: Settings) -> None:
    """A model whose plain tokens are cheap ($0.01 a million) and whose reasoning tokens are dear ($100,000) is the
    cheap one for a request that asks for no reasoning: podium/auto weighs the tokens a request is expected to take at
    each class's price. (Its budget reservation still takes the dearest class: that is a bound, not an estimate.)"""
    price = "{ input_per_mtok = 0.01, output_per_mtok = 0.01, reasoning_per_mtok = 100000.0 }"
    with (
        OpenAIServer() as upstream,
        served_with(settings, remote_model("remote", upstream.base_url, price=price)) as served,
    ):
        _ask(served, served.agent_key)
        route, costs = _weighed(served)
        remote = served.pod.models.entry("remote").price
        assert costs["remote"] < remote.cost_of(
            Tokens(input=1_000, output=3)
        )  # plain classes: under a tenth of a micro-dollar
        # at the dearest class, its 3 tokens out alone would cost more than the local model
        assert costs["remote"] < costs[LOCAL] < remote.cost_of(Tokens(reasoning=3)) and route == "remote"
        assert len(upstream.chat_requests()) == 1


def test_auto_learns_a_local_models_compute_from_each_answer_it_serves(settings: Settings) -> None:
    """Unmeasured, the local model is weighed at a nominal second and answers; the next request weighs it at the
    seconds a token that answer took, as the ledger has it."""
    with OpenAIServer() as upstream, served_with(settings, _dear_remote(upstream.base_url)) as served:
        _ask(served, served.agent_key)
        assert _weighed(served)[0] == LOCAL
        [row] = [row for row in served.ledger() if row.resource == LOCAL]
        assert row.compute_seconds > 0
        _ask(served, served.agent_key)
        route, costs = _weighed(served)
        measured = row.compute_seconds / (row.input_tokens + row.output_tokens)
        assert costs[LOCAL] / costs["remote"] == pytest.approx(_per_token(served, measured), rel=0.02)
        assert route == LOCAL and upstream.chat_requests() == []


def _shadow_rows(served: Served, count: int) -> list[sa.Row[tuple[object, ...]]]:
    """The shadow answers stored, once `count` are (they are asked after the client has its answer)."""
    deadline = time.monotonic() + 60
    while True:
        with served.pod.engine.connect() as conn:
            rows = list(conn.execute(sa.select(tables.routed).where(tables.routed.c.shadow_of.is_not(None))))
        if len(rows) >= count or time.monotonic() > deadline:
            return sorted(rows, key=lambda row: row.at)
        time.sleep(0.1)


def test_auto_shadows_its_answers_on_the_strongest_model_and_feedback_teaches_only_agreeing_ones(
    settings: Settings,
) -> None:
    """With routing.shadow_rate 1, each new answer the local model gives is also asked of the remote one (paid,
    audited with route_shadow_of, keyed apart from the request, outside the client's rate limit); an agreeing shadow
    shares the client's feedback, even feedback that came before it, and a disagreeing one stays unjudged."""
    limits = "[routing]\nshadow_rate = 1.0\n\n[gateway.limits]\nkey = { rpm = 4 }\n"  # the client's 4 requests
    with OpenAIServer() as upstream, served_with(settings, _dear_remote(upstream.base_url) + limits) as served:
        client = openai.OpenAI(base_url=served.openai_base, api_key=served.agent_key, max_retries=0)
        ask = {"messages": [{"role": "user", "content": "Say yes."}], "max_tokens": 3, "temperature": 0}
        local_says = client.chat.completions.create(model=LOCAL, **ask).choices[0].message.content  # type: ignore[call-overload]
        upstream.queue = [
            Script(text=f" {str(local_says).upper()}.", delay_s=2),  # agrees, after the client's feedback
            Script(text="Something else entirely."),
        ]

        def auto(request_id: str) -> str:
            raw = client.chat.completions.with_raw_response.create(  # type: ignore[call-overload]
                model="podium/auto", extra_headers={"Idempotency-Key": request_id}, **ask
            )
            assert raw.parse().choices[0].message.content == local_says  # the served answer, never the shadow's
            return str(raw.headers["x-podium-request-id"])

        def feedback(request_id: str) -> httpx.Response:
            return httpx.post(
                f"{served.url}/v1/podium/feedback",
                json={"request_id": request_id, "good": True},
                headers={"Authorization": f"Bearer {served.agent_key}"},
            )

        assert feedback(auto("agreeing")).json()["credited"] == 1  # before its shadow has answered
        (agreeing,) = _shadow_rows(served, 1)
        assert feedback("agreeing").status_code == 404  # once per request, the shadow's arrival notwithstanding
        assert feedback(auto("disagreeing")).json()["credited"] == 1
        agreeing, disagreeing = _shadow_rows(served, 2)
        auto("disagreeing")  # a client's retry: recorded once, shadowed once
        time.sleep(1)

        key = served.agent_key.split("_")[1]
        assert [(row.model, row.agrees, row.success) for row in (agreeing, disagreeing)] == [
            ("remote", 1, 1),
            ("remote", 0, None),
        ]
        assert [row.shadow_of for row in (agreeing, disagreeing)] == [
            f"request:key.{key}:agreeing",
            f"request:key.{key}:disagreeing",
        ]
        assert len(upstream.chat_requests()) == 2
        shadows = [
            json.loads(e.entry.detail)
            for e in served.pod.audit.entries(actor=f"agent:{AGENT}")
            if e.entry.action == "model.call" and e.entry.resource == "remote"
        ]
        assert [d["route_shadow_of"] for d in shadows] == [LOCAL, LOCAL]
        paid = [row.call_key for row in served.ledger() if row.resource == "remote"]  # paid, like any call
        assert paid == [f"request:key.{key}:{r}:shadow:1" for r in ("agreeing", "disagreeing")]
        (status,) = floor_status(served.pod.engine, served.pod.config.routing)  # what `podium route status` shows
        assert (status.router, status.requests, status.shadows, status.agreement) == (
            f"gateway:{LOCAL}|remote",
            2,
            2,
            0.5,
        )


def test_auto_shadows_a_streamed_answer_as_the_whole_answer_it_became(settings: Settings) -> None:
    """A streamed answer is in the shadow sample too once it has ended whole: the strongest model is asked once (not
    streamed) and its answer compared with what the stream said."""
    with (
        OpenAIServer() as upstream,
        served_with(settings, _dear_remote(upstream.base_url) + "[routing]\nshadow_rate = 1.0\n") as served,
    ):
        client = openai.OpenAI(base_url=served.openai_base, api_key=served.agent_key, max_retries=0)
        ask = {"messages": [{"role": "user", "content": "Say yes."}], "max_tokens": 3, "temperature": 0}
        local_says = str(client.chat.completions.create(model=LOCAL, **ask).choices[0].message.content)  # type: ignore[call-overload]
        upstream.script = Script(text=f" {local_says.upper()}.")
        chunks = client.chat.completions.create(model="podium/auto", stream=True, **ask)  # type: ignore[call-overload]
        assert "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices) == local_says
        (shadow,) = _shadow_rows(served, 1)
        assert (shadow.model, shadow.agrees) == ("remote", 1)
        (asked,) = upstream.chat_requests()
        assert not asked.body.get("stream")
        entries = [e.entry for e in served.pod.audit.entries(actor=f"agent:{AGENT}") if e.entry.action == "model.call"]
        autos = [detail for e in entries if (detail := json.loads(e.detail)).get("alias") == "podium/auto"]
        assert sorted((d.get("route_shadow_of", ""), d.get("stream", "")) for d in autos) == [("", "true"), (LOCAL, "")]


@pytest.mark.postgres
@pytest.mark.parametrize("first", ["feedback", "shadow"])
def test_a_feedback_and_its_shadow_at_the_same_moment_take_turns_and_the_shadow_shares_the_verdict(
    first: str, postgres_url: str, tmp_path: Path
) -> None:
    """On PostgreSQL a feedback and the storing of an agreeing shadow can run at once, and each could read the other
    as not there yet (the feedback no shadow, the shadow no verdict): the outcome of the shadow would be lost. Here
    one of them is held open half-way, holding the served row as it does, and the other must wait for it."""
    with Podium.connect(Settings(home=tmp_path / "podium", database_url=postgres_url)) as pod:
        auto = AutoRouter(pod.engine, pod.config.routing, pod.models)
        route = auto.order([(LOCAL, "local", 1.0), ("remote", "intermediate", 5.0)], "Say yes.", "support")
        assert auto.remember(route, "asked", LOCAL)
        routed = tables.routed
        credited: list[int] = []
        with pod.engine.connect() as held, held.begin():
            if first == "feedback":  # its verdict written, not committed; the shadow arrives
                held.execute(routed.update().where(routed.c.id == "asked").values(success=1))
                second = threading.Thread(target=auto.remember_shadow, args=(route, "asked", True))
            else:  # the shadow stored, not committed; the feedback arrives
                held.execute(routed.update().where(routed.c.id == "asked").values(at=routed.c.at))
                auto._store(held, route, "asked:shadow", "asked", "remote", shadow_of="asked", agrees=True)
                second = threading.Thread(target=lambda: credited.append(auto.feedback("asked", True)))
            second.start()
            deadline = time.monotonic() + 30
            while second.is_alive() and not _waits_for_the_row(pod.engine) and time.monotonic() < deadline:
                time.sleep(0.02)
            assert second.is_alive(), f"the {first} in flight was not waited for"
        second.join(30)
        if first == "shadow":
            assert credited == [1]
        with pod.engine.connect() as conn:
            shadow = conn.execute(sa.select(routed.c.success, routed.c.agrees).where(routed.c.shadow_of == "asked"))
            assert shadow.one() == (1, 1)


def _waits_for_the_row(engine: sa.Engine) -> bool:
    """Whether a session of this database waits for a lock on a routed request (other tests' databases are on the
    same server)."""
    waiting = (
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' "
        "AND query ILIKE 'UPDATE podium_routed%'"
    )
    with engine.connect() as conn:
        return bool(conn.execute(sa.text(waiting)).scalar())
