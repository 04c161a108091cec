"""Each partition participant (SPEC §2, §12, §13) on its own, without a Pipeline: against a fake
Kafka input, the fakes of its own topic, and the delegate that fans the loop's hooks out."""

from __future__ import annotations

from typing import TYPE_CHECKING

from connector.flow.accounts import MAIN, Account
from connector.flow.deadline import Deadline
from connector.flow.fingerprints import FingerprintStore
from connector.flow.gates import RateGate
from connector.flow.members import FoundOutcomes, KnownPayloads, QuotaCounts
from connector.flow.outcomes import Outcomes
from connector.flow.participant import Loop, Participant, Participants
from connector.flow.quota import Quota
from connector.flow.quotas import Quotas
from connector.flow.tracking import CompletionTracker, Tracking
from connector.records import Accepted, SourceRecord, Unfinished
from connector.settings.model import RetrySettings
from tests.unit.pipeline_fakes import (
    Clock,
    FakeInput,
    FakeOriginals,
    FakeOutput,
    FakeRecovery,
    FakeUnchecked,
    route,
)
from tests.unit.test_fingerprints import FakeStateTopic, job
from tests.unit.test_quota import TopicLog
from tests.unit.tracking_fakes import status_settings

if TYPE_CHECKING:
    from collections.abc import Callable

    from connector.flow.lanes import Job

TP = ("leads", 0)
WALL = 1_700_000_000.0


def _loop(clock: Clock, source: FakeInput, doubted: list[SourceRecord] | None = None) -> Loop:
    account = Account("main", {MAIN: RateGate(25, 5.0, margin=0.0)}, 4, 5.0, RetrySettings())
    the_route = route()
    return Loop(
        {"main": account},
        lambda topic: the_route if topic == "leads" else None,
        Outcomes(FakeOutput(), lambda: WALL + clock()),
        clock,
        lambda: WALL + clock(),
        committed=source.committed,
        calls_out=lambda _route: 0,
        doubt=(doubted if doubted is not None else []).append,
    )


def test_found_outcomes_asks_for_the_committed_positions_and_skips_what_was_done() -> None:
    clock, source = Clock(), FakeInput()
    source.commits.append({TP: 3})
    recovery = FakeRecovery({TP: {3, 4}})
    loop = _loop(clock, source)
    FoundOutcomes(recovery, loop).assigned([TP])
    assert recovery.asked == [{TP: 3}]
    records = [SourceRecord("leads", 0, offset, b"k", b"{}") for offset in (3, 4, 5)]
    taken = [loop.outcomes.take(record) for record in records]
    assert taken == [False, False, True]  # already done: not called again
    assert loop.outcomes.tally.recovered == 2


def test_quota_counts_are_read_back_saved_and_settled_by_the_deadline() -> None:
    clock, log = Clock(), TopicLog()

    def owner() -> tuple[Quota, QuotaCounts]:
        quota = Quota(100, 86_400.0, "greedy")
        quota.apportion([TP], 1, WALL)  # wall = monotonic + WALL
        return quota, QuotaCounts(Quotas({"main": quota}, log), lambda: WALL + clock())

    quota, part = owner()
    part.assigned([TP])
    assert quota.left(clock()) == 100
    quota.charge(TP, clock())
    part.after_calls(clock())  # written as it changes
    assert sum(log.counts.values()) == 1
    part.revoking({TP}, Deadline.after(5.0, clock))
    assert log.flushes == 1
    part.forget([TP])
    again, next_owner = owner()
    next_owner.assigned([TP])
    assert again.left(clock()) == 99  # the call spent before the move still counts


def test_known_payloads_skip_what_leadsquared_holds_and_forget_doubted_keys() -> None:
    states, clock = FakeStateTopic(), Clock()
    part = KnownPayloads(FingerprintStore(states, clock=clock))
    the_route = route(remember=True)
    part.assigned([TP])
    admission = part.admission()  # the open marker is acknowledged at once here
    assert admission is None
    first = job("k1", "Ada")
    accepted = Accepted("capture", "leads", "main", "req-1", None, 0, 1, 200)
    part.accepted(first, the_route, accepted)
    assert part.unchanged(job("k1", "Ada", offset=1), the_route)
    assert not part.unchanged(job("k1", "Ada", offset=1), route(remember=False))
    part.doubted(first.record)
    assert not part.unchanged(job("k1", "Ada", offset=2), the_route)
    part.accepted(first, the_route, accepted)
    part.closing(Deadline.after(5.0, clock))  # sealed: the next owner trusts them
    again = KnownPayloads(FingerprintStore(states, clock=clock))
    again.assigned([TP])
    assert again.unchanged(job("k1", "Ada", offset=3), the_route)


def test_the_tracker_reads_back_unfinished_checks_and_plans_their_polls() -> None:
    clock, source = Clock(), FakeInput()
    doubted: list[SourceRecord] = []
    unchecked = FakeUnchecked()
    record = SourceRecord("leads", 0, 7, b"k7", None)
    unchecked.found = [Unfinished(record, "req-old", 2, WALL + clock() - 100)]
    loop = _loop(clock, source, doubted)
    the_route = loop.route_of("leads")
    assert the_route is not None
    tracking = Tracking(status_settings(), (the_route,), FakeOriginals(), unchecked)
    tracker = CompletionTracker(tracking, loop)
    tracker.assigned([TP])
    assert tracker.view().checks == 1
    first, last = tracker.planners()
    account = loop.accounts["main"]
    call = first[0].next_call(account, None, clock(), None)  # type: ignore[arg-type]
    assert call is not None
    assert call.members == ()
    assert dict(call.request.params)["RequestID"] == "req-old"
    assert last[0].next_call(account, None, clock(), None) is None  # type: ignore[arg-type]
    tracker.forget([TP])
    assert tracker.view().checks == 0  # its check goes on at the next owner
    assert doubted == []


class _Holding(Participant):
    def __init__(self, routes: set[str], floor: float, allow: Callable[[Job], bool]) -> None:
        self.routes, self.floor, self.allow = routes, floor, allow

    def held_routes(self) -> set[str]:
        return self.routes

    def idle_floor(self) -> float:
        return self.floor

    def admission(self) -> Callable[[Job], bool]:
        return self.allow

    def not_ready(self) -> list[str]:
        return [f"holding {sorted(self.routes)}"]


def test_the_delegate_fans_every_hook_out_and_is_inert_when_empty() -> None:
    empty = Participants()
    assert empty.admission() is None
    assert empty.idle_floor() == 0.0
    assert not empty.held_routes()
    assert empty.planners() == ([], [])
    even = _Holding({"a"}, 0.02, lambda job: job.record.offset % 2 == 0)
    small = _Holding({"b"}, 0.05, lambda job: job.record.offset < 3)
    both = Participants([even, small])
    admits = both.admission()
    assert admits is not None
    assert [admits(job("k", "v", offset=o)) for o in range(5)] == [True, False, True, False, False]
    assert both.held_routes() == {"a", "b"}
    assert both.idle_floor() == 0.05
    assert both.not_ready() == ["holding ['a']", "holding ['b']"]
