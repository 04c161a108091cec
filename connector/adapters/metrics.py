"""[I/O] Prometheus metrics: the loop's latest :class:`~connector.flow.observe.Snapshot` as metric
families, collected at scrape time (the loop never touches a metrics object on its hot path).
Names start with ``lsq_sink_``; per-account series carry an ``account`` label."""

from __future__ import annotations

from typing import TYPE_CHECKING

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from prometheus_client.metrics_core import Metric

    from connector.flow.observe import Snapshot
    from connector.flow.tally import Buckets

__all__ = ["COUNTERS", "OUTCOMES", "SnapshotCollector", "families"]


class SnapshotCollector:
    """A prometheus-client collector over a function returning the latest snapshot."""

    def __init__(self, latest: Callable[[], Snapshot]) -> None:
        self._latest = latest

    def collect(self) -> Iterator[Metric]:
        return iter(families(self._latest()))


#: The tally's counters: field → (metric name, help); the outcome counts are one labelled family.
COUNTERS = {
    "consumed": ("lsq_sink_records_consumed", "Records consumed"),
    "api_calls": ("lsq_sink_api_calls", "Calls sent to LeadSquared"),
    "retried": ("lsq_sink_retries", "Calls retried after a failure"),
    "ambiguous": (
        "lsq_sink_ambiguous_retries",
        "Retries of calls LeadSquared may have received (timeouts, dropped connections)",
    ),
    "throttled": ("lsq_sink_throttled", "Throttle answers (429 or rate-limit body)"),
    "bulk_calls": ("lsq_sink_bulk_calls", "Bulk calls sent (of the calls sent)"),
    "coalesced": (
        "lsq_sink_records_coalesced",
        "Records whose change went out in one call with an earlier change of their key",
    ),
    "no_change": ("lsq_sink_records_unchanged", "Updates skipped: their payload did not change"),
    "status_calls": ("lsq_sink_status_calls", "Status and Metrics API calls (status tracking)"),
    "dead_lettered_late": (
        "lsq_sink_records_failed_in_queue_dead_lettered",
        "Records LeadSquared failed after accepting them, copied to the dead-letter topic",
    ),
}
OUTCOMES = ("accepted", "dead_lettered", "skipped", "recovered")


def families(snap: Snapshot) -> list[Metric]:
    """Every metric family of one snapshot."""
    tally = snap.tally
    out: list[Metric] = [
        CounterMetricFamily(name, text, getattr(tally, key))
        for key, (name, text) in COUNTERS.items()
    ]
    outcomes = CounterMetricFamily("lsq_sink_records", "Records by outcome", labels=["outcome"])
    out += [
        _labelled(outcomes, {(kind,): getattr(tally, kind) for kind in OUTCOMES}),
        GaugeMetricFamily(
            "lsq_sink_in_flight_records",
            "Records consumed without a durable outcome yet",
            snap.in_flight_records,
        ),
        GaugeMetricFamily(
            "lsq_sink_in_flight_bytes",
            "Bytes of records without a durable outcome yet",
            snap.in_flight_bytes,
        ),
        GaugeMetricFamily(
            "lsq_sink_consumer_lag", "Records not yet consumed (assigned partitions)", snap.lag
        ),
        GaugeMetricFamily(
            "lsq_sink_input_paused", "1 while the input is paused (backpressure)", int(snap.paused)
        ),
        GaugeMetricFamily("lsq_sink_ready", "1 when /readyz answers 200", int(not snap.not_ready)),
        _histogram(
            "lsq_sink_result_latency_seconds",
            "Produce time of a record to the acknowledgement of its outcome",
            snap.result_latency,
        ),
        _histogram(
            "lsq_sink_commit_latency_seconds", "Synchronous offset commits", snap.commit_latency
        ),
    ]
    out += _accounts(snap)
    out += _tracking(snap)
    return out


