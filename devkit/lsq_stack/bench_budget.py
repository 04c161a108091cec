"""``make bench``'s budget figures (SPEC §7, §11), on the real processes (broker, registry,
``lsq-sim``, ``lsq-sink run``), each measured in one run as a ratio or a count:

- learned limits: a snapshot backlog through a connector configured for 25 calls per window
  against a simulated account limited to 10, whose throttle answers state the limit
  (``stated``) or do not (``plain``, the gateway's ``{"message": "Too Many Requests"}``): throttle
  answers in the run, and calls accepted per window after the first minute ÷ the real limit.

Windows are TIME-SCALED (x5) to keep the run short, in the simulator and in the connector alike:
LeadSquared's 5-second window runs as 1 second, so the 60-second run stands for 5 minutes.

- live latency under a backfill: produce → results record of live changes (new leads, op ``c``,
  4 per second) during a 10,000-record snapshot backlog (op ``r``) of the same topic, p50 and
  p99, and each ÷ the same without the backlog. ``flow.max_in_flight_records`` is raised above
  the backlog: Kafka hands a partition's records over in order, so a live change behind snapshot
  reads in its partition can go first only once the connector has read that far.

- a fleet under a daily quota: three replicas in one group, a shortened day, greedy pacing (each
  day's part at once: the hardest case), one replica stopped and started again while the backlog
  lasts: the most calls the simulator received in any rolling day ÷ the quota less its reserve,
  the most in any rate window ÷ the limit, and records lost or dead-lettered.

``python -m lsq_stack.bench_budget [--only learned|live|fleet_quota]`` runs just these.
"""

from __future__ import annotations

import bisect
import random
import time
from typing import TYPE_CHECKING, Any

from lsq_sim import AnswerClass, RateLimit, SimConfig, SimProcess, Simulator
from lsq_stack import benchkit
from lsq_stack.bench_bulk import (
    MAIN_CALLS,
    SCALE,
    produce,
    snapshot_leads,
    throttled_answers,
)
from lsq_stack.cdc import LEADS, Event, envelope, lead_row
from lsq_stack.demo import RESULTS
from lsq_stack.kafka import create_topics, read_all, unique_name
from lsq_stack.trials import Stack as TrialStack

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from lsq_stack.bench import Stack
    from lsq_stack.kafka import Received

    Say = Callable[[str], None]

__all__ = ["learned", "main", "run_all"]

WINDOW_S, MARGIN_S = 1.0, 0.01
CONFIGURED, REAL = 25, 10
RUN_S, SETTLE_S = 60.0, 12.0  # a 5-minute run, time-scaled; use is measured after the first minute
QUOTA, RESERVE, DAY_S, QUOTA_RECORDS = 300, 0.2, 30.0, 600  # 2.5 of the shortened days
BACKLOG, LIVE, WARM = 10_000, 100, 5  # WARM: records drained before the live changes alone


def _learned_run(stack: Stack, say: Say, style: str) -> dict[str, Any]:
    """One run of the learned-limit benchmark against throttle answers in ``style``."""
    limit = RateLimit(calls=REAL, window_s=WINDOW_S, style=style)
    with SimProcess(SimConfig(seed=21, rate_limit=limit)) as sim:
        suffix = stack.topics()
        produce(stack, snapshot_leads(int(REAL * RUN_S * 1.5)), suffix)
        config = stack.config(sim, suffix)
        budget = {"calls": CONFIGURED, "window_seconds": WINDOW_S, "margin_seconds": MARGIN_S}
        config["accounts"]["default"]["rate_limit"] = budget
        sink = stack.start(config, suffix)
        try:
            calls = sim.client.requests()
            while not calls or calls[-1].time - calls[0].time < RUN_S:
                if not sink.running():
                    raise RuntimeError(f"lsq-sink stopped:\n{sink.tail()}")
                time.sleep(5)
                calls = sim.client.requests()
                say(f"    {style}: {len(calls)} calls so far")
        finally:
            sink.stop()
        stats = sim.client.stats().accounts[sim.client.account().name]
    start = calls[0].time
    run = [c for c in calls if c.time < start + RUN_S]
    after = [c for c in run if c.time >= start + SETTLE_S and c.answer != AnswerClass.THROTTLED]
    throttled = sum(1 for c in run if c.answer == AnswerClass.THROTTLED)
    return {
        "calls": len(run),
        "throttled": throttled,
        "throttled_share": round(throttled / len(run), 4),
        "use_after_first_minute": round(len(after) / (REAL * (RUN_S - SETTLE_S) / WINDOW_S), 4),
        "max_calls_in_any_window": stats.max_calls_in_window,
        "throttled_in_all": throttled_answers(stats),
    }


