"""Completion tracking in the loop (SPEC §13), over fakes: Status API polls of accepted calls under
the account's budget, follow-up results records and late dead letters, checks that survive a
restart, the canary that halts a route, and pacing by LeadSquared's queue."""

from __future__ import annotations

import json

from connector.records import Answer, DeadLetter, SourceRecord, Unfinished
from tests.unit.pipeline_fakes import harness, record
from tests.unit.tracking_fakes import (
    DUPLICATE,
    FIRST_POLL,
    IN_QUEUE,
    SUCCESS,
    TYPO,
    accept_all,
    deliver,
    follow_ups,
    request_id,
    status_settings,
)


def test_each_accepted_call_is_polled_until_terminal_and_gets_one_follow_up_per_record() -> None:
    h = harness(status=status_settings())
    assert h.tracked is not None
    polls = h.tracked.calls
    deliver(h, 4)
    assert polls.sent == []  # not before first_poll_seconds
    h.clock.advance(FIRST_POLL)
    h.turn()
    assert sorted(request_id(s) for s in polls.sent) == [f"req-{t}" for t in range(4)]
    assert {s.request.endpoint.path for s in polls.sent} == {"/lead/status"}
    polls.answer(IN_QUEUE)
    h.turn(2)
    assert len(polls.sent) == 4  # polled again only after the back-off
    h.clock.advance(2 * FIRST_POLL)
    h.turn()
    assert len(polls.sent) == 8
    polls.answer(SUCCESS)
    h.turn(2)
    follow = follow_ups(h)
    assert sorted(offset for offset, _ in follow) == [0, 1, 2, 3]
    assert {(a.status, a.lead_id, a.reason) for _, a in follow} == {
        ("succeeded", "lead-9", "Request was successfully completed")
    }
    assert all(a.completed_at_ms is not None for _, a in follow)
    assert h.pipeline.tally.succeeded == 4
    assert h.pipeline.tally.status_calls == 8


def test_commits_never_wait_for_a_check() -> None:
    h = harness(status=status_settings())
    deliver(h, 3)
    h.turn()
    assert h.input.committed_positions() == {("leads", 0): 3}
    assert h.pipeline.tally.succeeded == 0


def test_a_failed_request_is_dead_lettered_as_it_was_and_its_follow_up_says_why() -> None:
    h = harness(status=status_settings())
    assert h.tracked is not None
    original = record(0, "k0", "lead0@example.com")
    h.tracked.originals.stored[(("leads", 0), 0)] = original
    deliver(h, 2)  # the second one is no longer readable
    h.clock.advance(FIRST_POLL)
    h.turn()
    h.tracked.calls.answer(DUPLICATE)
    h.turn(2)
    follow = dict(follow_ups(h))
    assert {a.status for a in follow.values()} == {"failed"}
    assert follow[0].reason == "A Lead with same Email already exists."
    assert "no longer readable" in (follow[1].reason or "")
    letters = [w for w in h.output.written if w.kind == "dead_letter"]
    assert [w.record for w in letters] == [original]  # key, value and headers as consumed
    why = letters[0].data
    assert isinstance(why, DeadLetter)
    assert (why.stage, why.exception_type) == ("leadsquared", "MXDuplicateEntryException")
    assert h.pipeline.tally.failed == 2
    assert h.pipeline.tally.dead_lettered_late == 1


def test_no_terminal_status_before_the_give_up_time_is_unknown() -> None:
    h = harness(status=status_settings(give_up_seconds=30.0))
    assert h.tracked is not None
    deliver(h, 1)
    for _ in range(20):
        h.clock.advance(5.0)
        h.turn()
        h.tracked.calls.answer(Answer(404, b'{"message":"No request found"}'))
    [(_, follow)] = follow_ups(h)
    assert follow.status == "unknown"
    assert "no terminal status within 30 s" in (follow.reason or "")
    assert "404" in (follow.reason or "")
    assert len(h.tracked.calls.sent) == 2  # at 5 and 15 s; the next would be at 35 s


