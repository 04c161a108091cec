"""``make bench``'s bulk figures (SPEC §12), on the real processes (broker, registry, ``lsq-sim``,
``lsq-sink run``), each measured in one run as a ratio or a count:

- backfill: records/s of a snapshot backfill of 5,000 leads (the demo's ``leads`` capture route)
  and 20,000 activities of those leads (its ``activities`` lead_and_activity route), in single
  calls and with ``bulk`` at 1 and at 5 bulk calls per window, and each ÷ the single-call figure;
- update-heavy: API calls per record of a stream of lead updates on hot keys at twice the budget,
  a third touching no mapped column, with the whole ``before`` row (REPLICA IDENTITY FULL) and
  without it (coalescing and no-op skips at their defaults); then the same records as a backlog
  (while the stream lasts, the budget itself caps calls per record near budget ÷ rate = 0.5).

Budgets are TIME-SCALED (x5) to keep the run short, in the simulator and in the connector alike:
the main budget is 25 calls per 1 s (LeadSquared: per 5 s), the bulk one 1 or 5 calls per 1 s,
with ``margin_seconds: 0.01`` on both in every run, single and bulk, so the ratios are fair.
They do not depend on the scale; records/s at LeadSquared's real limits are ÷ 5.

``python -m lsq_stack.bench_bulk [--only backfill|update_heavy]`` runs just these.
"""

from __future__ import annotations

import random
import statistics
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from lsq_sim import AnswerClass, RateLimit, SimConfig, SimProcess
from lsq_stack import benchkit
from lsq_stack.cdc import (
    ACTIVITIES,
    LEADS,
    CdcWriter,
    Event,
    activity_row,
    envelope,
    lead_row,
)
from lsq_stack.sink import SinkProcess

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence

    from lsq_sim import AccountStats, LoggedRequest
    from lsq_stack.bench import Stack

    Say = Callable[[str], None]

__all__ = ["backfill", "main", "update_heavy"]

SCALE = 5  # LeadSquared's 5-second windows run as 1-second ones
MAIN_CALLS, WINDOW_S, MARGIN_S = 25, 1.0, 0.01
LEAD_COUNT, ACTIVITY_COUNT = 5_000, 20_000
WARMUP_S, MEASURE_S = 3.0, 20.0
#: backfill configurations: bulk calls per window (None: no ``bulk`` key, single calls only)
CONFIGURATIONS: dict[str, int | None] = {"single": None, "bulk1": 1, "bulk5": 5}
BULK_PATHS = (
    "/v2/LeadManagement.svc/Lead/Bulk/CreateOrUpdate",
    "/v2/ProspectActivity.svc/Bulk/CustomActivity/Add/ByLeadField",
)
UPDATE_KEYS, UPDATES, STREAM_RATE = 200, 3_000, 50.0  # STREAM_RATE: records/s, 2x the budget
HOT_KEYS, HOT_UPDATES = 0.2, 0.8  # 80% of the updates on 20% of the keys


# -- the stack: fresh topics, simulator and connector configuration per run ---------------------


def _simulator(bulk_calls: int, seed: int) -> SimProcess:
    """A simulator with the time-scaled budgets: 25 calls / 1 s, ``bulk_calls`` bulk / 1 s."""
    return SimProcess(
        SimConfig(
            seed=seed,
            rate_limit=RateLimit(calls=MAIN_CALLS, window_s=WINDOW_S),
            bulk_rate_limit=RateLimit(calls=bulk_calls, window_s=WINDOW_S),
        )
    )


def _config(stack: Stack, sim: SimProcess, suffix: str, bulk_calls: int | None) -> dict[str, Any]:
    """The demo's routes on the ``suffix`` topics, under the time-scaled budgets; ``bulk`` on
    both routes (at ``bulk_calls`` per window) unless ``bulk_calls`` is None."""
    config = stack.config(sim, suffix)
    budget = {"window_seconds": WINDOW_S, "margin_seconds": MARGIN_S}
    config["accounts"]["default"] |= {
        "rate_limit": {"calls": MAIN_CALLS, **budget},
        "bulk_rate_limit": {"calls": bulk_calls or 1, **budget},
    }
    if bulk_calls is not None:
        for route in config["routes"]:
            route["bulk"] = True
    return config


