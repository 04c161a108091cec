"""The pipeline's invariants (SPEC §2) and error handling (SPEC §6), step by step, with fakes."""

from __future__ import annotations

import pytest

from connector.flow.accounts import MAIN
from connector.records import Accepted, Answer, DeadLetter
from connector.settings.model import FlowSettings, RetrySettings
from tests.unit.pipeline_fakes import (
    ACCEPTED,
    DUPLICATE,
    FORBIDDEN,
    THROTTLED,
    UNAVAILABLE,
    harness,
    record,
)


def test_accepted_record_gets_a_result_and_its_offset_is_committed() -> None:
    """Consume → call → results record → commit offset + 1."""
    h = harness()
    h.feed(record(0, "a", "a@x.io"))
    h.turn()
    assert len(h.calls.sent) == 1
    assert h.input.committed_positions() == {}
    h.calls.answer(ACCEPTED)
    h.turn()
    [written] = h.output.written
    assert written.kind == "result"
    assert isinstance(written.data, Accepted)
    assert (written.data.request_id, written.data.attempts) == ("req-1", 1)
    assert h.input.committed_positions() == {("leads", 0): 1}
    assert (h.pipeline.tally.accepted, h.pipeline.tally.lost) == (1, 0)


def test_no_commit_before_the_result_is_acknowledged() -> None:
    """Invariant 1: an accepted call whose results record is not yet acknowledged commits
    nothing, and a later acknowledged record does not move the commit past it."""
    h = harness(auto_ack=False)
    h.feed(record(0, "a", "a@x.io"), record(1, "b", "b@x.io"))
    h.turn()
    h.calls.answer(ACCEPTED)
    h.turn()
    assert len(h.output.unacked) == 2
    h.output.ack(lambda w: w.record.offset == 1)
    h.turn()
    assert h.input.committed_positions() == {}
    h.output.ack(lambda _: True)
    h.turn()
    assert h.input.committed_positions() == {("leads", 0): 2}


def test_every_consumed_record_gets_exactly_one_outcome() -> None:
    """Invariant 2: accepted, dead-lettered (bad JSON, mapping failure, MX error) and skipped
    (tombstone, delete) records all have exactly one outcome; nothing is lost."""
    h = harness()
    h.feed(
        record(0, "a", "a@x.io"),
        record(1, "b", None),  # no EmailAddress: mapping failure
        record(2, "c", "c@x.io", value=None),  # tombstone
        record(3, "d", "d@x.io", op="d"),  # delete: skipped by default
        record(4, "e", "dup@x.io"),
    )
    h.turn()
    h.calls.answer(ACCEPTED, lambda s: s.ticket == 0)
    h.calls.answer(DUPLICATE, lambda s: s.ticket == 1)
    h.turn()
    assert h.output.kinds() == {0: "result", 1: "dead_letter", 4: "dead_letter"}
    tally = h.pipeline.tally
    assert (tally.consumed, tally.accepted, tally.dead_lettered, tally.skipped) == (5, 1, 2, 2)
    assert tally.lost == 0
    assert h.input.committed_positions() == {("leads", 0): 5}
    mx = next(w.data for w in h.output.written if w.record.offset == 4)
    assert isinstance(mx, DeadLetter)
    assert (mx.stage, mx.exception_type, mx.http_status) == (
        "submit",
        "MXDuplicateEntryException",
        200,
    )


def test_calls_per_window_never_exceed_the_budget() -> None:
    """Invariant 3: with a backlog, no window of W seconds holds more than N sends."""
    h = harness(calls=5, window=1.0, concurrency=8)
    h.feed(*(record(i, f"k{i}", f"l{i}@x.io") for i in range(40)))
    for _ in range(400):
        h.turn()
        h.calls.answer(ACCEPTED)
        h.clock.advance(0.05)
    times = sorted(s.at for s in h.calls.sent)
    assert len(times) == 40
    assert max(sum(1 for t in times if start <= t < start + 1.0) for start in times) <= 5


def test_throttle_answer_cools_the_account_down_and_retries_never_dead_letters() -> None:
    """Invariant 3: a 429 closes the whole account for the cool-down; the record is retried."""
    h = harness(window=5.0)
    h.feed(record(0, "a", "a@x.io"), record(1, "b", "b@x.io"))
    h.turn()
    h.calls.answer(THROTTLED, lambda s: s.ticket == 0)
    h.calls.answer(ACCEPTED, lambda s: s.ticket == 1)
    h.turn()
    assert h.account.gates[MAIN].wait(h.clock()) == pytest.approx(5.0, abs=0.01)
    h.clock.advance(4.9)
    h.turn()
    assert len(h.calls.sent) == 2
    h.clock.advance(0.1)
    h.turn()
    assert h.calls.emails == ["a@x.io", "b@x.io", "a@x.io"]
    h.calls.answer(ACCEPTED)
    h.turn()
    assert h.output.kinds() == {0: "result", 1: "result"}
    assert h.pipeline.tally.throttled == 1


