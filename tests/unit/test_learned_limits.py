"""Learned limits (SPEC §7): throttle answers that state the account's limit lower the budget to it
at once; others lower it multiplicatively, and it recovers slowly, never above the configured
value. The paced gate makes the first crossing of a lower real limit cost one throttle answer."""

from __future__ import annotations

import heapq
import itertools
import json
import math

import pytest

from connector.flow.accounts import MAIN, Account
from connector.flow.gates import RateGate, Share
from connector.flow.limits import DECREASE, RECOVER_WINDOWS, Limit, per_window
from connector.lsq.answers import Verdict, classify, stated_limit
from connector.records import Answer
from connector.settings.model import RetrySettings
from lsq_sim.limiter import SlidingWindow
from tests.unit.pipeline_fakes import harness, record


@pytest.mark.parametrize(
    ("message", "limit"),
    [
        ("API calls exceeded the limit of 10 in 5 second(s)", (10, 5.0)),
        ("API calls exceeded the limit of 20 in 5 seconds", (20, 5.0)),
        ("api calls exceeded the limit of 3 in 1.5 sec", (3, 1.5)),
        ("API calls exceeded the limit of 0 in 5 second(s)", None),
        ("API rate limit exceeded", None),
        ("Too Many Requests", None),
    ],
)
def test_the_stated_limit_is_read_from_the_message(
    message: str, limit: tuple[int, float] | None
) -> None:
    assert stated_limit(message) == limit


def _throttle(calls: int) -> bytes:
    message = f"API calls exceeded the limit of {calls} in 5 second(s)"
    return json.dumps(
        {
            "Status": "Error",
            "ExceptionType": "MXAPIRateLimitExceededException",
            "ExceptionMessage": message,
        }
    ).encode()


@pytest.mark.parametrize(
    ("status", "body", "limit"),
    [
        (429, _throttle(10), (10, 5.0)),
        (200, _throttle(20), (20, 5.0)),
        (429, b'{"message":"Too Many Requests"}', None),
    ],
)
def test_a_throttle_verdict_carries_the_stated_limit(
    status: int, body: bytes, limit: tuple[int, float] | None
) -> None:
    verdict = classify(Answer(status, body), "capture", "async")
    assert verdict.kind == "throttled"
    assert verdict.limit == limit


def test_a_limit_over_another_window_is_converted_safely() -> None:
    assert per_window((10, 5.0), 5.0) == 10
    assert per_window((2, 1.0), 5.0) == 2  # any 1-second window lies within a 5-second one
    assert per_window((100, 60.0), 5.0) == 8  # 12 windows cover a minute: 8 each, 96 in all
    assert per_window((100, 7.0), 5.0) == 50  # 2 windows cover 7 s


def test_a_stated_limit_applies_at_once_and_is_never_exceeded_again() -> None:
    limit = Limit(25, 5.0)
    assert limit.throttled((10, 5.0), now=1.0) == "learned"
    assert (limit.calls, limit.ceiling) == (10, 10)
    # the answers of calls sent before it was lowered change nothing
    assert limit.throttled((10, 5.0), now=1.5) is None
    assert limit.calls == 10
    for second in range(2, 200):
        limit.recover(float(second))
    assert limit.calls == 10


def test_a_throttle_without_a_limit_lowers_once_a_window_and_recovers_to_the_ceiling() -> None:
    limit = Limit(25, 5.0)
    assert limit.throttled(None, now=0.0) == "lowered"
    assert limit.calls == math.floor(25 * DECREASE)
    assert limit.throttled(None, now=4.9) is None  # within a window of the last lowering
    assert limit.throttled(None, now=5.0) == "lowered"
    assert limit.calls == math.floor(math.floor(25 * DECREASE) * DECREASE)
    lowered, quiet = limit.calls, RECOVER_WINDOWS * 5.0
    assert not limit.recover(5.0 + quiet - 0.01)
    assert limit.recover(5.0 + quiet)
    assert limit.calls == lowered + 1
    for step in range(1, 100):
        limit.recover(5.0 + quiet * (step + 1))
    assert limit.calls == 25  # the configured value is the ceiling


def test_a_limit_stated_over_a_day_is_a_quota_and_changes_no_budget() -> None:
    limit = Limit(25, 5.0)
    assert limit.throttled((10_000, 86_400.0), now=0.0) is None
    assert (limit.calls, limit.stated) == (25, None)