def test_unfinished_checks_read_back_on_assignment_are_polled() -> None:
    h = harness(status=status_settings())
    assert h.tracked is not None
    wall = 1_700_000_000.0 + h.clock()
    kept = SourceRecord("leads", 0, 7, b"k7", None)
    h.tracked.unchecked.found = [Unfinished(kept, "req-old", 2, wall - 100)]
    h.input.rebalances.append(("assigned", [("leads", 0)]))
    h.turn()
    [(tps, since)] = h.tracked.unchecked.asked
    assert tps == [("leads", 0)]
    assert since == wall - 2 * 600.0  # two give_up_seconds: the older half ends unknown
    h.turn()
    assert [request_id(s) for s in h.tracked.calls.sent] == ["req-old"]  # overdue: at once
    h.tracked.calls.answer(SUCCESS)
    h.turn()
    [(offset, follow)] = follow_ups(h)
    assert (offset, follow.request_id, follow.attempts, follow.status) == (
        7,
        "req-old",
        2,
        "succeeded",
    )


def test_polls_take_spare_calls_but_at_most_their_share_while_records_wait() -> None:
    h = harness(calls=10, window=1.0, concurrency=50, status=status_settings(max_share=0.2))
    assert h.tracked is not None
    deliver(h, 20)
    h.clock.advance(FIRST_POLL)
    h.feed(*(record(i, f"k{i}", f"lead{i}@example.com") for i in range(20, 220)))
    sent_before = len(h.calls.sent)
    for _ in range(1000):  # 1 s: one window
        h.turn()
        accept_all(h.calls)
    assert len(h.tracked.calls.sent) == 2  # 20% of 10, although 20 polls are due
    assert len(h.calls.sent) - sent_before >= 7
    h.calls.answer(Answer(500, b""))  # nothing more waits to be sent...
    h.pipeline.step()
    h2 = harness(calls=10, window=1.0, concurrency=50, status=status_settings(max_share=0.2))
    assert h2.tracked is not None
    deliver(h2, 20)
    h2.clock.advance(FIRST_POLL)
    h2.turn()  # ...no backlog: polls take every spare call
    assert len(h2.tracked.calls.sent) >= 8


def test_the_canary_halts_a_route_whose_mapping_leadsquared_refuses() -> None:
    h = harness(status=status_settings(canary={"calls": 3}))
    assert h.tracked is not None
    h.feed(*(record(i, f"k{i}", f"lead{i}@example.com") for i in range(10)))
    for _ in range(20):
        h.turn()
        accept_all(h.calls)
    assert len(h.calls.sent) == 3  # the canary: no more until they are checked
    h.clock.advance(FIRST_POLL)
    h.turn()
    h.tracked.calls.answer(TYPO)
    for _ in range(20):
        h.turn()
        accept_all(h.calls)
    assert len(h.calls.sent) == 3  # halted: nothing more is sent
    assert h.input.committed_positions() == {("leads", 0): 3}  # nor committed past it
    assert ("leads", 0) in h.input.paused
    h.clock.advance(1.0)
    h.turn()
    [reason] = [r for r in h.pipeline.snapshot.not_ready if "halted" in r]
    assert "leads" in reason
    assert "mx_Ciyt" in reason
    assert "does not exist" in reason
    assert h.pipeline.tally.halted == 1


def test_the_canary_lets_a_route_go_once_its_first_calls_succeeded() -> None:
    h = harness(status=status_settings(canary={"calls": 2}))
    assert h.tracked is not None
    h.feed(*(record(i, f"k{i}", f"lead{i}@example.com") for i in range(10)))
    for _ in range(20):
        h.turn()
        accept_all(h.calls)
    assert len(h.calls.sent) == 2
    h.clock.advance(FIRST_POLL)
    h.turn()
    h.tracked.calls.answer(SUCCESS)
    for _ in range(40):
        h.turn()
        accept_all(h.calls)
    assert len(h.calls.sent) == 10
    h.clock.advance(1.0)
    h.turn()
    assert not [r for r in h.pipeline.snapshot.not_ready if "halted" in r]


