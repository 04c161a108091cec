"""[pure] What the loop reports: the :class:`Tally` of what happened, the periodic progress line
(rates, work in flight, the backlog and the time it will take), latency buckets, and the
:class:`Snapshot` the health port serves (the loop publishes one about once a second; the server
thread only ever reads the latest)."""

from __future__ import annotations

import bisect
import math
from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from connector.flow.accounts import BULK, MAIN

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping, Sequence

    from connector.flow.accounts import Account, Budget
    from connector.flow.offsets import OffsetTracker, TopicPartitionKey
    from connector.flow.outcomes import Outcomes
    from connector.flow.tracking import Tracker
    from connector.transform.route import Route

__all__ = [
    "AccountView",
    "Buckets",
    "Progress",
    "Snapshot",
    "Tally",
    "TrackingView",
    "progress_fields",
    "tracking_fields",
    "tracking_view",
]

#: Upper bounds (seconds) of the latency buckets: produce → result, and commits.
LATENCY_BOUNDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)


@dataclass(slots=True)
class Tally:
    """What happened so far (SPEC §10's summary line)."""

    consumed: int = 0
    accepted: int = 0
    dead_lettered: int = 0
    skipped: int = 0
    recovered: int = 0  # outcome written before a restart: not called again
    api_calls: int = 0
    throttled: int = 0
    retried: int = 0
    ambiguous: int = 0  # calls retried although LeadSquared may have received them
    bulk_calls: int = 0  # of api_calls, bulk calls (up to 25 records each)
    coalesced: int = 0  # records whose change went out with an earlier one of their key
    no_change: int = 0  # of skipped, updates whose mapped payload did not change
    by_route: Counter[str] = field(default_factory=Counter)  # records with an outcome, per route
    # completion tracking (SPEC §13): follow-ups written, by status, and what it cost
    succeeded: int = 0
    failed: int = 0
    unknown: int = 0
    dead_lettered_late: int = 0  # failed in LeadSquared's queue: copied to the dead-letter topic
    status_calls: int = 0  # Status and Metrics API calls
    halted: int = 0  # routes halted
    status_checks_skipped: int = 0  # accepted calls not checked: status.max_checks were held

    def copy(self) -> Tally:
        return replace(self, by_route=Counter(self.by_route))

    @property
    def done(self) -> int:
        """Records with an outcome."""
        return self.accepted + self.dead_lettered + self.skipped + self.recovered

    @property
    def lost(self) -> int:
        """Consumed records with no outcome: non-zero only while work is in flight."""
        return self.consumed - self.done


@dataclass(slots=True)
class Buckets:
    """A histogram: counts per upper bound (the last one is +Inf), their sum and count."""

    bounds: tuple[float, ...] = LATENCY_BOUNDS
    counts: list[int] = field(default_factory=lambda: [0] * (len(LATENCY_BOUNDS) + 1))
    total: float = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.total += value

    def copy(self) -> Buckets:
        return Buckets(self.bounds, list(self.counts), self.total)


@dataclass(frozen=True, slots=True)
class QuotaView:
    """An account's daily quota as this replica spends it."""

    per_day: float  # calls this replica may spend in a rolling day (its partitions' part)
    left: int  # of them, calls left now
    until: float | None  # while none is left (or pacing holds them): wall time of the next one
    day: float  # seconds of the quota's day
    unknown: str | None = None  # why the calls spent are not known: none is sent (fails closed)


@dataclass(frozen=True, slots=True)
class AccountView:
    """One account as the health port shows it."""

    name: str
    calls: float  # this replica's share of the budget: calls per window (turns averaged)
    window_s: float
    free: int
    in_flight: int
    available: bool  # not down, keys not rejected
    answers: dict[str, int]
    bulk_calls: float | None = None  # the same share of the bulk budget, when it has one
    #: the fleet's calls per window of each budget: (configured, learned from throttle answers)
    budgets: dict[Budget, tuple[int, int]] = field(default_factory=dict)
    quota: QuotaView | None = None


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The loop's state for /metrics and /readyz; immutable, replaced as a whole."""

    tally: Tally = field(default_factory=Tally)
    in_flight_records: int = 0
    in_flight_bytes: int = 0
    lag: int = 0
    paused: bool = False
    accounts: tuple[AccountView, ...] = ()
    result_latency: Buckets = field(default_factory=Buckets)
    commit_latency: Buckets = field(default_factory=Buckets)
    not_ready: tuple[str, ...] = ("starting",)  # why /readyz fails; empty when ready
    tracking: TrackingView | None = None  # with status tracking on (SPEC §13)


