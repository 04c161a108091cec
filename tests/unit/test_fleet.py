"""Invariant 8, the fleet is one client (SPEC §2.8): replicas that share an account's budget by
their partitions, each with its own gate and its own clock, never send more than N calls in any
W seconds together, whether there are more replicas than calls or not, also while partitions move
between them, without talking to each other. The replicas are simulated on one wall clock: each
sends as fast as its gate allows; their calls' arrival times at LeadSquared are merged, and every
window is checked, not the average rate."""

from __future__ import annotations

import bisect
import math
import random
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connector.flow.accounts import BULK, MAIN, Account
from connector.flow.fleet import reshare, share
from connector.flow.gates import TURN_GUARD_S, RateGate
from connector.settings.model import RetrySettings
from connector.transform.route import Route

if TYPE_CHECKING:
    from connector.records import Change, Payload, SourceRecord

MARGIN = 0.05
SKEW = 0.02  # how far a replica's clock may be off (NTP keeps it far closer)


@dataclass
class Replica:
    """One replica: its gate on its own monotonic clock (wall time minus ``offset``)."""

    gate: RateGate
    offset: float
    owned: set[int] = field(default_factory=set)
    in_flight: list[tuple[float, int]] = field(default_factory=list)  # (answer time, slot)


@dataclass
class Fleet:
    calls: int
    window: float
    partitions: int
    replicas: list[Replica]
    rng: random.Random
    arrivals: list[float] = field(default_factory=list)
    events: list[tuple[float, int, frozenset[int] | None, tuple[int, float] | None]] = field(
        default_factory=list
    )
    learned: dict[int, tuple[int, float] | None] = field(default_factory=dict)
    sent: dict[int, list[float]] = field(default_factory=dict)  # send times by replica

    def give(self, at: float, replica: int, owned: set[int]) -> None:
        """At wall time ``at``, ``replica`` computes its share for owning ``owned``."""
        self.events.append((at, replica, frozenset(owned), None))
        self.events.sort(key=lambda e: e[0])

    def teach(self, at: float, replica: int, rate: tuple[int, float] | None) -> None:
        """At wall time ``at``, ``replica`` learns that only ``rate`` may be used (``None``: the
        configured budget again) and computes its share anew."""
        self.events.append((at, replica, None, rate or (0, 0.0)))
        self.events.sort(key=lambda e: e[0])

    def run(self, seconds: float, concurrency: int = 4) -> None:
        """Every replica sends as fast as its gate allows, for ``seconds`` of wall time."""
        now = 0.0
        while now < seconds:
            while self.events and self.events[0][0] <= now:
                _, index, owned, rate = self.events.pop(0)
                replica = self.replicas[index]
                replica.owned = replica.owned if owned is None else set(owned)
                if rate is not None:
                    self.learned[index] = rate if rate[0] else None
                learned, turn = self.learned.get(index), replica.gate.turn
                budget = share(
                    self.calls, replica.owned, self.partitions, learned, window=5.0, turn=turn
                )
                skew = self.rng.uniform(-SKEW, SKEW)
                local, moved = now - replica.offset, owned is not None
                replica.gate.resize(budget, local, replica.offset + skew, moved=moved)
            for index, replica in enumerate(self.replicas):
                before = len(self.arrivals)
                self._serve(replica, now, concurrency)
                self.sent.setdefault(index, []).extend([now] * (len(self.arrivals) - before))
            now = max(self._next(now, concurrency), now + 1e-4)

    def _serve(self, replica: Replica, now: float, concurrency: int) -> None:
        local = now - replica.offset
        for answered, slot in [c for c in replica.in_flight if c[0] <= now]:
            replica.gate.release(local, slot)
            replica.in_flight.remove((answered, slot))
        while len(replica.in_flight) < concurrency and replica.gate.wait(local) == 0:
            slot = replica.gate.acquire(local)
            rtt = self.rng.uniform(0.01, 2.0)
            # LeadSquared counts a call before answering it, and within the guard of its sending
            self.arrivals.append(now + self.rng.uniform(0, min(rtt, TURN_GUARD_S - SKEW)))
            replica.in_flight.append((now + rtt, slot))

    def _next(self, now: float, concurrency: int) -> float:
        times = [e[0] for e in self.events[:1]]
        for replica in self.replicas:
            times += [answered for answered, _ in replica.in_flight]
            if len(replica.in_flight) >= concurrency:
                continue  # nothing goes before an answer
            wait = replica.gate.wait(now - replica.offset)
            if wait != math.inf:
                times.append(now + wait)
        return min(times, default=now + 1.0)

    def most_in_a_window(self, window: float | None = None, since: float = 0.0) -> int:
        """The most calls LeadSquared counted in any closed window of W seconds (or
        ``window``), among those counted from ``since`` on."""
        times = sorted(t for t in self.arrivals if t >= since)
        span = self.window if window is None else window
        return max(
            (bisect.bisect_right(times, t + span) - i for i, t in enumerate(times)),
            default=0,
        )


