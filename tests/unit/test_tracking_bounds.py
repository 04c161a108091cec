"""Completion tracking's bounds (SPEC §2 invariants 5 and 10, §13): at most ``status.max_checks``
checks held, the rest counted, never waited for; give-ups on schedule whatever a backlog does; a
restart ends checks past their give-up time ``unknown``; the memory a check costs, measured."""

from __future__ import annotations

import gc
import tracemalloc
from typing import TYPE_CHECKING

import pytest
from pydantic import ValidationError
from structlog.testing import capture_logs

from connector.adapters.ledger import UnfinishedRead
from connector.adapters.metrics import families
from connector.flow.checks import Checks
from connector.flow.codec import result
from connector.flow.follow_ups import Check
from connector.flow.observe import Snapshot, TrackingView
from connector.flow.tally import Tally
from connector.records import Accepted, SourceRecord, Unfinished
from connector.settings.status import StatusSettings
from tests.unit.pipeline_fakes import harness, route
from tests.unit.tracking_fakes import (
    FIRST_POLL,
    IN_QUEUE,
    SUCCESS,
    deliver,
    follow_ups,
    request_id,
    status_settings,
)

if TYPE_CHECKING:
    from collections.abc import Callable

WALL = 1_700_000_000.0


# -- at most max_checks -------------------------------------------------------------------------


def test_at_most_max_checks_are_held_and_the_calls_past_them_are_counted_not_waited_for() -> None:
    h = harness(calls=100, concurrency=100, status=status_settings(max_checks=3))
    assert h.tracked is not None
    with capture_logs() as logs:
        deliver(h, 10)
        h.turn()
    assert h.input.committed_positions() == {("leads", 0): 10}  # the flow never waits for room
    assert h.pipeline.tally.status_checks_skipped == 7
    assert [log["max_checks"] for log in logs if log["event"] == "status.checks_full"] == [3]
    h.clock.advance(FIRST_POLL)
    h.turn()
    assert sorted(request_id(s) for s in h.tracked.calls.sent) == ["req-0", "req-1", "req-2"]
    h.tracked.calls.answer(SUCCESS)
    h.turn()
    assert sorted(offset for offset, _ in follow_ups(h)) == [0, 1, 2]
    deliver(h, 2, start=10)  # room again: new calls are checked
    assert h.pipeline.tally.status_checks_skipped == 7
    h.clock.advance(FIRST_POLL)
    h.turn()
    assert len(h.tracked.calls.sent) == 5


def test_canary_calls_are_checked_even_past_max_checks() -> None:
    """A canary call is always checked (a route's canary waits for its checks); at most
    ``canary.calls`` of them per route go past the bound."""
    h = harness(status=status_settings(max_checks=1, canary={"calls": 3}))
    assert h.tracked is not None
    deliver(h, 3)
    h.clock.advance(FIRST_POLL)
    h.turn()
    assert len(h.tracked.calls.sent) == 3
    assert h.pipeline.tally.status_checks_skipped == 0


def test_the_calls_not_checked_are_a_counter_metric() -> None:
    tally = Tally(status_checks_skipped=7)
    served = families(Snapshot(tally=tally, tracking=TrackingView(3, (), ())))
    [family] = [f for f in served if f.name == "lsq_sink_status_checks_skipped"]
    assert family.type == "counter"
    assert [(s.name, s.value) for s in family.samples if s.name.endswith("_total")] == [
        ("lsq_sink_status_checks_skipped_total", 7)
    ]


def test_max_checks_defaults_to_ten_thousand_and_is_validated() -> None:
    assert StatusSettings().max_checks == 10_000
    for wrong in (0, -1, 2_000_000):
        with pytest.raises(ValidationError, match="max_checks"):
            StatusSettings(max_checks=wrong)


# -- given up on schedule -----------------------------------------------------------------------