@dataclass(frozen=True, slots=True)
class TrackingView:
    """Completion tracking as the health port shows it."""

    checks: int  # accepted calls whose status is not known yet
    halted: tuple[str, ...]  # routes the canary halted
    #: LeadSquared's queue per (account, operation): pending messages, most delay in seconds
    queues: tuple[tuple[str, str, int, float], ...]


def tracking_view(tracker: Tracker) -> TrackingView:
    """What ``tracker`` shows the health port."""
    queues = tuple(
        (account, operation, depth.pending, depth.max_delay_s)
        for (account, operation), depth in sorted(tracker.depths.items())
    )
    halted = tuple(halt.route for halt in tracker.canary.halts)
    return TrackingView(tracker.pending, halted, queues)


def tracking_fields(tracker: Tracker) -> dict[str, Any]:
    """The progress line's fields of completion tracking: checks not finished, follow-ups
    written by status, status calls, halted routes and LeadSquared's queues."""
    tally, view = tracker.tally, tracking_view(tracker)
    fields: dict[str, Any] = {
        "checks": view.checks,
        "follow_ups": {s: getattr(tally, s) for s in ("succeeded", "failed", "unknown")},
        "status_calls": tally.status_calls,
        "checks_skipped": tally.status_checks_skipped,
    }
    if view.halted:
        fields["halted"] = list(view.halted)
    if view.queues:
        fields["queue"] = {
            f"{account}/{operation}": {"pending": pending, "max_delay_s": delay}
            for account, operation, pending, delay in view.queues
        }
    return fields


@dataclass(slots=True)
class Progress:
    """Where the last progress line left off."""

    interval: float
    at: float
    done: int = 0
    calls: int = 0
    by_route: Counter[str] = field(default_factory=Counter)


def progress_fields(
    tally: Tally,
    last: Progress,
    now: float,
    *,
    in_flight: int,
    backlog: Mapping[str, int],
    accounts: Mapping[str, Account],
) -> dict[str, Any]:
    """The fields of a progress line; moves ``last`` on to ``now``. ``backlog``: per route, the
    records not consumed yet or without an outcome; each route's drain time is its backlog at the
    route's rate since the last line (bulk calls and all). Per account: the calls its budgets let
    start now (``tokens``), its budgets' calls per window as learned so far, and its daily quota
    (the overall drain time then counts with the calls it leaves, at one a record)."""
    tokens = {name: account.free(now) for name, account in accounts.items()}
    budgets = {n: {b: x.calls for b, x in a.budgets.items()} for n, a in accounts.items()}
    quotas = {n: q for n, a in accounts.items() if (q := quota_view(a, now)) is not None}
    elapsed = max(now - last.at, 1e-9)
    done = tally.done
    rate = (done - last.done) / elapsed
    total = sum(backlog.values())
    rates = {name: (tally.by_route[name] - last.by_route[name]) / elapsed for name in backlog}
    fields: dict[str, Any] = {
        "records_per_s": round(rate, 2),
        "calls_per_s": round((tally.api_calls - last.calls) / elapsed, 2),
        "consumed": tally.consumed,
        "accepted": tally.accepted,
        "dead_lettered": tally.dead_lettered,
        "skipped": tally.skipped,
        "recovered": tally.recovered,
        "throttled": tally.throttled,
        "api_calls": tally.api_calls,
        "bulk_calls": tally.bulk_calls,
        "coalesced": tally.coalesced,
        "no_change": tally.no_change,
        "in_flight": in_flight,
        "backlog": total,
        "eta_s": _eta(total, rate, quotas),
        "eta_s_by_route": {
            name: round(count / rates[name]) if rates[name] > 0 else None
            for name, count in sorted(backlog.items())
            if count
        },
        "tokens": tokens,
        "budgets": budgets,
    }
    if quotas:
        fields["quota_left"] = {name: quota.left for name, quota in quotas.items()}
        fields["quota_exhausted_until"] = {
            name: _iso(quota.until) for name, quota in quotas.items() if quota.until is not None
        }
    last.at, last.done, last.calls = now, done, tally.api_calls
    last.by_route = Counter(tally.by_route)
    return fields