def test_same_key_is_called_in_offset_order_other_keys_in_parallel() -> None:
    """Invariant 4: the second record of a key waits for the first's outcome."""
    h = harness()
    h.feed(
        record(0, "k", "first@x.io"), record(1, "j", "other@x.io"), record(2, "k", "second@x.io")
    )
    h.turn()
    assert h.calls.emails == ["first@x.io", "other@x.io"]
    h.calls.answer(UNAVAILABLE, lambda s: s.ticket == 0)
    h.turn()
    h.clock.advance(60)
    h.turn()
    assert h.calls.emails == ["first@x.io", "other@x.io", "first@x.io"]
    h.calls.answer(ACCEPTED)
    h.turn()
    assert h.calls.emails[-1] == "second@x.io"


def test_input_pauses_when_too_much_is_in_flight_and_resumes_below() -> None:
    """Invariant 5: at the record bound the partitions are paused (no more records consumed),
    and they resume once in-flight records drop to 80% of it."""
    h = harness(concurrency=1, flow=FlowSettings(max_in_flight_records=10, poll_batch_size=10))
    h.feed(*(record(i, f"k{i}", f"l{i}@x.io") for i in range(30)))
    h.turn()
    assert h.input.paused == {("leads", 0)}
    h.calls.answer(ACCEPTED)
    h.turn()
    assert (h.input.paused, h.pipeline.tally.consumed) == ({("leads", 0)}, 10)  # 9 in flight
    h.calls.answer(ACCEPTED)
    h.turn()
    assert h.input.paused == set()  # 8 in flight: resumed
    h.turn()
    assert (h.input.paused, h.pipeline.tally.consumed) == ({("leads", 0)}, 20)


def test_a_record_failing_while_others_succeed_is_dead_lettered_after_max_attempts() -> None:
    """A record whose calls keep failing (5xx) while other calls succeed is retried with backoff
    up to max_attempts, then dead-lettered as retries_exhausted."""
    h = harness(retry=RetrySettings(max_attempts=3, backoff_base_seconds=1.0))
    h.feed(record(0, "bad", "bad@x.io"))
    for i in range(3):
        h.turn()
        h.calls.answer(UNAVAILABLE, lambda s: s.request.body[0]["Value"] == "bad@x.io")  # type: ignore[index]
        h.feed(record(i + 1, f"ok{i}", f"ok{i}@x.io"))
        h.turn()
        h.calls.answer(ACCEPTED, lambda s: s.request.body[0]["Value"] != "bad@x.io")  # type: ignore[index]
        h.turn()
        h.clock.advance(10)
    h.turn()
    assert h.calls.emails.count("bad@x.io") == 3
    bad = next(w for w in h.output.written if w.record.offset == 0)
    assert isinstance(bad.data, DeadLetter)
    assert bad.data.reason.startswith("retries_exhausted: HTTP 503")
    assert (bad.data.error_class, bad.data.attempts) == ("RetriesExhausted", 3)


def test_an_outage_holds_records_probes_and_recovers_without_dead_letters() -> None:
    """When every call fails, LeadSquared counts as down: records are not dead-lettered however
    long it lasts, one probe at a time goes out at growing intervals (at most probe_max), and
    everything is delivered once it answers again."""
    retry = RetrySettings(max_attempts=2, backoff_base_seconds=1.0, probe_max_seconds=4.0)
    h = harness(retry=retry)
    h.feed(*(record(i, f"k{i}", f"l{i}@x.io") for i in range(6)))
    h.turn()
    assert len(h.calls.sent) == 4  # concurrency 4
    for _ in range(20):  # a long outage: 20 rounds of failures
        h.calls.answer(UNAVAILABLE)
        h.turn()
        assert h.calls.in_flight <= 1  # only a probe is ever out
        h.clock.advance(4.0)
        h.turn()
    assert h.output.written == []
    assert h.account.looks_down  # outage_threshold 3
    h.calls.answer(ACCEPTED)  # LeadSquared is back
    for _ in range(10):
        h.turn()
        h.calls.answer(ACCEPTED)
        h.clock.advance(1.0)
    assert h.output.kinds() == dict.fromkeys(range(6), "result")
    assert not h.account.looks_down


def test_records_with_outcomes_from_before_a_restart_are_not_called_again() -> None:
    """On assignment, offsets past the commit that already have an outcome (found by the
    recovery port) are marked done without a call, and commits move past them."""
    h = harness(recovered={("leads", 0): {1, 2}})
    h.feed(*(record(i, f"k{i}", f"l{i}@x.io") for i in range(4)))
    h.pipeline.assigned([("leads", 0)])
    h.turn()
    assert h.calls.emails == ["l0@x.io", "l3@x.io"]
    h.calls.answer(ACCEPTED)
    h.turn()
    assert h.input.committed_positions() == {("leads", 0): 4}
    assert (h.pipeline.tally.recovered, h.pipeline.tally.lost) == (2, 0)