def test_a_check_no_poll_reaches_is_given_up_unknown_after_one_poll_interval_more() -> None:
    """A backlog (here: no call at all) that keeps a check from every poll does not keep it for
    good: ``max_poll_interval_seconds`` after its give-up time it ends ``unknown``, saying why."""
    h = harness(status=status_settings(give_up_seconds=30.0))  # polls up to 40 s apart
    assert h.tracked is not None
    deliver(h, 1)
    h.account.gates["main"].cool_down(h.clock(), 1000.0)
    for _ in range(13):  # 65 s
        h.clock.advance(5.0)
        h.turn()
    assert follow_ups(h) == []  # within its grace: it may still be polled once
    h.clock.advance(6.0)
    h.turn()
    [(_, follow)] = follow_ups(h)
    assert follow.status == "unknown"
    assert follow.reason == (
        "not polled within 70 s: status polls were held back (backlog or budget)"
    )
    assert h.tracked.calls.sent == []


def test_a_check_first_polled_in_its_grace_gets_that_one_poll_only() -> None:
    h = harness(status=status_settings(give_up_seconds=30.0))
    assert h.tracked is not None
    deliver(h, 1)
    h.account.gates["main"].cool_down(h.clock(), 45.0)
    for _ in range(10):  # 50 s: polled once, after the cool-down
        h.clock.advance(5.0)
        h.turn()
    assert len(h.tracked.calls.sent) == 1
    h.tracked.calls.answer(IN_QUEUE)
    h.turn()
    [(_, follow)] = follow_ups(h)
    assert follow.status == "unknown"
    assert follow.reason == "no terminal status within 30 s (last poll: In-Queue)"
    h.clock.advance(60.0)
    h.turn()
    assert len(h.tracked.calls.sent) == 1


def test_a_polled_check_is_given_up_at_its_give_up_time_not_at_its_next_poll() -> None:
    h = harness(status=status_settings(give_up_seconds=30.0))
    assert h.tracked is not None
    deliver(h, 1)
    for wait in (5.0, 10.0):  # polls at 5 and 15 s (In-Queue); the next one would be at 35 s
        h.clock.advance(wait)
        h.turn()
        h.tracked.calls.answer(IN_QUEUE)
        h.turn()
    h.clock.advance(16.0)  # 31 s
    h.turn()
    [(_, follow)] = follow_ups(h)
    assert follow.status == "unknown"
    assert (follow.reason or "").startswith("no terminal status within 30 s")
    assert len(h.tracked.calls.sent) == 2


def test_a_check_whose_poll_is_out_at_its_give_up_time_ends_with_that_polls_answer() -> None:
    h = harness(status=status_settings(give_up_seconds=30.0))
    assert h.tracked is not None
    deliver(h, 1)
    h.clock.advance(29.0)
    h.turn()  # the first poll, just before the give-up time
    assert len(h.tracked.calls.sent) == 1
    h.clock.advance(2.0)
    h.turn()
    assert follow_ups(h) == []  # its answer decides
    h.tracked.calls.answer(IN_QUEUE)
    h.turn()
    [(_, follow)] = follow_ups(h)
    assert follow.status == "unknown"
    assert "(last poll: In-Queue)" in (follow.reason or "")


# -- read back after a restart ------------------------------------------------------------------


def test_a_restart_ends_checks_found_past_their_give_up_time_unknown_with_a_reason() -> None:
    h = harness(status=status_settings(give_up_seconds=600.0))
    assert h.tracked is not None
    wall = WALL + h.clock()
    h.tracked.unchecked.found = [
        Unfinished(SourceRecord("leads", 0, 7, b"k7", None), "req-old", 2, wall - 700),
        Unfinished(SourceRecord("leads", 0, 8, b"k8", None), "req-old", 2, wall - 700),
        Unfinished(SourceRecord("leads", 0, 9, b"k9", None), "req-new", 1, wall - 100),
    ]
    h.input.rebalances.append(("assigned", [("leads", 0)]))
    h.turn()
    [(_, since)] = h.tracked.unchecked.asked
    assert since == wall - 1200.0
    follow = dict(follow_ups(h))
    assert sorted(follow) == [7, 8]
    assert {(a.status, a.request_id, a.attempts) for a in follow.values()} == {
        ("unknown", "req-old", 2)
    }
    assert {a.reason for a in follow.values()} == {
        "not checked within give_up_seconds (600 s): found unfinished on assignment"
    }
    h.turn()
    assert [request_id(s) for s in h.tracked.calls.sent] == ["req-new"]  # within: polled