def _live_run(stack: Stack, say: Say, *, backlog: int) -> list[float]:
    """Produce → results record (seconds) of :data:`LIVE` live changes, 4 per second, produced
    once a ``backlog`` of snapshot reads (if any) is being drained."""
    with SimProcess(SimConfig(seed=23, rate_limit=RateLimit(window_s=WINDOW_S))) as sim:
        suffix = stack.topics()
        produce(stack, snapshot_leads(backlog), suffix)
        config = stack.config(sim, suffix)
        budget = {"window_seconds": WINDOW_S, "margin_seconds": MARGIN_S}
        config["accounts"]["default"]["rate_limit"] = budget
        config["flow"] = {"max_in_flight_records": backlog + 2 * LIVE}
        sink = stack.start(config, suffix)
        try:
            warm = min(backlog, 200)  # the warm-up, or a backlog being drained
            sink.wait_for(lambda: len(sink.events("record.accepted")) >= warm, 120, "draining")
            rng = random.Random(24)
            keys = range(100_000, 100_000 + LIVE)
            changes = [envelope("leads", "c", None, lead_row(k, rng), ts_ms=k) for k in keys]
            events = [Event(LEADS, key, change) for key, change in zip(keys, changes, strict=True)]
            positions = produce(stack, events, suffix, rate=4.0)
            live = {(f"{LEADS}.{suffix}", partition, offset) for partition, offset in positions}
            say(f"    backlog {backlog}: {LIVE} live changes produced")

            def pending() -> set[tuple[str, int, int]]:
                done = sink.events("record.accepted")
                return live - {(e["topic"], e["partition"], e["offset"]) for e in done}

            sink.wait_for(lambda: not pending(), 120, "the live changes' results")
        finally:
            sink.stop()
        results = read_all(stack.broker.bootstrap_servers, f"{RESULTS}.{suffix}", 30)
    done = [r for r in results if _source(r) in live]
    return sorted(r.timestamp_ms / 1000 - _source_time(r) for r in done)


def _source(record: Received) -> tuple[str, int, int]:
    value = benchkit.result_value(record)
    return value["source_topic"], value["source_partition"], value["source_offset"]


def _source_time(record: Received) -> float:
    return float(benchkit.result_value(record)["source_timestamp"].timestamp())


def live(stack: Stack, say: Say) -> dict[str, Any]:
    """Live changes' latency during a snapshot backlog ÷ without one."""
    alone, behind = _live_run(stack, say, backlog=WARM), _live_run(stack, say, backlog=BACKLOG)
    quantile = benchkit.quantile
    figures: dict[str, Any] = {}
    for name, q in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99)):
        figures[f"{name}_ms_alone"] = round(quantile(alone, q) * 1000)
        figures[f"{name}_ms_during_backlog"] = round(quantile(behind, q) * 1000)
        figures[f"{name}_ratio"] = round(quantile(behind, q) / quantile(alone, q), 2)
    return figures | {"samples": len(behind), "backlog": BACKLOG}