def test_rejected_keys_hold_the_account_without_dead_letters_or_commits() -> None:
    """401/403: nothing is dead-lettered or committed; one probe per interval; recovery."""
    h = harness(retry=RetrySettings(auth_retry_seconds=30))
    h.feed(record(0, "a", "a@x.io"), record(1, "b", "b@x.io"))
    h.turn()
    h.calls.answer(FORBIDDEN)
    h.turn()
    assert h.account.rejected == "HTTP 403: Forbidden"
    h.clock.advance(29)
    h.turn()
    assert (len(h.calls.sent), h.output.written, h.input.committed_positions()) == (2, [], {})
    h.clock.advance(1)
    h.turn()
    assert len(h.calls.sent) == 3  # a single probe
    h.calls.answer(ACCEPTED)
    h.turn()
    h.turn()
    assert not h.account.rejected  # cleared by the accepted probe
    h.calls.answer(ACCEPTED)
    h.turn()
    assert h.input.committed_positions() == {("leads", 0): 2}


def test_rebalances_inside_poll_reshare_the_budget_before_the_next_call() -> None:
    """Partitions assigned or revoked from inside a poll (as librdkafka delivers them) set this
    replica's share of the account's budget once that poll returns, before anything is sent;
    the callbacks make no metadata request (the fake input fails if they do)."""
    h = harness(calls=20, concurrency=20)
    h.input.cluster = {"leads": 4}
    h.input.rebalances.append(("assigned", [("leads", 0), ("leads", 1)]))
    h.feed(*(record(i, f"k{i}", f"l{i}@x.io") for i in range(30)))
    h.turn()
    assert len(h.calls.sent) == 10  # two partitions of four: half of 20 calls per window
    h.input.rebalances.append(("revoked", [("leads", 1)]))
    h.calls.answer(ACCEPTED)
    h.turn()
    h.clock.advance(5.0)  # the answered calls leave the window
    h.turn()
    assert len(h.calls.sent) == 15  # one partition of four: 5 calls per window


def test_revoke_finishes_calls_in_flight_commits_and_hands_back_the_rest() -> None:
    """On revoke, answers of calls in flight are recorded and committed; queued work is dropped
    and a late answer of a dropped call changes nothing."""
    h = harness(concurrency=1)
    h.feed(record(0, "a", "a@x.io"), record(1, "b", "b@x.io"))
    h.turn()
    h.calls.answer(ACCEPTED)  # the answer arrives while the revoke waits
    h.pipeline.revoked([("leads", 0)])
    assert h.input.committed_positions() == {("leads", 0): 1}
    assert len(h.calls.sent) == 1
    h.feed()
    h.turn()
    assert h.pipeline.tally.accepted == 1


def test_shutdown_fills_gaps_so_done_records_are_committed() -> None:
    """A graceful stop sends the records lying behind done ones (same key waited), so the
    commit covers every done record and a restart repeats no call."""
    h = harness(concurrency=4)
    h.feed(record(0, "k", "first@x.io"), record(1, "k", "second@x.io"), record(2, "j", "j@x.io"))
    h.turn()
    h.calls.answer(ACCEPTED, lambda s: s.ticket == 1)  # offset 2 done; 1 waits for 0
    h.turn()
    h.pipeline.request_stop()
    h.calls.answer(ACCEPTED, lambda s: s.ticket == 0)

    answered = []

    def answer_next(timeout: float) -> list[tuple[int, Answer]]:
        h.calls.answer(ACCEPTED)
        answered.append(timeout)
        return type(h.calls).collect(h.calls, timeout)

    h.calls.collect = answer_next  # type: ignore[method-assign]
    h.pipeline.run()
    assert h.calls.emails == ["first@x.io", "j@x.io", "second@x.io"]
    assert h.input.committed_positions() == {("leads", 0): 3}
    assert h.input.closed


def test_commit_failure_is_retried_on_the_next_turn() -> None:
    """A failed commit (e.g. during a rebalance) is attempted again later."""
    h = harness()
    h.feed(record(0, "a", "a@x.io"))
    h.turn()
    h.input.commit_error = "REBALANCE_IN_PROGRESS"
    h.calls.answer(ACCEPTED)
    h.turn()
    assert h.input.committed_positions() == {}
    h.input.commit_error = None
    h.turn()
    assert h.input.committed_positions() == {("leads", 0): 1}


def test_permanent_http_errors_dead_letter_at_submit_with_status() -> None:
    """A 400 is dead-lettered at stage submit with the HTTP status."""
    h = harness()
    h.feed(record(0, "a", "a@x.io"))
    h.turn()
    h.calls.answer(Answer(400, b"bad body"))
    h.turn()
    [written] = h.output.written
    assert isinstance(written.data, DeadLetter)
    assert (written.data.stage, written.data.http_status, written.data.reason) == (
        "submit",
        400,
        "HTTP 400: bad body",
    )


def test_the_loop_waits_for_answers_only_while_calls_are_out() -> None:
    """With nothing in flight the loop never blocks on answers (it would sit on new records);
    with calls out and no new records it waits for them."""
    h = harness()
    h.turn()
    assert h.calls.waits == [0]
    h.feed(record(0, "a", "a@x.io"))
    h.turn()  # records arrived: no waiting, the call goes out
    h.turn()  # a call is out, no records: wait for its answer
    assert h.calls.waits[1] == 0
    assert h.calls.waits[2] > 0