def route_backlog(
    lags: Mapping[TopicPartitionKey, int],
    offsets: OffsetTracker,
    route_of: Callable[[str], Route | None],
) -> Counter[str]:
    """Per route, the records not consumed yet (``lags``) or consumed without an outcome."""
    backlog: Counter[str] = Counter()
    for tp in {*lags, *offsets.partitions()}:
        if (route := route_of(tp[0])) is not None:
            backlog[route.name] += lags.get(tp, 0) + offsets.pending(tp)
    return backlog


def _eta(backlog: int, rate: float, quotas: Mapping[str, QuotaView]) -> int | None:
    """Seconds to drain ``backlog`` at ``rate``, or at the quotas' pace once the calls they have
    left today are spent, whichever is longer."""
    eta = backlog / rate if rate > 0 else None
    if quotas:
        left = sum(quota.left for quota in quotas.values())
        pace = sum(quota.per_day / quota.day for quota in quotas.values())
        paced = max(0, backlog - left) / pace if pace > 0 else math.inf
        eta = paced if eta is None else max(eta, paced)
    return None if eta is None or math.isinf(eta) else round(eta)


def _iso(wall: float) -> str:
    return datetime.fromtimestamp(wall, UTC).isoformat(timespec="seconds")


def quota_view(account: Account, now: float) -> QuotaView | None:
    """An account's daily quota as this replica spends it, if it has one."""
    if (quota := account.quota) is None:
        return None
    return QuotaView(
        quota.allowance, quota.left(now), quota.exhausted_until(now), quota.day, quota.unknown
    )


def account_view(account: Account, now: float) -> AccountView:
    """An account's state for the health port."""
    gate, bulk = account.gates[MAIN], account.gates.get(BULK)
    calls, window = gate.share.per_window(gate.window, gate.turn), gate.window
    available = not account.probing
    free, answers = gate.free(now), dict(account.answers)
    budgets = {b: (limit.configured, limit.calls) for b, limit in account.budgets.items()}
    view = AccountView(
        account.name, calls, window, free, account.in_flight, available, answers, budgets=budgets
    )
    if (quota := quota_view(account, now)) is not None:
        view = replace(view, quota=quota)
    if bulk is not None:
        view = replace(view, bulk_calls=bulk.share.per_window(bulk.window, bulk.turn))
    return view


def take_snapshot(
    outcomes: Outcomes,
    accounts: Sequence[AccountView],
    *,
    lag: int,
    paused: bool,
    not_ready: tuple[str, ...],
    tracking: TrackingView | None = None,
) -> Snapshot:
    """The loop's state for the health port: copies of the counts and latency buckets (results,
    commits), work in flight (records, bytes), the lag, the accounts, why it is not ready."""
    return Snapshot(
        tally=outcomes.tally.copy(),
        in_flight_records=outcomes.pending(),
        in_flight_bytes=outcomes.bytes_held(),
        lag=lag,
        paused=paused,
        accounts=tuple(accounts),
        result_latency=outcomes.result_latency.copy(),
        commit_latency=outcomes.commit_latency.copy(),
        not_ready=not_ready,
        tracking=tracking,
    )


def not_ready(
    *,
    stopping: bool,
    joined: bool,
    results_delayed: bool,
    accounts: Iterable[Account],
    halts: Iterable[object] = (),
) -> tuple[str, ...]:
    """Why a replica should not count as ready (SPEC §8: in the group, producing, keys
    accepted, no route halted by the canary, SPEC §13); empty when it should."""
    reasons = []
    if stopping:
        reasons.append("stopping")
    if not joined:
        reasons.append("not in the consumer group yet")
    if results_delayed:
        reasons.append("results and dead letters are not being acknowledged by Kafka")
    for a in accounts:
        if a.rejected is not None:
            reasons.append(f"account {a.name}: LeadSquared rejects its keys ({a.rejected})")
        if a.throttle_spell is not None:
            reasons.append(
                f"account {a.name}: {a.throttle_spell} (its keys may be shared, or "
                "its limit is lower than configured); one probe a cool-down"
            )
        if a.quota is not None and a.quota.unknown is not None:
            reasons.append(f"account {a.name}: {a.quota.unknown}")
    reasons += [str(halt) for halt in halts]
    return tuple(reasons)