def fleet_quota(stack: Stack, say: Say) -> dict[str, Any]:
    """Three replicas against one simulator, one account with a daily quota (see the module)."""
    quota_topic = f"lsq.quota.{unique_name('bench')}"
    create_topics(stack.broker.bootstrap_servers, {quota_topic: 3})
    account = {
        "rate_limit": {"calls": MAIN_CALLS, "window_seconds": WINDOW_S, "margin_seconds": MARGIN_S},
        "daily_quota": QUOTA,
        "quota_reserve": RESERVE,
        "quota_day_seconds": DAY_S,
        "quota_pacing": "greedy",
    }
    config = {"accounts": {"default": account}, "output": {"quota_topic": quota_topic}}
    trials = TrialStack(stack.broker, stack.registry, stack.workdir)
    sim_config = SimConfig(seed=25, rate_limit=RateLimit(calls=MAIN_CALLS, window_s=WINDOW_S))
    with Simulator(sim_config) as sim, trials.trial(sim, partitions=6, config=config) as trial:
        trial.produce(QUOTA_RECORDS)
        sinks = [trial.start(f"replica-{i}") for i in range(3)]
        time.sleep(DAY_S * 1.5)  # into the second day
        say("    a replica stops and starts again")
        if sinks[0].stop() != 0:
            raise RuntimeError(f"replica-0 did not stop cleanly:\n{sinks[0].tail()}")
        sinks[0] = trial.start("replica-0-again")
        trial.wait_done(sinks[1], 600)
        report = trial.report("fleet_quota", restarts=1)
        stats = sim.client.stats().accounts[sim.client.account().name]
        calls = sorted(c.time for c in sim.client.requests())
    allowed = int(QUOTA * (1 - RESERVE))
    day = [bisect.bisect_right(calls, t + DAY_S) - i for i, t in enumerate(calls)]
    return {
        "records": report.records,
        "lost": report.lost,
        "dead_lettered": report.dead_lettered,
        "calls": len(calls),
        "allowed_per_day": allowed,
        "max_calls_in_any_day": max(day),
        "day_use": round(max(day) / allowed, 4),
        "max_calls_in_any_window": stats.max_calls_in_window,
        "throttled": throttled_answers(stats),
    }


def learned(stack: Stack, say: Say) -> dict[str, Any]:
    """Configured 25 per window against an account limited to 10: with the limit stated in the
    throttle answers, and without it."""
    return {
        "stated": _learned_run(stack, say, "http429"),
        "plain": _learned_run(stack, say, "gateway429"),
    }


_LEARNED = (
    f"learned limits (configured {CONFIGURED} against a real {REAL} per window, "
    f"time-scaled x{SCALE}: {RUN_S:.0f} s stand for {RUN_S * SCALE / 60:.0f} minutes)"
)
_LIVE = (
    f"live changes during a {BACKLOG:,}-record snapshot backlog (25 calls per window, "
    f"time-scaled x{SCALE}; p50/p99 produce → result, ÷ without the backlog)"
)
_FLEET_QUOTA = (
    f"fleet under a daily quota (3 replicas, {QUOTA} calls less {RESERVE:.0%} a {DAY_S:.0f}-s "
    f"day, greedy, a replica restarted in the second day, {MAIN_CALLS} calls per window)"
)
#: name → (heading, benchmark)
BENCHMARKS: dict[str, tuple[str, Callable[[Stack, Say], dict[str, Any]]]] = {
    "learned": (_LEARNED, learned),
    "live": (_LIVE, live),
    "fleet_quota": (_FLEET_QUOTA, fleet_quota),
}


def run_all(stack: Stack, say: Say, only: Sequence[str] = tuple(BENCHMARKS)) -> dict[str, Any]:
    """Run the benchmarks named in ``only``, saying a heading and the figures of each."""
    return benchkit.run_all(stack, say, BENCHMARKS, only)


def main(argv: list[str] | None = None) -> int:
    """Start a broker and a registry, run the budget benchmarks, print the figures and one JSON
    line."""
    return benchkit.main("lsq_stack.bench_budget", BENCHMARKS, argv)


if __name__ == "__main__":
    raise SystemExit(main())
