"""The rate gate: N calls in any W seconds per account, over an injected clock, never sleeping."""

from __future__ import annotations

import bisect
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connector.flow.gates import TURN_SEND_S, RateGate, Share


def test_full_budget_is_available_at_once() -> None:
    """A fresh gate admits exactly N calls immediately, then asks to wait."""
    gate = RateGate(calls=25, window=5.0, margin=0.0)
    for _ in range(25):
        assert gate.wait(0.0) == 0.0
        gate.acquire(0.0)
    assert gate.wait(0.0) == math.inf  # nothing answered yet: no slot will free by time alone


def test_slot_frees_window_plus_margin_after_the_answer() -> None:
    """A slot frees W + margin after its answer arrived, not after it was sent."""
    gate = RateGate(calls=2, window=5.0, margin=0.1)
    gate.acquire(0.0)
    gate.acquire(0.0)
    gate.release(0.3)
    gate.release(0.7)
    assert gate.wait(1.0) == pytest.approx(0.3 + 5.1 - 1.0)
    assert gate.wait(5.4) == 0.0
    gate.acquire(5.4)
    assert gate.wait(5.4) == pytest.approx(0.7 + 5.1 - 5.4)


def test_in_flight_calls_hold_their_slot_until_answered() -> None:
    """An unanswered call keeps its slot however long it takes."""
    gate = RateGate(calls=1, window=1.0, margin=0.0)
    gate.acquire(0.0)
    assert gate.wait(100.0) == math.inf
    gate.release(100.0)
    assert gate.wait(100.5) == pytest.approx(0.5)
    assert gate.free(101.0) == 1


def test_acquire_when_closed_is_a_programming_error() -> None:
    """acquire() refuses when wait() says the caller must wait."""
    gate = RateGate(calls=1, window=1.0)
    gate.acquire(0.0)
    with pytest.raises(RuntimeError, match="rate gate closed"):
        gate.acquire(0.0)


def test_release_without_acquire_is_a_programming_error() -> None:
    """release() needs a call in flight."""
    with pytest.raises(RuntimeError, match="without a matching acquire"):
        RateGate(calls=1, window=1.0).release(0.0)


def test_cool_down_closes_the_gate_for_the_whole_account() -> None:
    """After a throttle answer nothing is sent until the cool-down ends."""
    gate = RateGate(calls=25, window=5.0)
    gate.cool_down(10.0, 5.0)
    assert gate.wait(12.0) == pytest.approx(3.0)
    assert gate.wait(15.0) == 0.0
    gate.cool_down(15.0, 1.0)
    gate.cool_down(15.0, 0.5)  # a shorter cool-down never shortens a longer one
    assert gate.wait(15.0) == pytest.approx(1.0)


def test_a_smaller_budget_applies_at_once() -> None:
    """A smaller share closes the gate until enough slots age out; zero means send nothing."""
    gate = RateGate(calls=4, window=1.0, margin=0.0)
    for t in (0.0, 0.1, 0.2):
        gate.acquire(t)
        gate.release(t)
    gate.resize(Share(2), now=0.5)
    assert gate.free(0.5) == 0
    assert gate.wait(0.5) == pytest.approx(1.1 - 0.5)  # the 2nd oldest answer must age out
    gate.resize(Share(0), now=5.0)
    assert gate.wait(5.0) == math.inf
    assert gate.calls == 0


def test_a_larger_budget_applies_only_a_turn_later() -> None:
    """More calls (a replica took partitions over, or the process just started) are usable only
    one turn (more than a full window) later: the previous owner may still have calls in the
    window."""
    gate = RateGate(calls=0, window=5.0, margin=0.0)
    assert gate.turn > 5.0
    gate.resize(Share(25), now=10.0)
    assert gate.wait(10.0) == pytest.approx(gate.turn)
    assert gate.wait(10.0 + gate.turn - 0.1) == pytest.approx(0.1)
    assert gate.wait(10.0 + gate.turn) == 0.0
    assert gate.calls == 25


def test_a_changed_share_keeps_what_both_allow_until_the_new_one_applies() -> None:
    """Losing some turns and gaining others: the lost ones go at once, the gained ones come a
    turn later (another replica may be using them this turn)."""
    gate = RateGate(calls=1, window=5.0, margin=0.0)
    gate.resize(Share(1, {0: (4, frozenset({0, 1}))}), now=0.0)
    gate.free(gate.turn)
    gate.resize(Share(0, {0: (4, frozenset({1, 2}))}), now=100.0)
    assert gate.share == Share(0, {0: (4, frozenset({1}))})
    gate.free(100.0 + gate.turn)
    assert gate.share == Share(0, {0: (4, frozenset({1, 2}))})


def test_turns_open_one_call_each_at_the_start_of_the_replicas_turns() -> None:
    """A seat shared by 3 partitions, of which this replica owns the 2nd: one call in the first
    half second of every 3rd turn, placed on the wall clock."""
    gate = RateGate(calls=0, window=5.0, margin=0.0, wall_offset=1000.0)
    gate.resize(Share(0, {7: (3, frozenset({1}))}), now=0.0)
    gate.free(gate.turn)  # the new share applies a turn later
    turn = gate.turn
    first = next(k for k in range(200, 210) if k % 3 == 1) * turn - 1000.0  # monotonic time
    assert gate.wait(first - 0.25) == pytest.approx(0.25)
    assert gate.free(first) == 1
    assert gate.acquire(first + 0.1) == 7
    assert gate.free(first + 0.2) == 0  # one call a turn
    assert gate.wait(first + 0.2) == pytest.approx(3 * turn - 0.2)
    gate.release(first + 3.0, 7)
    assert gate.in_flight == 0
    assert gate.free(first + 3 * turn + TURN_SEND_S) == 0  # too late into the turn to start


