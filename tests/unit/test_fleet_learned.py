"""Invariants 3 and 8 when learned limits meet the fleet (SPEC §2.8): replicas learn budgets from
the throttle answers each happens to receive, so they hold different ones; the seats stay laid out
over the configured budget on every replica, and a learned budget only closes turns of that
layout, the same ones on every replica that learned it. Whatever mix of budgets a fleet holds,
it never sends more than the configured budget in any window; once every replica holds the same
learned budget, the fleet keeps that one; no partition is starved."""

from __future__ import annotations

import itertools
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connector.flow.fleet import share
from connector.flow.gates import TURN_GUARD_S, TURN_SEND_S
from connector.flow.schedule import thinned
from tests.unit.test_fleet import fleet

CONCURRENCY = 64  # calls out at once per replica: never what holds a window back here


def test_one_replica_learning_a_lower_budget_never_makes_the_fleet_send_more() -> None:
    """2 replicas, 51 partitions (the first 26 on one, the rest on the other), 25 calls per 5 s;
    one replica learns 17. Laid out anew over 17 seats, its turns overlapped the other's, and the
    fleet sent 41 in a 5-s window."""
    run = fleet(25, 51, [0 if p < 26 else 1 for p in range(51)], seed=3)
    run.teach(0.0, 0, (17, 5.0))
    run.run(300.0, concurrency=CONCURRENCY)
    assert run.most_in_a_window() <= 25
    assert run.sent[0]
    assert run.sent[1]


@pytest.mark.parametrize(("partitions", "learned"), [(51, 17), (6, 4), (40, 3), (30, 25), (3, 2)])
def test_a_fleet_that_learned_one_budget_keeps_it(partitions: int, learned: int) -> None:
    """Every replica holds the same learned budget: the fleet keeps it in every window, and every
    replica with partitions still sends."""
    owners = [p % 3 for p in range(partitions)]
    run = fleet(25, partitions, owners, seed=partitions)
    for index in range(3):
        run.teach(0.0, index, (learned, 5.0))
    run.run(400.0, concurrency=CONCURRENCY)
    assert run.most_in_a_window() <= learned
    assert all(run.sent.get(index) for index in set(owners))


def test_a_limit_below_one_call_per_window_is_kept_as_stated() -> None:
    """ "the limit of 5 in 60 second(s)": at most 5 calls in any 60 s, not one call per 5 s."""
    run = fleet(25, 4, [0, 1, 2, 0], seed=3)
    for index in range(3):
        run.teach(0.0, index, (5, 60.0))
    run.run(600.0, concurrency=CONCURRENCY)
    assert run.most_in_a_window(60.0) <= 5
    assert len(run.arrivals) >= 0.6 * 5 * 600 / 60  # most of the stated budget is used


@settings(max_examples=150, deadline=None)
@given(
    calls=st.integers(1, 25),
    partitions=st.integers(1, 40),
    data=st.data(),
    seed=st.integers(0, 2**16),
)
def test_any_mix_of_learned_budgets_stays_within_the_configured_one(
    calls: int, partitions: int, data: st.DataObject, seed: int
) -> None:
    """Random fleets, random learned budgets (some replicas none, some below one call per
    window), learned and forgotten at random moments, with rebalances between: the fleet never
    exceeds the configured budget in any window; and from the moment all replicas hold the same
    budget it keeps that one too."""
    replicas = data.draw(st.integers(1, min(5, partitions)))
    owners = data.draw(
        st.lists(st.integers(0, replicas - 1), min_size=partitions, max_size=partitions)
    )
    rates = st.one_of(
        st.none(),
        st.tuples(st.integers(1, calls), st.just(5.0)),
        st.tuples(st.integers(1, 12), st.sampled_from([10.0, 30.0, 60.0])),
    )
    run = fleet(calls, partitions, owners, seed, replicas)
    rng = random.Random(seed)  # noqa: S311 - a reproducible simulation
    for index in range(replicas):
        for _ in range(data.draw(st.integers(0, 3))):
            run.teach(rng.uniform(0.0, 150.0), index, data.draw(rates))
    moved = [rng.randrange(replicas) for _ in range(partitions)]
    moment = rng.uniform(20.0, 150.0)
    for index in range(replicas):
        before = {p for p, owner in enumerate(owners) if owner == index}
        after = {p for p, owner in enumerate(moved) if owner == index}
        run.give(moment, index, before & after)
        run.give(moment + rng.uniform(1.0, 4.0), index, after)
    common = data.draw(rates)
    for index in range(replicas):
        run.teach(200.0, index, common)
    run.run(360.0, concurrency=CONCURRENCY)
    assert run.most_in_a_window() <= calls
    settled = 200.0 + 2 * run.replicas[0].gate.turn
    agreed = (calls, 5.0) if common is None else common
    assert run.most_in_a_window(agreed[1], since=settled) <= agreed[0]


