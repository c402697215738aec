"""The cost router: cheapest tier above the floor, learnt from observed outcomes only, explained."""

from __future__ import annotations

import random

import pytest

from podium.models._router import ReferenceQuality, Router, RouteTier, Task

TIERS = [RouteTier("local", 0.01), RouteTier("frontier", 1.0)]


def stream(router: Router, n: int, seed: int = 0, frontier: float = 0.95) -> list[tuple[Task, str]]:
    """Easy tasks the local tier gets right 95% of the time, hard ones it gets right 10% of the time; the
    frontier tier gets both right 95% of the time (`frontier`). Only the chosen and shadow tiers' outcomes are
    learnt."""
    rng = random.Random(seed)
    decided = []
    for i in range(n):
        hard = rng.random() < 0.5
        task = Task(f"ticket {i} about {'tax law appeal' if hard else 'card delivery'}", "hard" if hard else "easy")
        decision = router.decide(task)
        for tier in filter(None, (decision.tier, decision.shadow)):
            chance = frontier if tier == "frontier" else 0.95 if not hard else 0.10
            router.learn(task, tier, rng.random() < chance, shadow=tier != decision.tier)
        decided.append((task, decision.tier))
    return decided


def test_it_learns_to_send_easy_work_to_the_cheap_tier_and_hard_work_to_the_strong_one() -> None:
    router = Router(TIERS, floor=0.93, shadow_rate=0.1)
    decided = stream(router, 1500)
    late = decided[-300:]
    easy_local = sum(tier == "local" for task, tier in late if task.group == "easy") / sum(
        task.group == "easy" for task, _ in late
    )
    hard_frontier = sum(tier == "frontier" for task, tier in late if task.group == "hard") / sum(
        task.group == "hard" for task, _ in late
    )
    assert easy_local > 0.9 and hard_frontier > 0.9


def test_a_decision_explains_itself() -> None:
    router = Router(TIERS, floor=0.9, shadow_rate=0.1)
    stream(router, 1000)
    decision = router.decide(Task("ticket about tax law appeal", "hard"))
    explained = decision.explain()
    assert explained["route"] == "frontier" == decision.tier
    assert explained["route_floor"] == "0.90"
    assert "local 0." in explained["route_estimates"] and "frontier 0." in explained["route_estimates"]
    assert explained["route_costs"] == "local 0.01, frontier 1"
    assert float(explained["route_cost_weight"]) > 0
    assert "group=hard" in explained["route_features"]
    assert decision.estimates["local"] < 0.5 < decision.estimates["frontier"]


def test_a_task_that_costs_more_must_promise_more_to_earn_the_strong_tier() -> None:
    router = Router(TIERS, floor=0.9, shadow_rate=0.1)
    stream(router, 1000)
    task = Task("ticket about tax law appeal", "hard")
    assert router.decide(task).tier == "frontier"
    assert router.decide(task, costs={"local": 0.5, "frontier": 50.0}).tier == "local"


def test_the_shadow_goes_to_the_other_tier_and_among_many_to_each_of_the_others() -> None:
    router = Router(TIERS, floor=0.5, shadow_rate=1.0)
    first = router.decide(Task("anything"))
    assert (first.tier, first.shadow) == ("local", "frontier")  # untrained: both 0.5, so the cheaper one
    for _ in range(200):  # the local tier keeps failing: the floor pulls the cost weight down
        router.learn(Task("x"), "frontier", True, shadow=True)
        router.learn(Task("x"), "local", False)
    assert (router.decide(Task("x")).tier, router.decide(Task("x")).shadow) == ("frontier", "local")
    assert Router(TIERS, shadow_rate=0.0).decide(Task("x")).shadow is None
    three = Router([RouteTier("local", 0.01), RouteTier("mid", 0.1), RouteTier("frontier", 1.0)], shadow_rate=1.0)
    decisions = [three.decide(Task(f"task {i}")) for i in range(200)]
    assert all(d.shadow != d.tier for d in decisions)
    assert {d.shadow for d in decisions if d.tier == "local"} == {"mid", "frontier"}


def test_with_a_window_the_router_aims_above_the_floor_by_what_chance_takes_from_a_window() -> None:
    """Over 100-task windows, 1.645 standard errors of a 90% success rate (3 points) above the floor."""
    assert Router(TIERS, floor=0.9)._aim == 0.9
    assert Router(TIERS, floor=0.9, window=100)._aim == pytest.approx(0.9 + 1.645 * 0.03, abs=1e-3)
    assert Router(TIERS, floor=0.99, window=10)._aim == 1.0  # capped
    plain, windowed = Router(TIERS, floor=0.85, shadow_rate=0.1), Router(TIERS, floor=0.85, shadow_rate=0.1, window=100)
    frontier_share = [
        sum(tier == "frontier" for _, tier in stream(router, 2000)[1000:]) / 1000 for router in (plain, windowed)
    ]
    assert frontier_share[1] > frontier_share[0] + 0.02  # it buys the margin with more strong calls


