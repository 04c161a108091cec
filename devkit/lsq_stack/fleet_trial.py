"""Several `lsq-sink run` replicas in one consumer group against one simulator that enforces the
account's limit (SPEC §7): what the whole fleet sends once every replica has its share. Used by
the end-to-end test (small, fast budget) and by ``make bench`` (LeadSquared's 25 per 5 s)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from connector.flow.gates import TURN_GUARD_S, TURN_SEND_S
from lsq_sim import AnswerClass, RateLimit, SimConfig, Simulator
from lsq_stack.reliability import wait_until

if TYPE_CHECKING:
    from lsq_stack.reliability import Trial
    from lsq_stack.trials import Stack

__all__ = ["FleetReport", "fleet"]

WINDOW_S = 5.0
PER_REPLICA = 2  # partitions each replica owns once the group is steady


@dataclass(frozen=True, slots=True)
class FleetReport:
    """The fleet's calls over a steady period (every replica holding its share)."""

    replicas: int
    limit: int  # the account's calls per window
    seconds: float
    accepted: int  # calls LeadSquared accepted in the period
    throttled: int  # throttle answers over the whole run
    max_calls_in_window: int  # the most calls the simulator saw in any window, whole run
    shares: tuple[int, ...]  # each replica's calls per window (its seats)

    @property
    def budget_use(self) -> float:
        """Accepted calls ÷ the calls the limit allows in the period."""
        return self.accepted / (self.limit * self.seconds / WINDOW_S)


def fleet(
    stack: Stack, replicas: int = 3, limit: int = 25, records: int = 900, seconds: float = 120.0
) -> tuple[Trial, FleetReport]:
    """Start ``replicas`` processes on a backlog of ``records`` over two partitions per replica;
    once each holds two partitions, and a turn later (a larger share waits that long), count
    the calls accepted over ``seconds``; then let the backlog drain."""
    config = {"accounts": {"default": {"rate_limit": {"calls": limit, "window_seconds": WINDOW_S}}}}
    sim_config = SimConfig(rate_limit=RateLimit(calls=limit, window_s=WINDOW_S))
    with (
        Simulator(sim_config) as sim,
        stack.trial(sim, partitions=PER_REPLICA * replicas, config=config) as trial,
    ):
        trial.produce(records)
        sinks = [trial.start(f"replica-{i}") for i in range(replicas)]

        def share(sink_events: list[dict[str, Any]]) -> int | None:
            main = [event for event in sink_events if event.get("budget") == "main"]
            last = main[-1] if main else {}
            mine, of = last.get("partitions"), last.get("of_partitions")
            steady = (mine, of) == (PER_REPLICA, PER_REPLICA * replicas)
            return int(last["calls"]) if steady else None

        wait_until(
            lambda: all(share(s.events("account.budget")) is not None for s in sinks),
            180,
            "every replica holding two partitions",
        )
        shares = tuple(share(s.events("account.budget")) or 0 for s in sinks)
        start = time.time() + WINDOW_S + TURN_SEND_S + TURN_GUARD_S + 0.5  # a larger share: a turn
        time.sleep(max(0.0, start + seconds - time.time()))
        calls = sim.client.requests()
        if len(calls) >= len(trial.emails):
            raise AssertionError("the backlog ran out before the measurement ended")
        trial.wait_done(sinks[0], 600)
        for sink in sinks:
            if sink.stop() != 0:
                raise AssertionError(f"{sink.log_path.name} did not stop cleanly:\n{sink.tail()}")
        stats = sim.client.stats().accounts[sim.account().name]
        report = FleetReport(
            replicas=replicas,
            limit=limit,
            seconds=seconds,
            accepted=sum(
                1 for c in calls if c.answer == "accepted" and start <= c.time < start + seconds
            ),
            throttled=stats.answers.get(AnswerClass.THROTTLED, 0),
            max_calls_in_window=stats.max_calls_in_window,
            shares=shares,
        )
        return trial, report