def produce(
    stack: Stack, events: Iterable[Event], suffix: str, rate: float | None = None
) -> list[tuple[int, int]]:
    """Produce ``events`` to their topics' ``suffix`` copies: all at once, or ``rate`` per second
    (in ticks of 0.1 s, on a fixed schedule). Returns the (partition, offset) of each."""
    with CdcWriter(stack.broker.bootstrap_servers, stack.registry.url) as writer:
        started = time.monotonic()
        for n, event in enumerate(events, start=1):
            writer.send(event, f"{event.topic}.{suffix}")
            if rate is not None and n % max(1, round(rate / 10)) == 0:
                writer.flush()
                time.sleep(max(0.0, started + n / rate - time.monotonic()))
        writer.flush()
    return [writer.positions[i] for i in range(len(writer.positions))]


def _epoch(timestamp: str) -> float:
    return datetime.fromisoformat(timestamp).timestamp()


def throttled_answers(stats: AccountStats) -> int:
    return stats.answers.get(AnswerClass.THROTTLED, 0)


# -- backfill -----------------------------------------------------------------------------------


def snapshot_leads(count: int, seed: int = 11) -> list[Event]:
    """Snapshot reads (op ``r``) of leads ``0 .. count-1``."""
    rng = random.Random(seed)
    return [
        Event(LEADS, i, envelope("leads", "r", None, lead_row(i, rng), ts_ms=i, lsn=i))
        for i in range(count)
    ]


def snapshot_activities(count: int, leads: int, seed: int = 12) -> list[Event]:
    """Snapshot reads of ``count`` activities, spread over leads ``0 .. leads-1``."""
    rng = random.Random(seed)
    return [
        Event(
            ACTIVITIES,
            i,
            envelope("activities", "r", None, activity_row(i, i % leads, rng), ts_ms=i, lsn=i),
        )
        for i in range(count)
    ]


def existing_leads(count: int) -> list[dict[str, str]]:
    """The leads the activities are about, as the simulator's store is seeded with them (their
    EmailAddress as ``activity_row`` names it)."""
    return [
        {"EmailAddress": f"lead{i}@example.com", "FirstName": f"Lead {i}"} for i in range(count)
    ]


@dataclass(frozen=True, slots=True)
class RouteRun:
    """One route's backlog under one configuration: steady-state records/s and the budgets."""

    records_per_s: float
    throttled: int
    max_calls_in_window: int
    max_bulk_calls_in_window: int
    main_calls_per_s: float  # calls on the main budget in the measurement window
    bulk_calls_per_s: float
    rows_per_bulk_call: float | None  # over the whole run


def _steady_rate(sink: SinkProcess, total: int) -> tuple[float, float]:
    """Wait for the first ``record.accepted``, then for the warm-up and the measurement window to
    pass; (records/s in the window, its start as an epoch time). Timestamps are the log's."""
    sink.wait_for(lambda: bool(sink.events("record.accepted")), 120, "the first result", 0.5)
    first = _epoch(sink.events("record.accepted")[0]["timestamp"])
    start, end = first + WARMUP_S, first + WARMUP_S + MEASURE_S
    time.sleep(max(0.0, end + 1.5 - time.time()))  # +1.5 s: the log lines of the window's end
    times = [_epoch(e["timestamp"]) for e in sink.events("record.accepted")]
    if len(times) >= total and max(times) < end:
        raise RuntimeError(f"the backlog of {total} ran out before the measurement window ended")
    return _rate(times, start), start


def _rate(times: Iterable[float], start: float) -> float:
    """Events/s in the measurement window from ``start``: the least-squares slope of their
    cumulative count over time. A budget admits its calls in bursts (a window's worth at once),
    so a plain count ÷ window is off by up to a burst depending on where the window's edges fall
    in the bursts' cycle; the slope of the staircase is not."""
    inside = sorted(t for t in times if start <= t < start + MEASURE_S)
    try:
        return statistics.linear_regression(inside, range(1, len(inside) + 1)).slope
    except statistics.StatisticsError:  # fewer than two distinct times: no slope
        return len(inside) / MEASURE_S