def test_tier_names_must_be_distinct() -> None:
    with pytest.raises(ValueError, match="distinct"):
        Router([RouteTier("local", 1.0), RouteTier("local", 0.01)])


@pytest.mark.parametrize(("window", "confidence"), [(-1, 0.95), (100, 1.0), (100, 0.3)])
def test_a_window_is_a_number_of_tasks_and_confidence_a_share_below_one(window: int, confidence: float) -> None:
    with pytest.raises(ValueError, match="window is a number of tasks"):
        Router(TIERS, window=window, confidence=confidence)


def test_a_quality_between_0_and_1_is_learnt_as_a_soft_label() -> None:
    """A judge's score mapped to [0, 1]: the estimate settles near the tier's mean quality, not at 0 or 1."""
    router = Router(TIERS, floor=0.5, shadow_rate=0.0)
    rng = random.Random(0)
    for _ in range(3000):
        router.learn(Task("summarise this contract", "legal"), "local", rng.choice((0.6, 0.8)))
    estimate = router.decide(Task("summarise this contract", "legal")).estimates["local"]
    assert 0.62 < estimate < 0.78
    for wrong in (1.5, -0.1, float("nan")):
        with pytest.raises(ValueError, match="between 0 and 1"):
            router.learn(Task("x"), "local", wrong)


def test_told_a_share_of_the_strong_tiers_quality_it_measures_that_quality_and_holds_the_share() -> None:
    """95% of a frontier that gets 95% right is 90%: the hard tasks must go to it. 95% of one that gets half right
    is 47.5%, which the local tier's 52.5% alone clears: the router no longer pays for the frontier."""
    strong = Router(TIERS, floor=0.95, shadow_rate=0.1, reference="frontier")
    late = stream(strong, 2000, frontier=0.95)[1000:]
    assert sum(tier == "frontier" for task, tier in late if task.group == "hard") / 500 > 0.8
    quality, _ = strong._measured.estimate()
    assert quality == pytest.approx(0.95, abs=0.03)  # measured on all the work, not just the hard tasks it took
    weak = Router(TIERS, floor=0.95, shadow_rate=0.1, reference="frontier")
    late = stream(weak, 2000, frontier=0.5)[1000:]
    assert sum(tier == "frontier" for _, tier in late) / 1000 < 0.15
    decision = weak.decide(Task("x"))
    assert decision.aim is not None and decision.aim == pytest.approx(0.95 * weak._measured.estimate()[0], abs=0.05)
    shadows = [d.shadow for d in (weak.decide(Task(f"t{i}")) for i in range(300)) if d.tier == "local"]
    assert set(shadows) == {None, "frontier"}  # a shadow goes to the reference, which it measures


def test_the_reference_is_measured_on_all_the_work_not_only_where_it_was_chosen() -> None:
    """It takes the hard half (60% right there) and is shadowed on a tenth of the easy half (95% right there): over
    the work it gets 77.5% right, not the 60% of the tasks it was chosen for. Unmeasured, it counts as perfect."""
    assert ReferenceQuality().estimate() == (1.0, 0.0)
    measured, rng = ReferenceQuality(), random.Random(1)
    for i in range(20_000):
        if i % 2:
            measured.observe(rng.random() < 0.6, reference=True, shadow=False)
        else:
            measured.observe(rng.random() < 0.8, reference=False, shadow=False)  # the local tier's own outcome
            if i % 20 == 0:
                measured.observe(rng.random() < 0.95, reference=True, shadow=True)
    quality, variance = measured.estimate()
    assert quality == pytest.approx(0.775, abs=0.01) and 0 < variance < 1e-4


def test_the_floors_reference_must_be_a_tier() -> None:
    with pytest.raises(ValueError, match="not one of the tiers"):
        Router(TIERS, reference="gpt-5")


def test_judge_scores_that_vary_little_give_a_surer_measure_than_successes_with_the_same_mean() -> None:
    scores, successes = ReferenceQuality(), ReferenceQuality()
    for i in range(200):
        scores.observe(0.85 + 0.1 * (i % 2), reference=True, shadow=False)  # 0.85 and 0.95: a mean of 0.9
        successes.observe(float(i % 10 != 0), reference=True, shadow=False)  # nine in ten: 0.9
    (mean_scores, sure), (mean_successes, unsure) = scores.estimate(), successes.estimate()
    assert mean_scores == pytest.approx(0.9) == mean_successes
    assert sure == pytest.approx(0.0025 / 199, rel=0.01) and unsure == pytest.approx(0.09 / 199, rel=0.01)