@settings(max_examples=200, deadline=None)
@given(
    seats=st.integers(1, 25),
    members=st.lists(st.integers(1, 4), min_size=1, max_size=2),
    calls=st.integers(1, 25),
    seconds=st.sampled_from([5.0, 10.0, 30.0, 60.0]),
)
def test_thinned_turns_open_each_partition_and_no_more_seats_than_the_rate(
    seats: int, members: list[int], calls: int, seconds: float
) -> None:
    """The schedule a learned rate closes turns by: in any window of the rate's length, at most
    its calls are open; every turn position of every seat comes open within the horizon."""
    turn = 5.05 + TURN_SEND_S + TURN_GUARD_S
    counts = [members[seat % len(members)] for seat in range(seats)]
    plan = thinned(seats, counts, (calls, seconds), window=5.0, turn=turn, counted_within=1.5)
    span = int(seconds // turn) + 2
    opens = [sum(plan.opens(seat, t) for seat in range(seats)) for t in range(400)]
    for start in range(len(opens)):
        window = range(start, start + span)
        counted = [t for t in window if t < len(opens) and (t - start) * turn - 1.5 <= seconds]
        assert sum(opens[t] for t in counted) <= calls
    horizon = max(counts) * plan.horizon
    for seat, count in enumerate(counts):
        for position in range(count):
            assert any(plan.opens(seat, t) and t % count == position for t in range(horizon + 1))


def test_a_learned_share_is_part_of_the_configured_one() -> None:
    """What a replica takes under any learned budget lies within its configured share: the same
    seats, the same partitions on them."""
    configured = share(25, {0, 2, 4}, 51)
    learned = share(25, {0, 2, 4}, 51, (17, 5.0))
    assert set(learned.turns) <= set(configured.turns) | {0, 2, 4}
    for seat, (count, mine) in learned.turns.items():
        assert count == len(range(seat, 51, 25))
        assert all(seat + position * 25 in {0, 2, 4} for position in mine)


def test_a_budget_recovering_step_by_step_is_never_held_back_for_long() -> None:
    """A replica lowered to 4 of 10 (thinned turns) recovers one call at a time, every 5 s: less
    than a turn, as in a time-scaled window. Each step takes effect at once when it keeps the
    kind of share, and a larger share keeps the time it was due, so the replica is held back at
    most once, for a turn, where turns give way to the log; it never waits for the steps to end.
    The fleet stays within the budget."""
    run = fleet(10, 6, [p % 2 for p in range(6)], seed=5)
    for step, calls in enumerate(range(4, 11)):
        run.teach(10.0 + 5.0 * step, 0, (calls, 5.0))
    run.run(60.0, concurrency=CONCURRENCY)
    assert run.most_in_a_window() <= 10
    times = [t for t in run.sent[0] if 10.0 <= t <= 45.0]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    turn = run.replicas[0].gate.turn
    assert max(gaps) < 2 * turn  # one turn lost at most, where turns give way to the log
    assert len(times) >= 15  # held back until the steps end, it sent none
