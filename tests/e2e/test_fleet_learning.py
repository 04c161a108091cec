"""The fleet is one client (SPEC §2.8) while it learns (§7), end to end: three ``lsq-sink run``
replicas in one group, configured for 10 calls per window, against one simulated account whose
real limit is 6 and whose throttle answers state no limit (the gateway's ``429 Too Many
Requests``). Each replica lowers its own budget (AIMD) on the throttle answers its own calls get
and recovers on its own, so the replicas hold different learned budgets at the same time (some on
the sliding-window log, some below one seat per partition, on thinned turns); a learned budget
only closes turns of the layout laid out over the configured budget, so whatever they learned,
the fleet never sends more than the configured 10 in any window. Every record still ends with
exactly one outcome, commits reach the end, and throttle answers stay rare."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest

from lsq_sim import AnswerClass, RateLimit, SimConfig, Simulator
from lsq_stack.reliability import wait_until
from lsq_stack.trials import Stack

if TYPE_CHECKING:
    from lsq_sim import AccountStats
    from lsq_stack.broker import Broker
    from lsq_stack.registry import SchemaRegistryServer

REPLICAS, PARTITIONS, RECORDS = 3, 6, 150
WINDOW_S = 1.0  # time-scaled: LeadSquared's window is 5 s
CONFIGURED, REAL = 10, 6

Position = tuple[int, int]  # (partition, offset) of a source record


@dataclass(frozen=True, slots=True)
class FleetRun:
    """What one fleet run left: the source records, their outcomes and the committed offsets
    (read from the topics), the replicas' state and budget events, the simulator's stats."""

    positions: frozenset[Position]
    outcomes: dict[Position, list[str]]
    committed: dict[int, int]
    ends: dict[int, int]  # the end offset of each partition
    alive: tuple[bool, ...]  # each replica still running once every record had its outcome
    exit_codes: tuple[int, ...]  # of the graceful stops
    logs: tuple[str, ...]  # the replicas' log files, for failure messages
    budgets: tuple[tuple[dict[str, Any], ...], ...]  # ``account.budget`` events, per replica
    lowered: tuple[tuple[dict[str, Any], ...], ...]  # ``account.limit_lowered``, per replica
    stats: AccountStats
    seconds: float  # from the replicas' start to the last outcome

    @property
    def throttled(self) -> int:
        return self.stats.answers.get(AnswerClass.THROTTLED, 0)


@pytest.fixture(scope="module")
def run(
    broker: Broker, registry: SchemaRegistryServer, tmp_path_factory: pytest.TempPathFactory
) -> FleetRun:
    """``RECORDS`` leads over ``PARTITIONS`` partitions through ``REPLICAS`` replicas started
    together, until every record has an outcome and every partition's commit reached its end;
    then every replica stops gracefully."""
    stack = Stack(broker, registry, tmp_path_factory.mktemp("fleet-learning"))
    budget = {"calls": CONFIGURED, "window_seconds": WINDOW_S}
    config = {"accounts": {"default": {"rate_limit": budget}}}
    limit = RateLimit(calls=REAL, window_s=WINDOW_S, style="gateway429")
    with (
        Simulator(SimConfig(rate_limit=limit)) as sim,
        stack.trial(sim, partitions=PARTITIONS, config=config) as trial,
    ):
        trial.produce(RECORDS)
        started = time.monotonic()
        sinks = [trial.start(f"replica-{i}") for i in range(REPLICAS)]
        trial.wait_done(sinks[0], 180)
        seconds = time.monotonic() - started
        ends = trial.ends()
        # results are written before the offsets they cover are committed: wait for the commits
        wait_until(lambda: trial.committed() == ends, 30, "commits to the end of every partition")
        alive = tuple(sink.running() for sink in sinks)
        codes = tuple(sink.stop() for sink in sinks)
        return FleetRun(
            positions=frozenset(trial.emails),
            outcomes=trial.outcomes(),
            committed=trial.committed(),
            ends=ends,
            alive=alive,
            exit_codes=codes,
            logs=tuple(str(sink.log_path) for sink in sinks),
            budgets=tuple(tuple(sink.events("account.budget")) for sink in sinks),
            lowered=tuple(tuple(sink.events("account.limit_lowered")) for sink in sinks),
            stats=sim.client.stats().accounts[sim.account().name],
            seconds=seconds,
        )


def test_every_record_has_exactly_one_outcome_and_commits_reach_the_end(run: FleetRun) -> None:
    """Nothing lost (SPEC §2.2), commit after result (§2.1), and throttled records are retried,
    never dead-lettered (§2.3): all of them are accepted, once each."""
    assert len(run.positions) == RECORDS
    assert set(run.outcomes) == run.positions
    assert {p: kinds for p, kinds in run.outcomes.items() if kinds != ["result"]} == {}
    assert run.committed == run.ends
    assert run.alive == (True,) * REPLICAS, run.logs
    assert run.exit_codes == (0,) * REPLICAS, run.logs


def test_the_fleet_never_exceeds_the_configured_limit(run: FleetRun) -> None:
    """The simulator's strict sliding window (closed windows, counted on receipt, throttled
    calls included) never held more than the configured budget, whatever budgets the replicas
    had learned (SPEC §2.8). Measured: 9 in every run, in the first second, when the replicas
    still hold their shares of the configured budget (4 + 3 + 3 calls) and the first throttle
    answers have yet to lower them (10 with six replicas of one partition each)."""
    assert run.stats.window_s == WINDOW_S
    assert run.stats.max_calls_in_window <= CONFIGURED, (run.stats, run.logs)


def test_the_replicas_shared_the_budget_and_lowered_it_on_plain_throttle_answers(
    run: FleetRun,
) -> None:
    """The run tested what it means to: each replica held a part of the partitions (so a share
    of the budget), the configured budget was over the real limit, and the limit, never stated,
    was found by lowering the budget."""
    for events, log in zip(run.budgets, run.logs, strict=True):
        main = [e for e in events if e.get("budget") == "main"]
        shared = [e for e in main if e["of_partitions"] == PARTITIONS]
        assert any(0 < e["partitions"] < PARTITIONS for e in shared), log
    assert run.throttled > 0, run.stats
    assert any(run.lowered), run.logs
    assert all(e["stated"] is None for events in run.lowered for e in events)


def test_throttle_answers_stay_a_small_share_of_calls(run: FleetRun) -> None:
    """Measured on 2 loaded cores, 6 runs: 5 to 9 throttle answers in 155 to 159 calls (3.2% to
    5.7%), in bursts of about 3 whenever the replicas' budgets have recovered to the configured
    10 (at the start, then about every 16 s). A fleet that kept sending at its configured
    budget, 10 calls against 6, would be throttled on about 40% of its calls."""
    assert run.throttled <= 0.15 * run.stats.calls, run.stats
