"""Observing a running `lsq-sink run` (SPEC §8): its health port scraped over HTTP while it works,
and its log lines."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families

from lsq_sim import RateLimit, SimConfig, Simulator
from lsq_stack import trials
from lsq_stack.reliability import wait_until

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def _scrape(url: str) -> Samples:
    text = httpx.get(f"{url}/metrics").text
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def _ready(url: str) -> tuple[int, str]:
    answer = httpx.get(f"{url}/readyz")
    return answer.status_code, answer.text


def test_health_port_follows_the_connector(stack: trials.Stack) -> None:
    """/livez answers from the start; /readyz is 200 once the replica works; /metrics counts what
    happened (records, outcomes, calls, answers, latency, budget); rejected keys make it unready
    with the reason and unavailable in the metrics, until they work again; SIGTERM exits 0."""
    limit = RateLimit(calls=trials.FAST, window_s=5.0)
    config = trials.FAST_LIMIT | {"retry": {"auth_retry_seconds": 1.0}}
    with Simulator(SimConfig(rate_limit=limit)) as sim, stack.trial(sim, config=config) as trial:
        trial.produce(40)
        sink = trial.start()
        url = sink.health_url()
        assert httpx.get(f"{url}/livez").status_code == 200
        trial.wait_done(sink, 120)
        wait_until(lambda: _ready(url) == (200, "ready\n"), 30, "/readyz 200")
        wait_until(lambda: _scrape(url)["lsq_sink_in_flight_records", frozenset()] == 0, 30, "idle")
        m = _scrape(url)
        none: frozenset[tuple[str, str]] = frozenset()
        default = frozenset({("account", "default")})
        assert m["lsq_sink_records_consumed_total", none] == 40
        assert m["lsq_sink_records_total", frozenset({("outcome", "accepted")})] == 40
        assert m["lsq_sink_api_calls_total", none] == 40
        assert m["lsq_sink_answers_total", default | {("answer", "accepted")}] == 40
        assert m["lsq_sink_result_latency_seconds_count", none] == 40
        assert m["lsq_sink_commit_latency_seconds_count", none] >= 1
        assert m["lsq_sink_budget_calls", default] == trials.FAST  # the only replica: all of it
        assert (m["lsq_sink_consumer_lag", none], m["lsq_sink_ready", none]) == (0, 1)

        account = sim.account()
        sim.client.rotate_keys(account.name, api_key="rotated-api-key")
        trial.produce(5)
        sink.wait_for(lambda: bool(sink.events("account.rejected")), 60, "account.rejected")
        wait_until(lambda: _ready(url)[0] == 503, 30, "/readyz 503")
        assert "account default: LeadSquared rejects its keys (HTTP 40" in _ready(url)[1]
        assert _scrape(url)["lsq_sink_account_available", default] == 0
        sim.client.rotate_keys(account.name, api_key=account.api_key)
        trial.wait_done(sink, 60)
        wait_until(lambda: _ready(url) == (200, "ready\n"), 30, "/readyz 200 again")
        assert _scrape(url)["lsq_sink_records_total", frozenset({("outcome", "accepted")})] == 45
        assert sink.stop() == 0
