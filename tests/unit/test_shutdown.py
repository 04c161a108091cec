"""A graceful stop ends within its grace (SPEC §2.10, §8 SIGTERM), over fakes on a manual clock:
one deadline, from the signal on, bounds the drain, the commit, the revoke callback librdkafka's
close() makes and the final flushes, with the close reserve left for leaving the group; the drain
waits only for work that can still end. A rebalance's revoke (no stop) keeps its own budget."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from unittest.mock import create_autospec

import pytest

from connector.flow.deadline import CLOSE_RESERVE_S, REVOKE_S, Deadline, Grace
from connector.flow.fingerprints import FingerprintStore
from connector.flow.quota import Quota
from connector.records import Answer
from connector.settings.model import FlowSettings
from connector.settings.status import StatusSettings
from tests.unit.pipeline_fakes import (
    ACCEPTED,
    UNAVAILABLE,
    Clock,
    FakeCalls,
    FakeInput,
    FakeOutput,
    Harness,
    harness,
    record,
)

if TYPE_CHECKING:
    from collections.abc import Collection

    from connector.flow.offsets import TopicPartitionKey

    Count = tuple[TopicPartitionKey, int, int]  # calls spent: partition, time slice, calls

GRACE = 25.0
WORK = GRACE - CLOSE_RESERVE_S  # the stop's deadline: the rest is for leaving the group
SLACK = 0.06  # the drain's last wait for answers (50 ms) may end past its deadline by a tick
FLOW = FlowSettings(commit_interval_seconds=0.001, shutdown_grace_seconds=GRACE)


@dataclass
class ClosingInput(FakeInput):
    """Like librdkafka's consumer: close() calls the revoke callback for the partitions owned
    (leaving the group), and the time each revoke began is kept."""

    clock: Clock = field(default_factory=Clock)
    revokes: list[float] = field(default_factory=list)

    def close(self) -> None:
        assert self.listener is not None
        self.in_callback = True
        self.revokes.append(self.clock.now)
        self.listener.revoked(list(self.owned))
        self.in_callback = False
        self.owned.clear()
        self.closed = True


@dataclass
class SpendingLog:
    """The quota topic: every flush as (when, timeout)."""

    flushes: list[tuple[float, float]] = field(default_factory=list)
    clock: Clock = field(default_factory=Clock)

    def read(self, tps: Collection[TopicPartitionKey], since: float) -> dict[str, list[Count]]:
        del tps, since
        return {}

    def write(self, account: str, counts: Collection[Count]) -> None:
        del account, counts

    def reports(self) -> list[tuple[str, TopicPartitionKey, int, str | None]]:
        return []

    def flush(self, deadline: Deadline) -> bool:
        self.flushes.append((self.clock.now, deadline.left()))
        return True


def _closing(h: Harness) -> ClosingInput:
    """Swap the harness's input for a :class:`ClosingInput`."""
    closing = ClosingInput(listener=h.pipeline, clock=h.clock)
    h.pipeline.attach(closing)
    h.input = closing
    return closing


def _time_passes(h: Harness, monkeypatch: pytest.MonkeyPatch) -> list[tuple[float, float]]:
    """Waits take the time they are given: collect() with no answer, and flush() while outcomes
    are unacknowledged. Returns the output's flushes as (when, timeout)."""
    flushes: list[tuple[float, float]] = []
    calls, output = h.calls, h.output

    def collect(timeout: float) -> list[tuple[int, Answer]]:
        if not calls.answers:
            h.clock.advance(timeout)
        return FakeCalls.collect(calls, timeout)

    def flush(deadline: Deadline) -> bool:
        timeout = deadline.left()
        flushes.append((h.clock.now, timeout))
        done = FakeOutput.flush(output, deadline)
        if not done:
            h.clock.advance(timeout)
        return done

    monkeypatch.setattr(calls, "collect", collect)
    monkeypatch.setattr(output, "flush", flush)
    return flushes


def _hanging_call_behind_a_done_one(h: Harness) -> None:
    """Offset 0's call hangs; offset 1 (another key) is done: a gap only 0's answer fills."""
    h.feed(record(0, "a", "a@x.io"), record(1, "b", "b@x.io"))
    h.turn()
    h.calls.answer(ACCEPTED, lambda s: s.ticket == 1)
    h.turn()
    assert h.input.committed_positions() == {}


# -- the deadline ---------------------------------------------------------------------------------


def test_a_deadline_counts_down_on_its_clock_and_the_sooner_one_wins() -> None:
    clock = Clock()
    deadline = Deadline.after(10.0, clock)
    assert (deadline.left(), deadline.expired()) == (10.0, False)
    clock.advance(4.0)
    assert deadline.left() == 6.0
    assert deadline.sooner(Deadline.after(2.0, clock)).at == clock.now + 2.0
    assert deadline.sooner(None) is deadline
    assert deadline.earlier(1.0).left() == 5.0
    clock.advance(7.0)
    assert (deadline.left(), deadline.expired()) == (0.0, True)
    assert Deadline.after(-3.0, clock).left() == 0.0


