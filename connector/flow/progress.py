"""[pure] The periodic progress line (SPEC §8): rates since the last line, work in flight, the
backlog per route and the time it will take to drain (at the quotas' pace once their calls are
spent), each account's budgets and daily quota, and the fields of completion tracking."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from connector.flow.observe import quota_view

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from connector.flow.accounts import Account
    from connector.flow.observe import QuotaView, TrackingView
    from connector.flow.offsets import OffsetTracker, TopicPartitionKey
    from connector.flow.tally import Tally
    from connector.transform.route import Route

__all__ = ["Progress", "progress_fields", "route_backlog", "tracking_fields"]


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


def tracking_fields(view: TrackingView, tally: Tally) -> dict[str, Any]:
    """The progress line's fields of completion tracking: checks not finished, follow-ups
    written by status, status calls, halted routes and LeadSquared's queues."""
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
