"""Fault matching (rules, probabilities, times, rates, latency) and outage windows."""

from __future__ import annotations

from random import Random

from lsq_sim.config import FaultRule, Faults
from lsq_sim.faults import NO_FAULT, FaultPlan, FaultState, Outages, outage_plan


def _rng(seed: int = 7) -> Random:
    return Random(seed)  # noqa: S311 - seeded simulation randomness


def test_no_faults_means_no_fault() -> None:
    """Default settings leave every call alone."""
    assert FaultState(Faults()).plan("/lead/capture", "[]", _rng()) is NO_FAULT


def test_respond_rule_matches_path_prefix_and_body() -> None:
    """A respond rule applies when both the path prefix and the body substring match."""
    rule = FaultRule(path_prefix="/lead/", body_contains="boom", status=500, body={"x": 1})
    state = FaultState(Faults(rules=(rule,)))
    assert state.plan("/lead/capture", '["boom"]', _rng()) == FaultPlan(respond=(500, {"x": 1}))
    assert state.plan("/activity/create", '["boom"]', _rng()) is NO_FAULT
    assert state.plan("/lead/capture", '["calm"]', _rng()) is NO_FAULT


def test_respond_rule_without_body_answers_the_gateway_message() -> None:
    """No body given: {"message": <reason phrase>}."""
    state = FaultState(Faults(rules=(FaultRule(status=502),)))
    assert state.plan("/x", "", _rng()).respond == (502, {"message": "Bad Gateway"})


def test_first_matching_rule_wins() -> None:
    """Rules apply in order; only one applies per call."""
    rules = (FaultRule(path_prefix="/lead", status=500), FaultRule(status=502))
    state = FaultState(Faults(rules=rules))
    assert state.plan("/lead/update", "", _rng()).respond == (
        500,
        {"message": "Internal Server Error"},
    )
    assert state.plan("/activity/create", "", _rng()).respond == (502, {"message": "Bad Gateway"})


def test_times_limits_how_often_a_rule_applies() -> None:
    """times=2: the third matching call passes; current() shows what is left."""
    state = FaultState(Faults(rules=(FaultRule(action="drop", times=2),)))
    plans = [state.plan("/x", "", _rng()).drop for _ in range(3)]
    assert plans == [True, True, False]
    assert state.current().rules[0].times == 0


def test_probability_is_drawn_from_the_seeded_random() -> None:
    """probability=0.3 applies to roughly 30% of calls, the same ones for the same seed."""
    state = FaultState(Faults(rules=(FaultRule(probability=0.3),)))
    rng = _rng(1)
    hits = [state.plan("/x", "", rng).respond is not None for _ in range(1000)]
    again = FaultState(Faults(rules=(FaultRule(probability=0.3),)))
    rng_again = _rng(1)
    assert hits == [again.plan("/x", "", rng_again).respond is not None for _ in range(1000)]
    assert 250 < sum(hits) < 350


def test_delay_rule_delays_then_lets_the_call_through() -> None:
    """A delay rule adds its delay to the configured latency and nothing else."""
    state = FaultState(Faults(rules=(FaultRule(action="delay", delay_s=0.25),), latency_ms=100))
    assert state.plan("/x", "", _rng()) == FaultPlan(delay_s=0.35)


def test_latency_jitter_stays_within_bounds() -> None:
    """latency 50 ms + jitter up to 20 ms."""
    state = FaultState(Faults(latency_ms=50, latency_jitter_ms=20))
    delays = [state.plan("/x", "", _rng()).delay_s for _ in range(50)]
    assert all(0.05 <= d <= 0.07 for d in delays)


def test_error_rate_answers_503() -> None:
    """error_rate=1: every call gets 503 Service Unavailable."""
    state = FaultState(Faults(error_rate=1.0))
    assert state.plan("/x", "", _rng()).respond == (503, {"message": "Service Unavailable"})


def test_drop_rate_drops() -> None:
    """drop_rate=1: every call is dropped."""
    assert FaultState(Faults(drop_rate=1.0)).plan("/x", "", _rng()).drop is True


def test_replace_restarts_rule_counters() -> None:
    """New settings replace the old ones entirely."""
    state = FaultState(Faults(rules=(FaultRule(times=1),)))
    state.plan("/x", "", _rng())
    state.replace(Faults(rules=(FaultRule(times=1, status=500),)))
    assert state.plan("/x", "", _rng()).respond == (500, {"message": "Internal Server Error"})


def test_outage_is_active_only_inside_its_window() -> None:
    """An outage from 10 for 5 s is active on [10, 15) and then forgotten."""
    outages = Outages()
    outages.add(10.0, 5.0, "refuse")
    assert [outages.active(t) for t in (9.9, 10.0, 14.9, 15.0)] == [None, "refuse", "refuse", None]
    assert outages.windows() == ()


def test_outage_modes_answer_503_or_drop() -> None:
    """http503 answers 503; drop and refuse close the connection."""
    assert outage_plan("http503").respond == (503, {"message": "Service Unavailable"})
    assert outage_plan("drop").drop is True
    assert outage_plan("refuse").drop is True