def _budget_use(calls: Sequence[LoggedRequest], start: float) -> tuple[float, float, float | None]:
    """(main calls/s and bulk calls/s in the window from ``start``, rows per bulk call)."""
    bulk = [c for c in calls if c.path in BULK_PATHS]
    rows = [_rows(call) for call in bulk]
    return (
        _rate((c.time for c in calls if c.path not in BULK_PATHS), start),
        _rate((c.time for c in bulk), start),
        round(statistics.mean(rows), 2) if rows else None,
    )


def _rows(call: LoggedRequest) -> int:
    """The rows of a bulk call (0 if its body is not a list)."""
    body = call.json_body()
    return len(body) if isinstance(body, list) else 0


def route_run(
    stack: Stack, bulk_calls: int | None, events: Sequence[Event], seed_leads: int = 0
) -> RouteRun:
    """A backlog of ``events`` (one route's), produced before the connector starts, on a fresh
    simulator whose store holds ``seed_leads`` leads already; its steady-state figures."""
    with _simulator(bulk_calls or 1, seed=20) as sim:
        suffix = stack.topics()
        produce(stack, events, suffix)
        if seed_leads:
            sim.client.add_leads(sim.client.account().name, existing_leads(seed_leads))
        with SinkProcess(_config(stack, sim, suffix, bulk_calls), stack.workdir / suffix) as sink:
            rate, start = _steady_rate(sink, len(events))
        stats = sim.client.stats().accounts[sim.client.account().name]
        main_rate, bulk_rate, rows = _budget_use(sim.client.requests(), start)
    return RouteRun(
        records_per_s=rate,
        throttled=throttled_answers(stats),
        max_calls_in_window=stats.max_calls_in_window,
        max_bulk_calls_in_window=stats.max_bulk_calls_in_window,
        main_calls_per_s=main_rate,
        bulk_calls_per_s=bulk_rate,
        rows_per_bulk_call=rows,
    )


def _combined(leads: RouteRun, activities: RouteRun) -> float:
    """Records/s of the whole backfill: the leads first, then the activities, each at its rate."""
    seconds = LEAD_COUNT / leads.records_per_s + ACTIVITY_COUNT / activities.records_per_s
    return (LEAD_COUNT + ACTIVITY_COUNT) / seconds


def _configuration_figures(
    bulk_calls: int | None, leads: RouteRun, activities: RouteRun, single_rps: float | None
) -> dict[str, Any]:
    backfill_rps = _combined(leads, activities)
    runs = {"leads": leads, "activities": activities}
    return {
        "leads_rps": round(leads.records_per_s, 1),
        "activities_rps": round(activities.records_per_s, 1),
        "backfill_rps": round(backfill_rps, 1),
        "ratio_to_single": round(backfill_rps / (single_rps or backfill_rps), 2),
        "throttled": leads.throttled + activities.throttled,
        "max_calls_in_window": max(r.max_calls_in_window for r in runs.values()),
        "max_bulk_calls_in_window": max(r.max_bulk_calls_in_window for r in runs.values()),
        "bulk_limit": bulk_calls,
        "calls_per_s": {
            name: {"main": round(r.main_calls_per_s, 2), "bulk": round(r.bulk_calls_per_s, 2)}
            for name, r in runs.items()
        },
        "rows_per_bulk_call": {name: r.rows_per_bulk_call for name, r in runs.items()},
    }