def test_a_throttle_within_the_stated_limit_means_others_spend_part_of_it() -> None:
    limit = Limit(25, 5.0)
    limit.throttled((20, 5.0), now=0.0)
    assert limit.throttled((20, 5.0), now=10.0) == "lowered"
    assert limit.calls == math.floor(20 * DECREASE)
    for step in range(1, 100):
        limit.recover(10.0 + 10.0 * step)
    assert limit.calls == 20


def test_the_paced_gate_spreads_a_backlog_over_the_window() -> None:
    gate = RateGate(25, 5.0, margin=0.0, pace=True)
    sent = []
    now = 0.0
    while now < 5.0:
        while gate.wait(now) == 0:
            gate.release(now, gate.acquire(now))
            sent.append(now)
        now += 0.01
    assert len([t for t in sent if t == 0.0]) == 5  # a fifth at once, then one every 0.2 s
    assert 24 <= len(sent) <= 25
    # a backlog still gets the whole budget: the log binds, not the bucket
    gaps = [b - a for a, b in itertools.pairwise(sent)]
    assert max(gaps) < 0.25


def _run(
    real: int, *, states: bool, seconds: float = 300.0, latency: float = 0.02
) -> tuple[int, int, list[float]]:
    """A backlog through a paced account budgeted 25 per 5 s, against an account limited to
    ``real`` per 5 s (a strict sliding window), on injected time. Returns the calls, the throttle
    answers and the times of the admitted calls."""
    gate = RateGate(25, 5.0, 0.05, pace=True)
    account = Account("a", {MAIN: gate}, 4, 5.0, RetrySettings(), limits={MAIN: (25, 5.0)})
    limiter, now = SlidingWindow(real, 5.0), 0.0
    answers: list[tuple[float, int, int, bool]] = []
    calls, throttles, admitted = 0, 0, []
    while now < seconds:
        account.recover(now)
        if account.resized:
            account.gates[MAIN].resize(Share(account.budgets[MAIN].calls), now)
            account.resized = False
        while account.may_send(MAIN, now):
            slot, calls = account.sent(MAIN, now), calls + 1
            ok = limiter.admit(now + latency / 2)
            admitted += [now] if ok else []
            heapq.heappush(answers, (now + latency, calls, slot, ok))
        wait = account.wait(MAIN, now)
        now = min(now + max(wait, 1e-3), answers[0][0] if answers else math.inf)
        while answers and answers[0][0] <= now:
            _, _, slot, ok = heapq.heappop(answers)
            account.answered(MAIN, slot, now)
            limit = (real, 5.0) if states else None
            verdict = Verdict("accepted") if ok else Verdict("throttled", limit=limit)
            throttles += not ok
            account.observe(verdict, MAIN, now)
    return calls, throttles, admitted


def test_a_lower_stated_limit_costs_one_throttle_answer_and_is_then_used_fully() -> None:
    _calls, throttles, admitted = _run(10, states=True)
    assert throttles <= 3
    after = [t for t in admitted if t >= 60.0]
    assert len(after) / (10 * (300.0 - 60.0) / 5.0) >= 0.9


def test_without_a_stated_limit_throttles_stay_under_five_percent_of_calls() -> None:
    calls, throttles, _ = _run(10, states=False)
    assert throttles <= 0.05 * calls
    assert calls > 300  # it keeps sending, at most a little over the limit's 600


def test_the_loop_shares_out_a_learned_budget_and_keeps_it_across_a_rebalance() -> None:
    h = harness(calls=25, window=5.0)
    h.input.rebalances.append(("assigned", [("leads", 0)]))
    h.feed(*(record(i, f"k{i}", f"lead{i}@example.com") for i in range(30)))
    h.turn(5)
    stated = Answer(429, _throttle(10))
    h.calls.answer(stated, lambda sent: sent.ticket == 0)
    h.turn(5)
    assert h.account.budgets[MAIN].calls == 10
    assert h.account.gates[MAIN].share.calls == 10
    h.input.rebalances.append(("assigned", [("leads", 1)]))  # a rebalance: a new partition
    h.feed(record(100, "other", "other@example.com", partition=1))
    h.turn(5)
    assert ("leads", 1) in h.input.owned
    assert h.account.gates[MAIN].share.calls == 10  # learned, not configured