def test_a_long_leadsquared_queue_holds_the_budget_and_a_short_one_lets_it_recover() -> None:
    h = harness(calls=20, window=1.0, status=status_settings(queue={"poll_seconds": 60.0}))
    assert h.tracked is not None
    h.turn()
    [metrics] = h.tracked.calls.sent
    assert metrics.request.endpoint.path == "/lead/capture/metrics"
    long = {"PendingMessages": 50_000, "MaxDelayInSeconds": 900, "ProcessingratePerMinute": 10}
    h.tracked.calls.answer(Answer(200, json.dumps(long).encode()))
    h.turn()
    assert h.account.budgets["main"].calls == 10
    h.clock.advance(30.0)
    h.turn()
    assert len(h.tracked.calls.sent) == 1  # about once a minute
    h.clock.advance(30.0)
    h.turn()
    short = {"PendingMessages": 3, "MaxDelayInSeconds": 0, "ProcessingRatePerMinute": 300}
    h.tracked.calls.answer(Answer(200, json.dumps(short).encode()))
    h.turn()
    for _ in range(30):
        h.clock.advance(1.0)
        h.turn()
    assert h.account.budgets["main"].calls == 20


def test_sampling_checks_the_same_calls_after_a_restart() -> None:
    h = harness(calls=100, concurrency=100, status=status_settings(sample=0.5))
    assert h.tracked is not None
    deliver(h, 40)
    h.clock.advance(FIRST_POLL)
    h.turn()
    polled = {request_id(s) for s in h.tracked.calls.sent}
    assert 8 <= len(polled) <= 32
    again = harness(calls=100, concurrency=100, status=status_settings(sample=0.5))
    assert again.tracked is not None
    wall = 1_700_000_000.0 + again.clock()
    again.tracked.unchecked.found = [
        Unfinished(SourceRecord("leads", 0, i, None, None), f"req-{i}", 1, wall) for i in range(40)
    ]
    again.input.owned.append(("leads", 0))
    again.input.rebalances.append(("assigned", [("leads", 0)]))
    again.turn()
    again.clock.advance(FIRST_POLL)
    again.turn()
    assert {request_id(s) for s in again.tracked.calls.sent} == polled


def test_a_call_the_gate_frees_while_records_are_sent_is_theirs_not_a_polls() -> None:
    """Time passes inside a turn: a call the gate frees after the records were sent at ``now`` is
    not spare (the records would have taken it a moment later), so polls stay within their share
    while records wait."""
    h = harness(calls=10, window=1.0, concurrency=50, status=status_settings(max_share=0.2))
    assert h.tracked is not None
    deliver(h, 40)
    h.clock.advance(FIRST_POLL)
    h.feed(*(record(i, f"k{i}", f"lead{i}@example.com") for i in range(40, 400)))
    h.clock.drift = 0.0003
    start = h.clock.now
    for _ in range(3000):
        h.turn()
        accept_all(h.calls)
        h.tracked.calls.answer(IN_QUEUE)
    windows = h.clock.now - start
    assert len(h.tracked.calls.sent) <= 2 * (windows + 1)


def test_a_check_a_backlog_kept_from_being_polled_is_polled_once_before_it_gives_up() -> None:
    h = harness(status=status_settings(give_up_seconds=30.0))
    assert h.tracked is not None
    deliver(h, 1)
    h.account.gates["main"].cool_down(h.clock(), 60.0)  # no call at all for a minute
    for _ in range(13):
        h.clock.advance(5.0)
        h.turn()
    assert len(h.tracked.calls.sent) == 1
    assert follow_ups(h) == []
    h.tracked.calls.answer(SUCCESS)
    h.turn()
    [(_, follow)] = follow_ups(h)
    assert follow.status == "succeeded"