def backfill(stack: Stack, say: Say) -> dict[str, Any]:
    """Steady-state records/s of a leads backlog and of an activities backlog (the leads already
    in LeadSquared) per configuration, combined into the backfill's records/s, ÷ single calls'.
    Budgets time-scaled x5 (see the module docstring)."""
    leads, activities = snapshot_leads(LEAD_COUNT), snapshot_activities(ACTIVITY_COUNT, LEAD_COUNT)
    figures: dict[str, Any] = {
        "time_scale": f"budgets x{SCALE} faster: main {MAIN_CALLS} calls / {WINDOW_S:g} s, bulk "
        f"N calls / {WINDOW_S:g} s, margin {MARGIN_S} s (ratios do not depend on the scale)",
    }
    single_rps: float | None = None
    for name, bulk_calls in CONFIGURATIONS.items():
        say(f"    {name}: {LEAD_COUNT:,} leads")
        lead_run = route_run(stack, bulk_calls, leads)
        say(f"    {name}: {ACTIVITY_COUNT:,} activities ({LEAD_COUNT:,} leads seeded)")
        activity_run = route_run(stack, bulk_calls, activities, seed_leads=LEAD_COUNT)
        figures[name] = _configuration_figures(bulk_calls, lead_run, activity_run, single_rps)
        single_rps = single_rps or _combined(lead_run, activity_run)
        say(f"    {name}: {figures[name]}")
    return figures


# -- update-heavy stream ------------------------------------------------------------------------

_CITIES = ("Goa", "Kochi", "Jaipur", "Surat", "Indore", "Mysuru")
_NAMES = ("Asha", "Ravi", "Meera", "Arjun", "Priya", "Kabir", "Zoë", "Ana")


def update_stream(seed: int = 13, *, before: bool = True) -> list[Event]:
    """``UPDATE_KEYS`` lead creations, then ``UPDATES`` updates: 80% of them on the hottest 20%
    of the keys; every third touches ``updated_at`` only (no mapped column), the others change
    ``city`` or ``first_name`` too. Each update's ``before`` is the whole previous row (REPLICA
    IDENTITY FULL), or None when ``before`` is false. The same rows for the same ``seed``."""
    rng = random.Random(seed)
    rows = {i: lead_row(i, rng) for i in range(UPDATE_KEYS)}
    events = [
        Event(LEADS, i, envelope("leads", "c", None, row, ts_ms=i)) for i, row in rows.items()
    ]
    keys = list(rows)
    rng.shuffle(keys)
    hot, cold = keys[: int(UPDATE_KEYS * HOT_KEYS)], keys[int(UPDATE_KEYS * HOT_KEYS) :]
    clock = datetime.fromisoformat("2026-11-02T09:00:00+00:00")
    for n in range(UPDATES):
        key = rng.choice(hot if rng.random() < HOT_UPDATES else cold)
        old = rows[key]
        new = old | {"updated_at": _iso(clock + timedelta(seconds=n))}
        if n % 3:  # a mapped column changes too
            column, choices = rng.choice((("city", _CITIES), ("first_name", _NAMES)))
            new[column] = rng.choice([c for c in choices if c != old[column]])
        rows[key] = new
        value = envelope("leads", "u", old if before else None, new, ts_ms=UPDATE_KEYS + n)
        events.append(Event(LEADS, key, value))
    return events


def _iso(moment: datetime) -> str:
    """``updated_at`` as the leads table's rows carry it (ISO 8601, ``Z``)."""
    return moment.isoformat().replace("+00:00", "Z")