def test_a_restart_holds_no_more_than_max_checks_and_counts_the_rest() -> None:
    h = harness(status=status_settings(max_checks=2))
    assert h.tracked is not None
    wall = WALL + h.clock()
    h.tracked.unchecked.found = [
        Unfinished(SourceRecord("leads", 0, i, None, None), f"req-{i}", 1, wall - 10)
        for i in range(5)
    ]
    h.input.rebalances.append(("assigned", [("leads", 0)]))
    h.turn(2)
    assert [request_id(s) for s in h.tracked.calls.sent] == ["req-0", "req-1"]
    assert h.pipeline.tally.status_checks_skipped == 3


def test_the_unfinished_read_back_holds_at_most_its_limit() -> None:
    read = UnfinishedRead({("leads", 0)}, WALL, limit=2)
    accepted = Accepted("capture", "leads", "main", "req", None, 0, 1, 200)
    for offset in range(4):
        source = SourceRecord("leads", 0, offset, b"k", None)
        read.add(dict(result(source, accepted)[1]), b"k", WALL + 1)
    done = SourceRecord("leads", 0, 0, b"k", None)
    follow = Accepted("capture", "leads", "main", "req", None, 0, 1, 200, status="succeeded")
    read.add(dict(result(done, follow)[1]), b"k", WALL + 2)  # a follow-up: 0 is finished
    assert sorted(offset for _, offset in read.found) == [1]
    assert read.dropped == 2


# -- what it costs ------------------------------------------------------------------------------


def _bytes_per(count: int, make: Callable[[int], object]) -> float:
    """Bytes ``make(count)`` allocates and keeps, per item."""
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        kept = make(count)
        gc.collect()
        used = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert kept is not None
    return used / count


def _checks(count: int, records: int) -> Checks:
    checks, the_route = Checks(count, 3600.0, 300.0), route()
    for i in range(count):
        rid = f"{i:08d}-2c1a-4d7e-9b3f-6a5e4d3c2b1a"  # LeadSquared's RequestIDs are UUIDs
        kept = [
            SourceRecord("leads", 3, i * records + j, b"customer-%012d" % j, None, (), 0)
            for j in range(records)
        ]
        accepted = Accepted("capture", "leads", "main", rid, None, 0, 1, 200)
        checks.add(Check(rid, the_route, kept, accepted, WALL + i, WALL + i), WALL + i + 5)
    return checks


def test_a_check_holds_under_a_kilobyte_and_each_further_record_a_quarter_of_one() -> None:
    """The README's figures: about 850 bytes per check of a one-record call, about 180 more per
    further record of the call (measured with tracemalloc, heaps and index included)."""
    one = _bytes_per(2000, lambda n: _checks(n, 1))
    many = _bytes_per(200, lambda n: _checks(n, 25))
    assert 300 < one < 1024
    assert (many - one) / 24 < 256


def _unfinished(count: int) -> UnfinishedRead:
    read = UnfinishedRead({("leads", 3)}, WALL, limit=count)
    for i in range(count):
        source = SourceRecord("leads", 3, i, b"customer-%012d" % i, None)
        rid = f"{i:08d}-2c1a-4d7e-9b3f-6a5e4d3c2b1a"
        accepted = Accepted("capture", "leads", "main", rid, None, 0, 1, 200)
        read.add(dict(result(source, accepted)[1]), source.key, WALL + 1)
    return read


def test_an_unfinished_record_read_back_holds_about_half_a_kilobyte() -> None:
    """The figure behind ``MAX_UNFINISHED`` (50,000 records: about 25 MB while a restart reads)."""
    assert 200 < _bytes_per(2000, _unfinished) < 640


def test_finished_checks_leave_no_entries_behind() -> None:
    """Twenty thousand checks through a bound of one: the heaps drop their stale entries, memory
    stays flat."""
    checks, the_route = Checks(1, 3600.0, 300.0), route()
    gc.collect()
    tracemalloc.start()
    try:
        for i in range(20_000):
            rid = f"req-{i}"
            record = SourceRecord("leads", 0, i, None, None)
            accepted = Accepted("capture", "leads", "main", rid, None, 0, 1, 200)
            checks.add(Check(rid, the_route, [record], accepted, WALL, WALL), WALL + 5)
            checks.remove(rid)
        gc.collect()
        used = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert len(checks) == 0
    assert used < 512 * 1024
