"""``make bench``'s completion-tracking figures (SPEC §11, §13), on the real processes (broker,
registry, ``lsq-sim``, ``lsq-sink run`` with ``status.enabled``), each measured in one run as a
ratio or a count. The simulator counts Status and Metrics API calls against the rate limit
(``limit_status_calls``) and applies accepted requests ``PROCESSING.delay_s`` after they came:

- live: a stream of new leads at 40% of the budget: Status API calls per record (the simulator's
  count ÷ records) and time to terminal status per source record (its follow-up's
  ``completed_at`` minus its ``submitted_at``), p50 and p99;
- backlog: a snapshot backlog that takes tens of seconds at the budget: the same figures, and the
  budget use of the delivery path (submit calls over the backlog's span, from two windows after
  the canary's calls, ÷ the calls the budget allows then) with tracking on and off, their ratio,
  the polls' share of the budget over that span, throttled answers and the most calls (polls
  included) in any window.

Windows are TIME-SCALED (x5) as in ``bench_budget``: LeadSquared's 5-second window runs as 1
second (25 calls per 1 s), and the status timings with it (first poll after 1 s, polls at most
4 s apart, given up after 120 s; the queue read every 12 s; the simulator's queue applies a
request 0.4 s after it came, standing for 2 s).

``python -m lsq_stack.bench_status [--only live|backlog]`` runs just these.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from connector.settings.status import StatusSettings
from lsq_sim import AnswerClass, Processing, RateLimit, SimConfig, SimProcess
from lsq_stack import benchkit
from lsq_stack.bench_bulk import (
    MAIN_CALLS,
    MARGIN_S,
    SCALE,
    WINDOW_S,
    produce,
    snapshot_leads,
    throttled_answers,
)
from lsq_stack.cdc import LEADS, Event, envelope, lead_row
from lsq_stack.demo import RESULTS
from lsq_stack.kafka import read_all

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from lsq_sim import AccountStats, LoggedRequest
    from lsq_stack.bench import Stack
    from lsq_stack.sink import SinkProcess

    Say = Callable[[str], None]

__all__ = ["backlog", "live", "main", "run_all"]

LIVE_RECORDS, LIVE_SHARE = 150, 0.4  # the stream: records, and its rate as a share of the budget
BACKLOG = 1000  # 40 s of calls at the budget
WARMUP_WINDOWS = 2  # budget use counts from two windows after the canary's calls
PROCESSING = Processing(delay_s=0.4, rate=2.0 * MAIN_CALLS / WINDOW_S)
STATUS: dict[str, Any] = {
    "enabled": True,
    "first_poll_seconds": 1.0,
    "max_poll_interval_seconds": 4.0,
    "give_up_seconds": 120.0,
    "canary": {"calls": 3},
    "queue": {"poll_seconds": 12.0},
}
MAX_SHARE = StatusSettings().max_share  # the default, which these runs keep
FOLLOW_UPS = ("record.succeeded", "record.failed", "record.unknown")
SAY_EVERY_S = 10.0  # progress while waiting


@dataclass(frozen=True, slots=True)
class _Run:
    """One connector run to the end: what the simulator saw and the follow-ups it wrote."""

    records: int  # measured (a warm-up's excluded)
    status_calls: int  # Status API calls the simulator answered for the measured records
    calls: tuple[LoggedRequest, ...]
    stats: AccountStats
    delays: list[float]  # seconds from submission to terminal status, sorted (tracking only)
    follow_ups: Counter[str]  # by status

    @property
    def submits(self) -> list[float]:
        """Times of the submit calls the simulator admitted, in order."""
        return sorted(
            c.time for c in self.calls if c.method == "POST" and c.answer != AnswerClass.THROTTLED
        )

    def tracking_figures(self) -> dict[str, Any]:
        return {
            "status_calls_per_record": round(self.status_calls / self.records, 3),
            "terminal_p50_s": round(benchkit.quantile(self.delays, 0.5), 2),
            "terminal_p99_s": round(benchkit.quantile(self.delays, 0.99), 2),
            "terminal_max_s": round(self.delays[-1], 2),
            "follow_ups": dict(self.follow_ups),
            "status_calls": self.status_calls,
            "metrics_calls": self.stats.metrics_calls,
            "throttled": throttled_answers(self.stats),
            "max_calls_in_any_window": self.stats.max_calls_in_window,
            "budget": MAIN_CALLS,
        }


def _run(
    stack: Stack,
    say: Say,
    events: Sequence[Event],
    *,
    tracking: bool,
    rate: float | None = None,
    warm: Sequence[Event] = (),
) -> _Run:
    """``events`` through a fresh simulator and connector until each record has its follow-up
    (with ``tracking``) or its results record: produced before the connector starts (a
    backlog), or at ``rate`` per second once it has its partitions and the ``warm`` records (the
    canary's calls, the schema fetch, the connections) are done; those are not measured."""
    limit = RateLimit(calls=MAIN_CALLS, window_s=WINDOW_S, limit_status_calls=True)
    with SimProcess(SimConfig(seed=31, rate_limit=limit, processing=PROCESSING)) as sim:
        suffix = stack.topics()
        if rate is None:
            produce(stack, events, suffix)
        config = stack.config(sim, suffix)
        budget = {"calls": MAIN_CALLS, "window_seconds": WINDOW_S, "margin_seconds": MARGIN_S}
        config["accounts"]["default"]["rate_limit"] = budget
        if tracking:
            config["status"] = STATUS
        done = FOLLOW_UPS if tracking else ("record.accepted",)
        account = sim.client.account().name
        sink = stack.start(config, suffix)
        try:
            if rate is not None:
                sink.wait_for(lambda: bool(sink.events("partitions.assigned")), 60, "assignment")
                produce(stack, warm, suffix)
                _wait(sink, say, done, len(warm), timeout=60.0)
            since, polled = time.time(), sim.client.stats().accounts[account].status_calls
            if rate is not None:
                produce(stack, events, suffix, rate=rate)
            _wait(sink, say, done, len(warm) + len(events), timeout=300.0)
        finally:
            sink.stop()
        stats = sim.client.stats().accounts[account]
        calls = sim.client.requests()
    results = read_all(stack.broker.bootstrap_servers, f"{RESULTS}.{suffix}", 30)
    follow = [
        value
        for value in map(benchkit.result_value, results)
        if value["completed_at"] is not None and value["submitted_at"].timestamp() >= since
    ]
    delays = sorted((r["completed_at"] - r["submitted_at"]).total_seconds() for r in follow)
    polls = stats.status_calls - polled
    return _Run(len(events), polls, calls, stats, delays, Counter(r["status"] for r in follow))


def _wait(sink: SinkProcess, say: Say, done: Sequence[str], total: int, timeout: float) -> None:
    """Until ``total`` log lines of the events ``done``, saying how many now and then."""
    deadline, said = time.monotonic() + timeout, time.monotonic()
    while (count := sum(1 for e in sink.events() if e["event"] in done)) < total:
        if not sink.running():
            raise RuntimeError(f"lsq-sink stopped:\n{sink.tail()}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{count} of {total} {'/'.join(done)} after {timeout:g} s")
        if time.monotonic() - said >= SAY_EVERY_S:
            said = time.monotonic()
            say(f"    {count} of {total} done")
        time.sleep(1.0)


def _new_leads(count: int, first: int = 100_000, seed: int = 32) -> list[Event]:
    """Creations (op ``c``) of leads ``first ..``: a live stream."""
    rng = random.Random(seed)
    keys = range(first, first + count)
    return [Event(LEADS, k, envelope("leads", "c", None, lead_row(k, rng), ts_ms=k)) for k in keys]


def live(stack: Stack, say: Say) -> dict[str, Any]:
    """A stream at :data:`LIVE_SHARE` of the budget, with tracking, once the canary's calls are
    done: polls per record and time to terminal status."""
    rate = LIVE_SHARE * MAIN_CALLS / WINDOW_S
    warm = _new_leads(STATUS["canary"]["calls"], first=90_000)
    run = _run(stack, say, _new_leads(LIVE_RECORDS), tracking=True, rate=rate, warm=warm)
    return {"records": LIVE_RECORDS, "records_per_s": rate} | run.tracking_figures()


def backlog(stack: Stack, say: Say) -> dict[str, Any]:
    """A snapshot backlog with tracking on and off: polls per record, time to terminal status,
    and the delivery path's budget use with and without the polls."""
    events = snapshot_leads(BACKLOG)
    say("    tracking on")
    on = _run(stack, say, events, tracking=True)
    say("    tracking off")
    off = _run(stack, say, events, tracking=False)
    use_on, use_off = _submit_use(on), _submit_use(off)
    return (
        {"records": BACKLOG}
        | on.tracking_figures()
        | {
            "budget_use_on": use_on.ratio,
            "budget_use_off": use_off.ratio,
            "budget_use_on_off_ratio": round(use_on.ratio / use_off.ratio, 4),
            "goals": {"budget_use_on": "≥ 0.9", "throttled": 0, "max_calls_in_any_window": "≤ 25"},
            "submits_in_span_on": f"{use_on.calls} of {use_on.allowed:.0f}",
            "submits_in_span_off": f"{use_off.calls} of {use_off.allowed:.0f}",
            "poll_share_in_span_on": _poll_use(on).ratio,
            "poll_share_limit": MAX_SHARE,
            "throttled_off": throttled_answers(off.stats),
            "max_calls_in_any_window_off": off.stats.max_calls_in_window,
        }
    )


def _span(run: _Run) -> tuple[float, float]:
    """The backlog's steady span: from two windows after the canary's calls to the last submit
    call (the same span with tracking off, where no canary waits)."""
    submits = run.submits
    return submits[STATUS["canary"]["calls"]] + WARMUP_WINDOWS * WINDOW_S, submits[-1]


def _submit_use(run: _Run) -> benchkit.Use:
    return benchkit.use(run.submits, *_span(run), MAIN_CALLS, WINDOW_S)


def _poll_use(run: _Run) -> benchkit.Use:
    """Status and Metrics API calls over the span ÷ the budget: the polls' share of it."""
    polls = [c.time for c in run.calls if c.method == "GET"]
    return benchkit.use(polls, *_span(run), MAIN_CALLS, WINDOW_S)


_LIVE = (
    f"completion tracking, live ({LIVE_RECORDS} new leads at {LIVE_SHARE:.0%} of the budget, "
    f"{MAIN_CALLS} calls per window, time-scaled x{SCALE}; status calls counted by the limit)"
)
_BACKLOG = (
    f"completion tracking, backlog ({BACKLOG:,} snapshot reads, {MAIN_CALLS} calls per window, "
    f"time-scaled x{SCALE}; tracking on vs off; polls at most {MAX_SHARE:.0%} while records wait)"
)
#: name → (heading, benchmark)
BENCHMARKS: dict[str, tuple[str, Callable[[Stack, Say], dict[str, Any]]]] = {
    "live": (_LIVE, live),
    "backlog": (_BACKLOG, backlog),
}


def run_all(stack: Stack, say: Say, only: Sequence[str] = tuple(BENCHMARKS)) -> dict[str, Any]:
    """Run the benchmarks named in ``only``, saying a heading and the figures of each."""
    return benchkit.run_all(stack, say, BENCHMARKS, only)


def main(argv: list[str] | None = None) -> int:
    """Start a broker and a registry, run the completion-tracking benchmarks, print the figures
    and one JSON line."""
    return benchkit.main("lsq_stack.bench_status", BENCHMARKS, argv)


if __name__ == "__main__":
    raise SystemExit(main())