def test_the_grace_gives_a_revoke_its_own_budget_until_a_stop_begins() -> None:
    """Outside a stop a revoke gets min(grace, 10 s); once a stop began, every deadline ends by
    the stop's, less the close reserve, however late it is asked for."""
    clock = Clock()
    grace = Grace(GRACE, clock)
    assert grace.within(REVOKE_S).left() == REVOKE_S
    assert Grace(4.0, clock).within(REVOKE_S).left() == 4.0
    assert grace.closing(5.0).left() == 5.0
    assert grace.begin().left() == WORK
    clock.advance(20.0)
    assert grace.begin().left() == WORK - 20.0  # a second signal changes nothing
    assert grace.within(REVOKE_S).left() == WORK - 20.0
    assert grace.closing(5.0).left() == GRACE - 20.0
    assert Grace(2.0, clock).begin().left() == 1.5  # the reserve: at most a quarter of it


# -- the revoke callback inside close() ---------------------------------------------------------


def test_a_stop_whose_close_calls_revoked_ends_by_the_stops_deadline(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """SIGTERM while a call hangs behind a done record: the drain waits for it until the stop's
    deadline; librdkafka's close() then calls the revoke callback, which gets what is left of
    the same deadline (nothing), not 10 s of its own: the stop is over by the grace, less the
    reserve for leaving the group."""
    h = harness(flow=FLOW, concurrency=2)
    closing = _closing(h)
    _hanging_call_behind_a_done_one(h)
    flushes = _time_passes(h, monkeypatch)
    h.pipeline.request_stop()
    started = h.clock.now
    h.pipeline.run()
    assert closing.closed
    assert closing.revokes  # close() did call the revoke callback
    assert h.clock.now - started <= WORK + SLACK
    assert all(at + timeout <= started + WORK + SLACK for at, timeout in flushes)
    assert h.input.committed_positions() == {}  # offset 0 never finished: nothing committable


def test_a_rebalance_revoke_outside_a_stop_still_gets_its_own_ten_seconds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    h = harness(flow=FLOW, concurrency=2)
    _hanging_call_behind_a_done_one(h)
    _time_passes(h, monkeypatch)
    started = h.clock.now
    h.pipeline.revoked([("leads", 0)])
    assert h.clock.now - started == pytest.approx(REVOKE_S, abs=SLACK)


def test_the_grace_counts_from_the_signal_not_from_the_end_of_the_turn(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A turn that outlasts the signal (a long rebalance callback, say) spends the grace: the
    stop still ends within it, counted from the signal as the orchestrator counts it."""
    h = harness(flow=FLOW, concurrency=2)
    _closing(h)
    _hanging_call_behind_a_done_one(h)
    _time_passes(h, monkeypatch)
    signalled = h.clock.now
    h.pipeline.request_stop()
    h.clock.advance(20.0)  # the turn the signal came in goes on
    h.pipeline.run()
    assert h.clock.now - signalled <= WORK + SLACK


def test_the_final_flushes_end_inside_the_stops_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    """Outcomes the broker does not acknowledge: the results flush and the quota counts' flush
    get only what is left of the stop's deadline, so leaving the group keeps its reserve."""
    spending = SpendingLog()
    h = harness(flow=FLOW, auto_ack=False, quota=(Quota(1000, 86_400.0, "greedy"), spending))
    spending.clock = h.clock
    _closing(h)
    h.input.rebalances.append(("assigned", [("leads", 0)]))
    h.feed(record(0, "a", "a@x.io"))
    h.turn()
    h.calls.answer(ACCEPTED)
    h.turn()  # accepted: its result waits for an acknowledgement that never comes
    flushes = _time_passes(h, monkeypatch)
    h.pipeline.request_stop()
    started = h.clock.now
    h.pipeline.run()
    assert flushes
    assert spending.flushes
    for at, timeout in [*flushes, *spending.flushes]:
        assert at + timeout <= started + WORK + SLACK
    assert h.clock.now - started <= WORK + SLACK
    assert h.pipeline.closing(5.0).left() == pytest.approx(CLOSE_RESERVE_S, abs=SLACK)


def test_the_fingerprints_are_sealed_by_the_deadline_of_the_stop_and_of_each_revoke() -> None:
    """The state topic's flush and seal (FingerprintStore.settle) get what is left of the same
    deadline: at the stop for every partition, in the revoke from inside close() for the revoked
    ones (nothing left by then); a rebalance's revoke seals its partitions within its own 10 s."""
    memory = create_autospec(
        FingerprintStore, instance=True
    )  # the state topic is another module's test
    h = harness(flow=FLOW, memory=memory)  # no record: the stand-in is only asked to settle
    settles: list[tuple[float, float, object]] = []

    def settle(deadline: Deadline, tps: object = None) -> bool:
        settles.append((h.clock.now, deadline.left(), tps))
        return True

    memory.settle.side_effect = settle
    _closing(h)
    h.pipeline.revoked([("leads", 1)])
    assert settles == [(h.clock.now, REVOKE_S, {("leads", 1)})]
    h.input.owned.append(("leads", 0))
    h.pipeline.request_stop()
    started = h.clock.now
    h.pipeline.run()
    assert [tps for *_, tps in settles[1:]] == [None, {("leads", 0)}]
    assert settles[1][0] + settles[1][1] == started + WORK
    assert settles[2][0] + settles[2][1] <= started + WORK


# -- gaps nothing will fill ---------------------------------------------------------------------


def _task(status: str, reason: str, **extra: object) -> Answer:
    task = {"Status": status, "StatusReason": reason, "RequestBody": "[]", "Message": None}
    return Answer(200, json.dumps({"RequestId": "x", "TaskStatus": task | extra}).encode())


TYPO = _task(
    "FAILURE",
    "Attribute 'mx_Ciyt' does not exist",
    ExceptionType="MXUnknownAttributeException",
    RequestBody=json.dumps([{"Attribute": "mx_Ciyt", "Value": "Pune"}]),
)
FIRST_POLL = 5.0


def _tracked(canary: int) -> Harness:
    status = StatusSettings.model_validate(
        {
            "enabled": True,
            "first_poll_seconds": FIRST_POLL,
            "canary": {"calls": canary},
            "queue": {"enabled": False},
        }
    )
    return harness(flow=FLOW, status=status)


def _accept_all(calls: FakeCalls) -> None:
    """Answer each open call with a RequestID of its own."""
    for sent in [s for s in calls.sent if s.ticket not in calls.done]:
        body = json.dumps({"Status": "Request accepted", "RequestID": f"req-{sent.ticket}"})
        calls.answers.append((sent.ticket, Answer(200, body.encode())))
        calls.done.add(sent.ticket)


def test_a_halted_routes_held_records_behind_a_done_one_do_not_hold_the_stop(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The canary halts the route after its first 3 calls: offsets 3-9 are held (never sent,
    never committed), and the tombstone at offset 10 is done behind them. The stop does not
    wait for that gap, which nothing will fill: it commits the done prefix and leaves at once."""
    h = _tracked(canary=3)
    assert h.tracked is not None
    closing = _closing(h)
    h.feed(*(record(i, f"k{i}", f"lead{i}@example.com") for i in range(10)))
    h.feed(record(10, "k10", None, value=None))  # a tombstone: skipped, done at once
    for _ in range(20):
        h.turn()
        _accept_all(h.calls)
    h.clock.advance(FIRST_POLL)
    h.turn()
    h.tracked.calls.answer(TYPO)  # the canary's check: the mapping is refused
    h.turn(5)
    assert h.pipeline.tally.halted == 1
    assert h.pipeline.tally.skipped == 1
    assert len(h.calls.sent) == 3
    flushes = _time_passes(h, monkeypatch)
    h.pipeline.request_stop()
    started = h.clock.now
    h.pipeline.run()
    assert h.clock.now - started < SLACK
    assert closing.closed
    assert all(timeout <= WORK for _, timeout in flushes)
    assert h.input.committed_positions() == {("leads", 0): 3}
    assert len(h.calls.sent) == 3  # nothing of the halted route was sent while stopping


def test_records_the_canary_does_not_admit_yet_do_not_hold_the_stop(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """While the canary waits for its first call's check, later records of the route are queued
    but not sendable (the checks need polls the stop does not make): a done record behind them
    does not make the stop wait."""
    h = _tracked(canary=1)
    _closing(h)
    h.feed(record(0, "k0", "lead0@example.com"), record(1, "k1", "lead1@example.com"))
    h.feed(record(2, "k2", None, value=None))  # done at once, behind offset 1
    for _ in range(5):
        h.turn()
        _accept_all(h.calls)
    assert len(h.calls.sent) == 1
    _time_passes(h, monkeypatch)
    h.pipeline.request_stop()
    started = h.clock.now
    h.pipeline.run()
    assert h.clock.now - started < SLACK
    assert len(h.calls.sent) == 1
    assert h.input.committed_positions() == {("leads", 0): 1}


def test_the_stop_still_waits_for_a_gap_filler_whose_retry_falls_due_in_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A record behind a done one that waits for a retry is sent once it is due (within the
    grace), so the commit covers the done record too."""
    h = harness(flow=FLOW, concurrency=2)
    _closing(h)
    _hanging_call_behind_a_done_one(h)
    h.calls.answer(UNAVAILABLE)  # offset 0: retried after its backoff
    h.turn()
    assert h.pipeline.tally.retried == 1
    _time_passes(h, monkeypatch)
    h.pipeline.request_stop()
    started = h.clock.now
    h.calls.answer(ACCEPTED)  # nothing open yet: the retry is not sent

    answered = FakeCalls.collect

    def collect(calls: FakeCalls, timeout: float) -> list[tuple[int, Answer]]:
        calls.answer(ACCEPTED)
        if not calls.answers:
            h.clock.advance(timeout)
        return answered(calls, timeout)

    monkeypatch.setattr(h.calls, "collect", lambda timeout: collect(h.calls, timeout))
    h.pipeline.run()
    assert len(h.calls.sent) == 3  # offset 0, again
    assert h.input.committed_positions() == {("leads", 0): 2}
    assert h.clock.now - started < 5.0