def _tracking(snap: Snapshot) -> list[Metric]:
    """Completion tracking (SPEC §13): follow-ups by status, checks pending and skipped, halted
    routes and LeadSquared's queues (only with status tracking on)."""
    view, tally = snap.tracking, snap.tally
    if view is None:
        return []
    follow_ups = CounterMetricFamily(
        "lsq_sink_follow_ups", "Follow-up results records by status", labels=["status"]
    )
    statuses = ("succeeded", "failed", "unknown")
    halted = GaugeMetricFamily(
        "lsq_sink_route_halted", "1 for a route the canary halted", labels=["route"]
    )
    for route in view.halted:
        halted.add_metric([route], 1)
    labels = ["account", "operation"]
    pending, delay = (
        GaugeMetricFamily(name, text, labels=labels)
        for name, text in (
            ("lsq_sink_queue_pending_messages", "LeadSquared's queue (its Metrics API)"),
            ("lsq_sink_queue_max_delay_seconds", "The delay LeadSquared gives its queue"),
        )
    )
    for account, operation, messages, seconds in view.queues:
        pending.add_metric([account, operation], messages)
        delay.add_metric([account, operation], seconds)
    checks = GaugeMetricFamily(
        "lsq_sink_status_checks_pending",
        "Accepted calls whose status is not known yet",
        view.checks,
    )
    skipped = CounterMetricFamily(
        "lsq_sink_status_checks_skipped",
        "Accepted calls not checked because status.max_checks checks were held",
        tally.status_checks_skipped,
    )
    return [
        _labelled(follow_ups, {(s,): getattr(tally, s) for s in statuses}),
        checks,
        skipped,
        halted,
        pending,
        delay,
    ]


def _accounts(snap: Snapshot) -> list[Metric]:
    answers = CounterMetricFamily(
        "lsq_sink_answers", "LeadSquared answers by class", labels=["account", "answer"]
    )
    gauges = {
        "lsq_sink_budget_calls": "This replica's share of the account's calls per window "
        "(turns on seats shared with other replicas averaged)",
        "lsq_sink_budget_window_seconds": "The window of that share",
        "lsq_sink_tokens": "Calls that may start now under the budget",
        "lsq_sink_calls_in_flight": "Calls sent and not answered yet",
        "lsq_sink_account_available": "0 while LeadSquared looks down, rejects the keys "
        "or answers only throttles",
    }
    per_account = [
        GaugeMetricFamily(name, text, labels=["account"]) for name, text in gauges.items()
    ]
    bulk = GaugeMetricFamily(
        "lsq_sink_bulk_budget_calls",
        "This replica's share of the account's bulk calls per window (accounts with bulk routes)",
        labels=["account"],
    )
    configured, learned = (
        GaugeMetricFamily(
            f"lsq_sink_budget_{kind}_calls",
            f"The fleet's calls per window of the account's budget, {text}",
            labels=["account", "budget"],
        )
        for kind, text in (
            ("configured", "as configured (the ceiling)"),
            ("effective", "as learned from throttle answers"),
        )
    )
    quota_gauges = {
        "lsq_sink_quota_calls_per_day": "This replica's part of the account's daily quota (less "
        "the reserve): calls in any rolling day",
        "lsq_sink_quota_calls_left": "Of them, calls left now",
        "lsq_sink_quota_exhausted_until_seconds": "While none is left (or pacing holds them "
        "back): Unix time of the next one; 0 otherwise",
        "lsq_sink_quota_unknown": "1 while the calls spent cannot be read from or written to the "
        "quota topic: none is sent for the account until they can (fails closed)",
    }
    quota = [GaugeMetricFamily(n, text, labels=["account"]) for n, text in quota_gauges.items()]
    for account in snap.accounts:
        if (view := account.quota) is not None:
            spent = (view.per_day, view.left, view.until or 0.0, int(view.unknown is not None))
            for family, value in zip(quota, spent, strict=True):
                family.add_metric([account.name], value)
        for budget, (ceiling, calls) in sorted(account.budgets.items()):
            configured.add_metric([account.name, budget], ceiling)
            learned.add_metric([account.name, budget], calls)
        values = (
            account.calls,
            account.window_s,
            account.free,
            account.in_flight,
            int(account.available),
        )
        for family, value in zip(per_account, values, strict=True):
            family.add_metric([account.name], value)
        for kind, count in sorted(account.answers.items()):
            answers.add_metric([account.name, kind], count)
        if account.bulk_calls is not None:
            bulk.add_metric([account.name], account.bulk_calls)
    return [answers, *per_account, bulk, configured, learned, *quota]


def _labelled(family: CounterMetricFamily, values: dict[tuple[str, ...], float]) -> Metric:
    for labels, value in sorted(values.items()):
        family.add_metric(list(labels), value)
    return family


def _histogram(name: str, text: str, buckets: Buckets) -> Metric:
    cumulative, running = [], 0
    for bound, count in zip([*map(str, buckets.bounds), "+Inf"], buckets.counts, strict=True):
        running += count
        cumulative.append((bound, float(running)))
    return HistogramMetricFamily(name, text, buckets=cumulative, sum_value=buckets.total)
