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
    measured = strong.decide(Task("x")).reference
    assert measured is not None and measured[0] == "frontier"
    assert measured[1] == pytest.approx(0.95, abs=0.03)  # measured on all the work, not just the hard tasks it took
    weak = Router(TIERS, floor=0.95, shadow_rate=0.1, reference="frontier")
    late = stream(weak, 2000, frontier=0.5)[1000:]
    assert sum(tier == "frontier" for _, tier in late) / 1000 < 0.15
    explained = weak.decide(Task("x")).explain()
    quality = float(explained["route_floor_of"].removeprefix("frontier "))
    assert quality == pytest.approx(0.5, abs=0.1) and float(explained["route_aim"]) > 0.95 * quality


def test_the_shadow_goes_to_the_reference_and_never_when_the_reference_was_chosen() -> None:
    router = Router(TIERS, floor=0.95, shadow_rate=1.0, reference="frontier")
    decisions = [router.decide(Task(f"t{i}")) for i in range(50)]
    for i in range(300):  # the frontier does everything right: at 95% of it, the router buys it
        router.learn(Task(f"t{i}"), "frontier", True)
    decisions += [router.decide(Task(f"t{i}")) for i in range(50)]
    assert {(d.tier, d.shadow) for d in decisions} == {("local", "frontier"), ("frontier", None)}


def test_the_reference_is_measured_on_all_the_work_not_only_where_it_was_chosen() -> None:
    """Chosen for a quarter of the decisions, where it got 2 of 4 right; shadowed on the rest 3 times, all right.
    With the one success assumed before any shadow: (3 + 1) / 4 = 1.0 for the rest, 0.25 x 0.5 + 0.75 x 1.0 over
    the work. Each part's variance: its squared deviations plus p(1 - p) once (p = (sum + 0.5) / (n + 1)), over n
    squared: for the chosen part (1 + 0.5 x 0.5) / 16, for the rest (0 + 0.875 x 0.125) / 9."""
    measured = ReferenceQuality()
    assert measured.estimate() == (1.0, 0.0)  # unmeasured: perfect, so the floor starts high
    for chosen in [True] * 4 + [False] * 12:
        measured.decide(reference=chosen)
    for outcome in (1.0, 0.0, 1.0, 0.0):
        measured.observe(outcome, shadow=False)
    for _ in range(3):
        measured.observe(1.0, shadow=True)
    quality, variance = measured.estimate()
    assert quality == pytest.approx(0.25 * 0.5 + 0.75 * 1.0)
    assert variance == pytest.approx(0.25**2 * (1 + 0.25) / 16 + 0.75**2 * (0.875 * 0.125) / 9)


def test_a_few_equal_outcomes_are_not_certainty() -> None:
    """Three failures where it was chosen: a mean of 0, with the spread of a share of 0.5 / 4 counted once."""
    measured = ReferenceQuality()
    for _ in range(3):
        measured.decide(reference=True)
        measured.observe(0.0, shadow=False)
    assert measured.estimate() == pytest.approx((0.0, 0.125 * 0.875 / 9))


def test_judge_scores_that_vary_little_give_a_surer_measure_than_successes_with_the_same_mean() -> None:
    scores, successes = ReferenceQuality(), ReferenceQuality()
    for i in range(200):
        scores.decide(reference=True)
        successes.decide(reference=True)
        scores.observe(0.85 + 0.1 * (i % 2), shadow=False)  # 0.85 and 0.95: a mean of 0.9
        successes.observe(float(i % 10 != 0), shadow=False)  # nine in ten: 0.9
    (mean_scores, sure), (mean_successes, unsure) = scores.estimate(), successes.estimate()
    assert mean_scores == pytest.approx(0.9) == mean_successes
    spread = 180.5 / 201 * (1 - 180.5 / 201)  # p(1 - p), counted once
    assert sure == pytest.approx((200 * 0.0025 + spread) / 200**2)
    assert unsure == pytest.approx((200 * 0.09 + spread) / 200**2)


@pytest.mark.parametrize(
    ("reference", "shadow_rate", "error"),
    [("gpt-5", 0.1, "not one of the tiers"), ("frontier", 0.0, "needs a shadow sample")],
)
def test_a_floors_reference_is_a_tier_and_needs_a_shadow_sample(reference: str, shadow_rate: float, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        Router(TIERS, reference=reference, shadow_rate=shadow_rate)


def test_the_measured_floor_is_a_share_of_the_quality_not_of_its_place_on_the_scale() -> None:
    """Judge scores of 1 to 10 read as 0 to 1 put a score of 0 at -1/9. A reference measured at 0.8 (a score of
    8.2): 95% of 8.2 is 7.79, which reads as 0.7544, not 95% of 0.8 (0.76)."""
    aims = []
    for zero in (-1 / 9, 0.0):
        router = Router(TIERS, floor=0.95, shadow_rate=0.1, reference="frontier", zero=zero)
        for i in range(10_000):
            router.learn(Task(f"t{i}"), "frontier", 0.8, shadow=True)
        aim = router.decide(Task("x")).aim
        assert aim is not None
        aims.append(aim)
    assert aims == [pytest.approx((0.95 * 8.2 - 1) / 9, abs=1e-3), pytest.approx(0.76, abs=1e-3)]


def test_a_floor_stated_on_a_middle_tier_never_buys_a_dearer_one() -> None:
    """95% of the mid tier's quality is never worth paying more than the mid tier for: a router that has learnt
    that the frontier gets everything right and the local tier nothing sends the work to the mid tier, not there."""
    tiers = [RouteTier("local", 0.01), RouteTier("mid", 0.1), RouteTier("frontier", 1.0)]
    router = Router(tiers, floor=0.95, shadow_rate=0.1, reference="mid")
    for i in range(200):
        router.learn(Task(f"task {i}"), "frontier", True)
        router.learn(Task(f"task {i}"), "local", False)
    decisions = [router.decide(Task(f"task {i}")) for i in range(200)]
    assert decisions[0].estimates["frontier"] > decisions[0].estimates["mid"] > decisions[0].estimates["local"]
    assert {d.tier for d in decisions} == {"mid"}
