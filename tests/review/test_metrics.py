"""Review metrics from live data: exception rates, latency, SLA breaches, judgment yield and guardrail fatigue."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

import podium
from podium import Podium, Settings
from podium.testing import sign_in
from tests.review import _app
from tests.review.test_review import waiting


@pytest.fixture
def pod(sqlite_settings: Settings) -> Iterator[Podium]:
    with podium.launch(sqlite_settings, _app.app) as launched:
        sign_in(launched, "bob", teams=["refunds"])
        yield launched


def test_metrics_say_where_human_time_goes_and_which_rule_to_relax(pod: Podium) -> None:
    calm = [_app.refund_flow.start(f"calm-{n}", 10.0) for n in range(2)]  # inside every boundary
    unsure = [_app.refund_flow.start(f"unsure-{n}", 10.0, confidence=0.2) for n in range(20)]
    big = _app.refund_flow.start("big", 5000.0)
    late = _app.refund_quick.start("late", 900.0)  # nobody answers: escalates twice, then expires
    assert {run.result() for run in calm} == {"paid"}
    requests = [waiting(pod, run.id) for run in unsure]
    bob = sign_in(pod, "bob")
    pod.reviews.approve_many([r.id for r in requests], by=bob, minutes=1)  # rubber-stamping
    pod.reviews.reject(waiting(pod, big.id).id, by=bob, minutes=5, rationale="far above policy")
    assert {run.result() for run in unsure} == {"paid"}
    assert (big.result(), late.result()) == ("not paid: rejected", "not paid: expired")

    m = pod.reviews.metrics()
    assert m.runs == {"tests.refund": 23, "tests.refund_quick": 1}
    assert m.exception_rate == pytest.approx(22 / 24)
    assert m.exception_rate_of("tests.refund") == pytest.approx(21 / 23)
    assert m.exceptions_by_reason == {"low_confidence": 20, "high_value": 2}
    assert (m.decided, m.open, m.sla_breaches) == (21, 0, 1)
    assert m.latency_p50_s is not None and m.latency_p95_s is not None
    assert 0 < m.latency_p50_s <= m.latency_p95_s
    assert (m.human_minutes, m.judgment_minutes) == (25, 5)
    assert m.judgment_yield == pytest.approx(0.2), "5 of 25 minutes went on a decision that needed a person"
    (fatigue,) = m.fatigue
    assert (fatigue.reason, fatigue.decisions, fatigue.approved_unchanged) == ("low_confidence", 20, 1.0)
    assert "relax that rule" in fatigue.advice
    assert pod.reviews.metrics(since=time.time() + 60).runs == {}, "a window that starts later counts nothing"