@pytest.mark.parametrize(
    ("calls", "window", "margin"), [(-1, 5.0, 0.0), (1, 0.0, 0.0), (1, 1.0, -1)]
)
def test_invalid_limits_are_rejected(calls: int, window: float, margin: float) -> None:
    """Negative budgets, empty windows and negative margins are configuration errors."""
    with pytest.raises(ValueError, match="invalid rate limit"):
        RateGate(calls, window, margin)


def _max_in_window(times: list[float], window: float) -> int:
    times = sorted(times)
    return max((bisect.bisect_left(times, t + window) - i for i, t in enumerate(times)), default=0)


@settings(max_examples=300, deadline=None)
@given(
    calls=st.integers(min_value=1, max_value=6),
    latencies=st.lists(st.floats(min_value=0.0, max_value=3.0), min_size=1, max_size=60),
    arrival_points=st.lists(st.floats(min_value=0.0, max_value=1.0), min_size=60, max_size=60),
    concurrency=st.integers(min_value=1, max_value=8),
    pace=st.booleans(),
)
def test_no_window_ever_sees_more_than_n_arrivals(
    calls: int,
    latencies: list[float],
    arrival_points: list[float],
    concurrency: int,
    pace: bool,
) -> None:
    """Driving the gate as fast as it allows, with any latencies and any arrival moment between
    send and answer, no W-second window at the server holds more than N calls, paced or not."""
    window = 1.0
    gate = RateGate(calls, window, margin=0.0, pace=pace)
    now, arrivals = 0.0, []
    pending: list[tuple[float, float]] = []  # (answer time, arrival time)
    for i, latency in enumerate(latencies):
        while True:
            pending.sort()
            while pending and (pending[0][0] <= now or len(pending) >= concurrency):
                answered, _ = pending.pop(0)
                now = max(now, answered)
                gate.release(answered)
            wait = gate.wait(now)
            if wait == 0:
                break
            assert wait != math.inf or pending, "gate closed forever with nothing in flight"
            now = now + wait if wait != math.inf else pending[0][0]
        gate.acquire(now)
        arrival = now + latency * arrival_points[i]
        arrivals.append(arrival)
        pending.append((now + latency, arrival))
    assert _max_in_window(arrivals, window) <= calls


@pytest.mark.parametrize("pace", [False, True])
def test_steady_backlog_uses_nearly_the_whole_budget(pace: bool) -> None:
    """With 20 ms round trips, a backlog gets at least 99% of N calls per W over a long run,
    paced or not (the log binds, not the pacing bucket)."""
    gate = RateGate(calls=25, window=5.0, margin=0.01, pace=pace)
    now, sent, rtt = 0.0, 0, 0.02
    answers: list[float] = []
    while now < 600.0:
        while answers and answers[0] <= now:
            gate.release(answers.pop(0))
        wait = gate.wait(now)
        if wait == 0:
            gate.acquire(now)
            answers.append(now + rtt)
            sent += 1
            continue
        now = min(now + wait, answers[0]) if answers else now + wait
    assert sent / (25 * 600.0 / 5.0) >= 0.99


@settings(max_examples=200, deadline=None)
@given(
    handovers=st.lists(st.tuples(st.floats(0.1, 30.0), st.integers(0, 10)), min_size=1, max_size=6),
    rtt=st.floats(0.001, 0.5),
)
def test_two_replicas_sharing_a_budget_never_exceed_it_together(
    handovers: list[tuple[float, int]], rtt: float
) -> None:
    """Invariant 3 across a fleet: two replicas send as fast as their gates allow while the
    account's 10 calls per window move between them at random moments (rebalances); the calls
    of both never exceed 10 in any window."""
    window, total = 1.0, 10
    gates = [RateGate(total, window, margin=0.0), RateGate(0, window, margin=0.0)]
    changes = sorted(handovers)
    sent: list[float] = []
    answers: list[tuple[float, int]] = []
    now = 0.0
    while now < 40.0:
        while changes and changes[0][0] <= now:
            _, first = changes.pop(0)
            gates[0].resize(Share(first), now)  # shrinks apply at once, growth a turn later
            gates[1].resize(Share(total - first), now)
        for answered, which in [a for a in answers if a[0] <= now]:
            gates[which].release(answered)
            answers.remove((answered, which))
        progressed = False
        for which, gate in enumerate(gates):
            if gate.wait(now) == 0:
                gate.acquire(now)
                sent.append(now)
                answers.append((now + rtt, which))
                progressed = True
        if not progressed:
            nexts = [t for t, _ in answers] + [
                now + g.wait(now) for g in gates if g.wait(now) < 1e9
            ]
            nexts += [c[0] for c in changes]
            now = max(min(nexts, default=now + 0.1), now + 1e-6)
    assert _max_in_window(sent, window) <= total