def stream_run(
    stack: Stack, events: Sequence[Event], say: Say, rate: float | None = STREAM_RATE
) -> dict[str, Any]:
    """``events`` produced at ``rate`` per second while the connector runs (``None``: all at once,
    a backlog to catch up with), until each has its outcome: the connector's counts and the
    simulator's."""
    with _simulator(1, seed=21) as sim:
        suffix = stack.topics()
        sink = SinkProcess(_config(stack, sim, suffix, None), stack.workdir / suffix).start()
        try:
            sink.wait_for(lambda: bool(sink.events("partitions.assigned")), 60, "assignment")
            produce(stack, events, suffix, rate=rate)
            produced = time.time()
            how = "at once" if rate is None else f"at {rate:g}/s"
            say(f"    produced {len(events):,} records {how}")
            done = ("record.accepted", "record.skipped", "record.dead_lettered")

            def finished() -> bool:
                return sum(1 for e in sink.events() if e["event"] in done) >= len(events)

            sink.wait_for(finished, 180, "an outcome for every record", 1.0)
        finally:
            sink.stop()
        summary = sink.summary() or {}
        stats = sim.client.stats().accounts[sim.client.account().name]
    accepted = sink.events("record.accepted")
    groups = [e["coalesced"] for e in accepted if "coalesced" in e]
    waits = sorted(e["wait_s"] for e in accepted)
    last = max(_epoch(e["timestamp"]) for e in accepted)
    consumed = summary.get("consumed", 0)
    return {
        "calls_per_record": round(summary.get("api_calls", 0) / consumed, 3) if consumed else None,
        "consumed": consumed,
        "api_calls": summary.get("api_calls"),
        "simulator_calls": stats.calls,
        "skipped_no_change": sum(
            1 for e in sink.events("record.skipped") if e.get("reason") == "no_change"
        ),
        "coalesced_records": len(groups),
        "calls_saved_by_coalescing": round(len(groups) - sum(1 / size for size in groups)),
        "dead_lettered": summary.get("dead_lettered"),
        "throttled": throttled_answers(stats),
        "max_calls_in_window": stats.max_calls_in_window,
        "wait_s_p50": waits[len(waits) // 2],
        "wait_s_p95": waits[int(len(waits) * 0.95) - 1],
        "last_outcome_after_last_produce_s": round(last - produced, 1),
    }


def update_heavy(stack: Stack, say: Say) -> dict[str, Any]:
    """API calls per record of an update-heavy stream at twice the (time-scaled) budget, with
    the whole ``before`` row and without it; then the same records as a backlog to catch up with
    (the budget caps calls per record of the stream at about budget ÷ stream rate = 0.5, whatever
    the savings: the backlog shows them)."""
    figures: dict[str, Any] = {
        "stream": f"{UPDATE_KEYS} creates + {UPDATES:,} updates (80% on 20% of the keys, 1/3 "
        f"unmapped columns only) at {STREAM_RATE:g} records/s; budget {MAIN_CALLS} calls / "
        f"{WINDOW_S:g} s (x{SCALE} time scale); coalesce latest, no_change skip",
    }
    runs = [
        ("with_before", True, STREAM_RATE),
        ("without_before", False, STREAM_RATE),
        ("backlog_with_before", True, None),
        ("backlog_without_before", False, None),
    ]
    for name, before, rate in runs:
        say(f"    {name.replace('_', ' ')}")
        figures[name] = stream_run(stack, update_stream(before=before), say, rate)
        say(f"    {name}: {figures[name]}")
    return figures


# -- running just these -------------------------------------------------------------------------

_BACKFILL = (
    f"backfill ({LEAD_COUNT:,} leads + {ACTIVITY_COUNT:,} activities, single vs bulk at 1 and 5 "
    f"per window; budgets time-scaled x{SCALE}: {MAIN_CALLS} calls / 1 s)"
)
_UPDATE_HEAVY = (
    f"update-heavy stream ({UPDATE_KEYS} creates + {UPDATES:,} updates on hot keys at 2x the "
    f"budget, time-scaled x{SCALE}; with and without before)"
)
#: name → (heading, benchmark)
BENCHMARKS: dict[str, tuple[str, Callable[[Stack, Say], dict[str, Any]]]] = {
    "backfill": (_BACKFILL, backfill),
    "update_heavy": (_UPDATE_HEAVY, update_heavy),
}


def run_all(stack: Stack, say: Say, only: Sequence[str] = tuple(BENCHMARKS)) -> dict[str, Any]:
    """Run the benchmarks named in ``only``, saying a heading and the figures of each."""
    return benchkit.run_all(stack, say, BENCHMARKS, only)


def main(argv: list[str] | None = None) -> int:
    """Start a broker and a registry, run the bulk benchmarks, print the figures and one JSON
    line."""
    return benchkit.main("lsq_stack.bench_bulk", BENCHMARKS, argv)


if __name__ == "__main__":
    raise SystemExit(main())
