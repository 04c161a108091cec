"""What the health port reports (pure parts): the snapshot as Prometheus metric families, and why a
replica is not ready (SPEC §8)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from connector.adapters.metrics import SnapshotCollector
from connector.flow.accounts import MAIN, Account
from connector.flow.gates import RateGate
from connector.flow.observe import AccountView, Snapshot, not_ready
from connector.flow.tally import Buckets, Tally
from connector.settings.model import RetrySettings


def _scrape(snap: Snapshot) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """The exposition text of ``snap`` parsed back: value per (sample name, labels)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SnapshotCollector(lambda: snap))
    text = generate_latest(registry).decode()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_snapshot_counts_become_counters_and_gauges() -> None:
    """Records by outcome, calls, retries, throttles, work in flight, lag and readiness."""
    tally = Tally(12, 9, 2, 1, 0, api_calls=14, throttled=2, retried=3, ambiguous=1)
    tally.bulk_calls, tally.coalesced, tally.no_change = 4, 6, 1
    snap = Snapshot(
        tally=tally,
        in_flight_records=5,
        in_flight_bytes=2048,
        lag=40,
        paused=True,
        not_ready=(),
    )
    m = _scrape(snap)
    none: frozenset[tuple[str, str]] = frozenset()
    assert m["lsq_sink_records_consumed_total", none] == 12
    assert m["lsq_sink_records_total", frozenset({("outcome", "accepted")})] == 9
    assert m["lsq_sink_records_total", frozenset({("outcome", "dead_lettered")})] == 2
    assert m["lsq_sink_api_calls_total", none] == 14
    assert (m["lsq_sink_retries_total", none], m["lsq_sink_ambiguous_retries_total", none]) == (
        3,
        1,
    )
    assert m["lsq_sink_throttled_total", none] == 2
    assert m["lsq_sink_bulk_calls_total", none] == 4
    assert m["lsq_sink_records_coalesced_total", none] == 6
    assert m["lsq_sink_records_unchanged_total", none] == 1
    assert (m["lsq_sink_in_flight_records", none], m["lsq_sink_in_flight_bytes", none]) == (5, 2048)
    assert (m["lsq_sink_consumer_lag", none], m["lsq_sink_input_paused", none]) == (40, 1)
    assert m["lsq_sink_ready", none] == 1


def test_accounts_are_labelled_series() -> None:
    """Per account: its budget share, free tokens, calls in flight, availability, answers."""
    view = AccountView("main", 12, 5.0, 7, 3, False, {"accepted": 20, "throttled": 1})
    m = _scrape(Snapshot(accounts=(view,)))
    main = frozenset({("account", "main")})
    assert m["lsq_sink_budget_calls", main] == 12
    assert m["lsq_sink_budget_window_seconds", main] == 5.0
    assert (m["lsq_sink_tokens", main], m["lsq_sink_calls_in_flight", main]) == (7, 3)
    assert m["lsq_sink_account_available", main] == 0
    assert m["lsq_sink_answers_total", main | {("answer", "accepted")}] == 20
    assert m["lsq_sink_answers_total", main | {("answer", "throttled")}] == 1
    assert m["lsq_sink_ready", frozenset()] == 0  # the default snapshot is "starting"
    assert ("lsq_sink_bulk_budget_calls", main) not in m  # no bulk route, no bulk budget
    bulk = AccountView("main", 12, 5.0, 7, 3, True, {}, bulk_calls=1)
    assert _scrape(Snapshot(accounts=(bulk,)))["lsq_sink_bulk_budget_calls", main] == 1


def test_budgets_show_as_configured_and_as_learned() -> None:
    """Per account and budget: the configured calls per window and the learned ones."""
    view = AccountView("main", 4, 5.0, 4, 0, True, {}, budgets={"main": (25, 10), "bulk": (5, 5)})
    m = _scrape(Snapshot(accounts=(view,)))
    main = frozenset({("account", "main"), ("budget", "main")})
    bulk = frozenset({("account", "main"), ("budget", "bulk")})
    assert (
        m["lsq_sink_budget_configured_calls", main],
        m["lsq_sink_budget_effective_calls", main],
    ) == (25, 10)
    assert m["lsq_sink_budget_effective_calls", bulk] == 5


def test_latency_buckets_become_cumulative_histograms() -> None:
    """Observations land in their bucket; the exposition counts them cumulatively, +Inf last."""
    latency = Buckets()
    for seconds in (0.003, 0.02, 0.02, 7.0, 1000.0):
        latency.observe(seconds)
    m = _scrape(Snapshot(result_latency=latency))

    def bucket(le: str) -> float:
        return m["lsq_sink_result_latency_seconds_bucket", frozenset({("le", le)})]

    assert (bucket("0.005"), bucket("0.025"), bucket("5.0"), bucket("10.0")) == (1, 3, 3, 4)
    assert bucket("+Inf") == 5
    assert m["lsq_sink_result_latency_seconds_count", frozenset()] == 5
    assert m["lsq_sink_result_latency_seconds_sum", frozenset()] == 1007.043
    assert m["lsq_sink_commit_latency_seconds_count", frozenset()] == 0


def test_not_ready_names_every_reason() -> None:
    """Stopping, not in the group, outcomes not acknowledged, rejected keys: each is a reason;
    none of them means ready."""
    retry = RetrySettings()
    rejected = Account(
        "main", {MAIN: RateGate(25, 5.0)}, 4, 5.0, retry, rejected="HTTP 403: Forbidden"
    )
    fine = Account("other", {MAIN: RateGate(25, 5.0)}, 4, 5.0, retry)
    reasons = not_ready(
        stopping=True, joined=False, results_delayed=True, accounts=[rejected, fine]
    )
    assert reasons == (
        "stopping",
        "not in the consumer group yet",
        "results and dead letters are not being acknowledged by Kafka",
        "account main: LeadSquared rejects its keys (HTTP 403: Forbidden)",
    )
    assert not_ready(stopping=False, joined=True, results_delayed=False, accounts=[fine]) == ()


def test_not_ready_appends_the_reasons_it_is_given_in_order() -> None:
    """A halted route's reason (or any other given) follows the replica's own."""
    fine = Account("main", {MAIN: RateGate(25, 5.0)}, 4, 5.0, RetrySettings())
    reasons = not_ready(
        stopping=True,
        joined=True,
        results_delayed=False,
        accounts=[fine],
        reasons=["route leads halted", "route calls halted"],
    )
    assert reasons == ("stopping", "route leads halted", "route calls halted")
