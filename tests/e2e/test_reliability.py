"""Nothing lost, nothing stuck (SPEC §2, §6): crashes, graceful stops, rebalances, LeadSquared
outages, timeouts, throttling, MX errors and rejected keys, each with real `lsq-sink run`
processes against the local stack. The scenarios are shared with `make soak` (larger sizes)."""

from __future__ import annotations

import json
from collections import defaultdict
from typing import TYPE_CHECKING

import pytest

from lsq_sim import RateLimit, SimConfig, Simulator
from lsq_stack import trials
from lsq_stack.kafka import read_all

if TYPE_CHECKING:
    from lsq_stack.reliability import Trial


def _complete(trial: Trial) -> None:
    """Every record has exactly one outcome and commits reach the end of every partition."""
    outcomes = trial.outcomes()
    assert [p for p in trial.emails if p not in outcomes] == []
    assert {p: kinds for p, kinds in outcomes.items() if len(kinds) > 1} == {}
    assert trial.committed() == trial.ends()


def test_crash_loses_nothing_and_repeats_only_calls_in_flight(stack: trials.Stack) -> None:
    """SIGKILL at random moments, three times: every source offset ends with exactly one outcome
    record and commits reach the end. Repeated calls are at most the calls in flight at each
    kill (measured: accepted by LeadSquared, no outcome record), and every record done but not
    committed at a kill is found by the next run (record.recovered) instead of being called
    again: a read-back that finds nothing repeats those calls and fails this."""
    trial, report, kills = trials.crash(stack, records=1200, kills=3)
    _complete(trial)
    assert (report.lost, report.duplicate_outcomes) == (0, 0)
    assert report.duplicate_calls <= sum(kill.in_flight for kill in kills), kills
    uncommitted = [len(kill.done_uncommitted) for kill in kills]
    assert sum(uncommitted) > 0, "no kill left done records uncommitted: nothing was tested"
    recovered = [len(sink.events("record.recovered")) for sink in trial.sinks[1:]]
    assert recovered == uncommitted


def test_sigterm_restart_repeats_no_call(stack: trials.Stack) -> None:
    """SIGTERM finishes the calls in flight, commits, exits 0; the restart resumes exactly where
    the first run stopped: no call is made twice."""
    trial, report = trials.graceful_stop(stack, records=500)
    _complete(trial)
    assert (report.lost, report.duplicate_outcomes, report.duplicate_calls) == (0, 0, 0)
    stopping = trial.sinks[0].events("connector.stopping")
    assert len(stopping) == 1


def test_rebalance_keeps_per_key_order_and_loses_nothing(stack: trials.Stack) -> None:
    """Members join and leave (one killed, one stopped): no record lost, and each lead's calls
    (its creation, then its updates) reach LeadSquared in offset order."""
    trial, report = trials.rebalance(stack, records=600)
    _complete(trial)
    assert report.lost == 0
    order: dict[str, list[str]] = defaultdict(list)
    for call in trial.calls():
        if call.answer == "accepted":
            body = json.loads(call.body)
            email = next(a["Value"] for a in body if a["Attribute"] == "EmailAddress")
            city = next((a["Value"] for a in body if a["Attribute"] == "mx_City"), None)
            if not order[email] or order[email][-1] != city:  # repeats after a kill collapse
                order[email].append(str(city))
    for email, cities in order.items():
        updates = [c for c in cities if c.startswith("City ")]
        assert updates == sorted(updates, key=lambda c: int(c.split()[1])), email
        assert not cities[0].startswith("City ") or len(set(cities)) == len(cities), email


def test_outage_holds_records_and_recovers_by_itself(stack: trials.Stack) -> None:
    """35 s without LeadSquared (503s, then refused connections): no record is dead-lettered,
    commits never pass a record without an outcome, and everything is delivered after it."""
    trial, report = trials.outage(stack, records=150, seconds=35.0)
    _complete(trial)
    assert (report.lost, report.dead_lettered) == (0, 0)
    assert report.recovery_s is not None
    [sink] = trial.sinks
    assert len(sink.events("account.unavailable")) >= 1
    assert len(sink.events("account.available_again")) >= 1


def test_answers_slower_than_the_timeout_are_retried(stack: trials.Stack) -> None:
    """Calls timing out are retried (counted as ambiguous: LeadSquared may have them) and every
    record is delivered; none is dead-lettered."""
    trial, report = trials.slow_answers(stack, records=150)
    _complete(trial)
    assert (report.lost, report.dead_lettered) == (0, 0)
    summary = trial.sinks[0].summary()
    assert summary is not None
    assert summary["ambiguous_retries"] >= 1


@pytest.mark.parametrize("style", ["http429", "body200"])
def test_throttle_storm_is_retried_never_dead_lettered(stack: trials.Stack, style: str) -> None:
    """40 throttle answers (HTTP 429, or the rate-limit body with HTTP 200): the account cools
    down, the records are retried, none is dead-lettered."""
    trial, report = trials.throttle_storm(stack, records=120, style=style)
    _complete(trial)
    assert (report.lost, report.dead_lettered) == (0, 0)
    summary = trial.sinks[0].summary()
    assert summary is not None
    assert summary["throttled"] >= 1


def test_mx_exceptions_are_dead_lettered_with_their_type(stack: trials.Stack) -> None:
    """MX exceptions with HTTP 500 and with HTTP 200 dead-letter exactly those records, with the
    exception type and status in the headers; everything else is accepted and committed."""
    trial, report = trials.mx_errors(stack, records=120)
    _complete(trial)
    assert report.dead_lettered == 10
    headers = [
        dict(r.headers) for r in read_all(stack.broker.bootstrap_servers, trial.dead_letters)
    ]
    assert {h["lsq.exception.type"] for h in headers} == {b"MXDuplicateEntryException"}
    assert sorted(h["lsq.http.status"] for h in headers) == [b"200"] * 5 + [b"500"] * 5
    assert {h["lsq.error.stage"] for h in headers} == {b"submit"}


def test_rejected_keys_hold_everything_and_recover_when_restored(stack: trials.Stack) -> None:
    """After LeadSquared starts rejecting the keys: one clear error, nothing dead-lettered,
    commits never pass a record without an outcome; once the keys work again, everything is
    delivered without a restart."""
    trial, report = trials.key_rotation(stack, records=150)
    _complete(trial)
    assert (report.lost, report.dead_lettered) == (0, 0)
    [sink] = trial.sinks
    [rejected] = sink.events("account.rejected")
    assert rejected["level"] == "error"
    assert "HTTP 403" in rejected["reason"]
    assert len(sink.events("account.accepted_again")) == 1


def test_group_changes_survive_librdkafka_debug_logging(stack: trials.Stack) -> None:
    """With librdkafka's group debug logs on (each one a callback served inside poll and close),
    a member joining and two SIGTERMs run clean: the rebalance handling makes no Kafka client
    call that breaks the client's callback state (which aborts the process)."""
    config = trials.FAST_LIMIT | {"kafka": {"consumer": {"debug": "cgrp"}}}
    with Simulator(SimConfig(rate_limit=RateLimit(calls=trials.FAST, window_s=5.0))) as sim:
        with stack.trial(sim, config=config) as trial:
            trial.produce(60)
            a = trial.start("member-a")
            a.wait_for(lambda: bool(a.events("account.budget")), 60, "member-a's budget")
            b = trial.start("member-b")
            b.wait_for(lambda: bool(b.events("account.budget")), 60, "member-b's budget")
            trial.wait_done(b, 120)
            assert (a.stop(), b.stop()) == (0, 0), a.tail() + b.tail()
        _complete(trial)