def fleet(calls: int, partitions: int, owners: list[int], seed: int, count: int = 0) -> Fleet:
    """``count`` replicas (at least as many as ``owners`` names) owning partitions as ``owners``
    says (partition → replica), starting at once."""
    rng = random.Random(seed)  # noqa: S311 - a reproducible simulation
    count = max(count, max(owners) + 1)
    replicas = [
        Replica(RateGate(0, 5.0, MARGIN, 0.0), rng.uniform(-1e4, 1e4)) for _ in range(count)
    ]
    run = Fleet(calls, 5.0, partitions, replicas, rng)
    for index in range(count):
        run.give(0.0, index, {p for p, owner in enumerate(owners) if owner == index})
    return run


def test_more_replicas_than_calls_stay_within_the_budget() -> None:
    """2 calls per 5 s, 12 partitions, 3 replicas of 4 partitions each: a share of two thirds of
    a call each. Each replica takes turns, and the three never send 3 calls in any 5 s."""
    run = fleet(2, 12, [p // 4 for p in range(12)], seed=1)
    run.run(600.0)
    assert run.most_in_a_window() <= 2
    turn = run.replicas[0].gate.turn
    assert len(run.arrivals) >= 0.9 * 2 * (600.0 - 2 * turn) / turn  # every turn is used


@settings(max_examples=60, deadline=None)
@given(
    calls=st.integers(1, 12),
    partitions=st.integers(1, 30),
    data=st.data(),
    seed=st.integers(0, 2**16),
)
def test_any_fleet_stays_within_the_budget_in_every_window(
    calls: int, partitions: int, data: st.DataObject, seed: int
) -> None:
    """Any number of calls, partitions and replicas (1 to 6, some with no partition), any
    assignment: together they never exceed N calls in any window, and with a backlog they use
    at least one call per seat per turn."""
    replicas = data.draw(st.integers(1, min(6, partitions)))
    owners = data.draw(
        st.lists(st.integers(0, replicas - 1), min_size=partitions, max_size=partitions)
    )
    run = fleet(calls, partitions, owners, seed)
    turn = run.replicas[0].gate.turn
    seconds = max(60.0, 2.5 * math.ceil(partitions / calls) * turn)
    run.run(seconds)
    assert run.most_in_a_window() <= calls
    assert len(run.arrivals) >= 0.8 * calls * (seconds - 3 * turn) / turn


@pytest.mark.parametrize("seed", range(12))
def test_partitions_moving_between_replicas_never_break_the_budget(seed: int) -> None:
    """Rebalances: at random moments, partitions move to other replicas. Each replica that loses
    some recomputes its share first (revoked), those that gain some a moment later (assigned),
    as a cooperative rebalance does; the fleet stays within the budget throughout."""
    rng = random.Random(seed)  # noqa: S311 - a reproducible simulation
    calls, partitions, count = rng.choice([(2, 12, 3), (5, 7, 4), (25, 6, 3), (3, 3, 3), (4, 9, 5)])
    owners = [rng.randrange(count) for _ in range(partitions)]
    run = fleet(calls, partitions, owners, seed, count)
    moments = [10.0 + sum(rng.uniform(5.0, 60.0) for _ in range(n)) for n in range(4)]
    for moment in moments:  # one rebalance after the other, as the group coordinator runs them
        new = [rng.randrange(count) for _ in range(partitions)]
        for index in range(count):
            before = {p for p, owner in enumerate(owners) if owner == index}
            after = {p for p, owner in enumerate(new) if owner == index}
            run.give(moment + rng.uniform(0.0, 0.5), index, before & after)  # revoked
            run.give(moment + rng.uniform(1.0, 4.0), index, after)  # assigned
        owners = new
    run.run(300.0)
    assert run.most_in_a_window() <= calls


def test_every_budget_of_an_account_gets_its_share_of_the_partitions() -> None:
    """A replica's share applies to each of the account's budgets alike (SPEC §2.8: for every
    budget): owning one of three partitions, it takes a third of the main seats and a turn on
    the single bulk seat, so the fleet keeps both."""
    retry = RetrySettings()
    gates = {MAIN: RateGate(0, 5.0), BULK: RateGate(0, 5.0)}
    account = Account("a", gates, 4, 5.0, retry, limits={MAIN: (25, 5.0), BULK: (1, 5.0)})
    the_route = Route("r", "a", "capture", "async", "skip", lambda raw: raw, _no_render)
    reshare(
        [account],
        {("t", 0)},
        partitions={"t": 3},
        route_of=lambda topic: the_route if topic == "t" else None,
        now=0.0,
        wall=1000.0,
    )
    later = 2 * gates[MAIN].turn  # a larger share takes effect a turn later
    for gate in gates.values():
        gate.free(later)
    assert gates[MAIN].share == share(25, {0}, 3)
    assert gates[BULK].share == share(1, {0}, 3)
    assert gates[BULK].share.calls == 0
    assert gates[BULK].share.turns  # a turn on the bulk seat shared by the three partitions


def _no_render(_change: Change, _record: SourceRecord) -> Payload:
    raise AssertionError("not rendered here")
