"""The Call seam: a planner may put several ready jobs into one call, and an interpreter gives
each member its own verdict; the loop settles every member without knowing how the call was
planned. Here a planner that pairs jobs stands in for the bulk and coalescing planners to come."""

from __future__ import annotations

from typing import TYPE_CHECKING

from connector.flow.accounts import MAIN
from connector.flow.planner import Call
from connector.lsq.answers import Settlement, Verdict
from connector.lsq.catalog import Request, endpoint
from connector.records import Accepted
from tests.unit.pipeline_fakes import ACCEPTED, Harness, harness, record

if TYPE_CHECKING:
    from collections.abc import Callable

    from connector.flow.accounts import Account
    from connector.flow.lanes import Job, Lanes
    from connector.records import Answer


class PairPlanner:
    """Up to two ready jobs per call; the interpreter is given per test."""

    def __init__(self, interpret: Callable[[Answer, int], Settlement]) -> None:
        self._interpret = interpret

    def next_call(
        self, account: Account, lanes: Lanes, now: float, allow: Callable[[Job], bool] | None
    ) -> Call | None:
        if not account.may_send(MAIN, now):
            return None
        members = [job for _ in range(2) if (job := lanes.take(account.name, now, allow))]
        if not members:
            return None
        body = [job.payload.body for job in members]
        request = Request(endpoint("capture", "async"), (), {"rows": body})
        count = len(members)
        return Call(
            account.name, MAIN, request, tuple(members), lambda a: self._interpret(a, count)
        )

    def wait(self, account: Account, lanes: Lanes, now: float) -> float:  # noqa: ARG002
        return account.wait(MAIN, now)


def emails(h: Harness, call: int) -> list[str]:
    """The EmailAddress of each row of the ``call``-th call sent."""
    body = h.calls.sent[call].request.body
    assert isinstance(body, dict)
    return [
        next(a["Value"] for a in row if a["Attribute"] == "EmailAddress") for row in body["rows"]
    ]


def first_accepted_others_rejected(_answer: Answer, members: int) -> Settlement:
    rows = (Verdict("accepted", "row 0", request_id="bulk-1"),) + (
        Verdict("permanent", "HTTP 200: MXInvalidInputException: bad row", "MXInvalid"),
    ) * (members - 1)
    return Settlement(Verdict("accepted", "HTTP 200"), rows)


def test_each_member_of_a_call_gets_its_own_outcome_and_the_call_counts_once() -> None:
    h = harness(planner=PairPlanner(first_accepted_others_rejected))
    h.feed(*(record(i, f"k{i}", f"l{i}@x.io") for i in range(4)))
    h.turn()
    assert [emails(h, 0), emails(h, 1)] == [["l0@x.io", "l1@x.io"], ["l2@x.io", "l3@x.io"]]
    h.calls.answer(ACCEPTED)
    h.turn(2)
    assert h.output.kinds() == {0: "result", 1: "dead_letter", 2: "result", 3: "dead_letter"}
    results = [w.data for w in h.output.written if isinstance(w.data, Accepted)]
    assert [r.request_id for r in results] == ["bulk-1", "bulk-1"]
    tally = h.pipeline.tally
    assert (tally.api_calls, tally.accepted, tally.dead_lettered) == (2, 2, 2)
    assert h.input.committed_positions() == {("leads", 0): 4}


def test_a_call_holds_only_lane_heads_so_per_key_order_holds() -> None:
    """A later record of a key is never in a call with, or before, an earlier one of it."""
    h = harness(planner=PairPlanner(first_accepted_others_rejected))
    h.feed(record(0, "a", "a0@x.io"), record(1, "a", "a1@x.io"), record(2, "b", "b@x.io"))
    h.turn()
    assert len(h.calls.sent) == 1
    assert emails(h, 0) == ["a0@x.io", "b@x.io"]
    h.calls.answer(ACCEPTED)
    h.turn(2)
    assert emails(h, 1) == ["a1@x.io"]  # only after a0 had its outcome


def test_a_throttled_call_holds_every_member_and_counts_one_throttle() -> None:
    throttled = Verdict("throttled", "HTTP 429: Too Many Requests")

    def throttle(_answer: Answer, members: int) -> Settlement:
        return Settlement(throttled, (throttled,) * members)

    h = harness(planner=PairPlanner(throttle), window=5.0)
    h.feed(record(0, "a", "a@x.io"), record(1, "b", "b@x.io"))
    h.turn()
    h.calls.answer(ACCEPTED)
    h.turn()
    assert (h.pipeline.tally.throttled, len(h.calls.sent), h.output.written) == (1, 1, [])
    h.clock.advance(4.9)
    h.turn()
    assert len(h.calls.sent) == 1  # the cool-down holds both
    h.clock.advance(0.2)
    h.turn()
    assert emails(h, 1) == ["a@x.io", "b@x.io"]  # sent again together


def test_a_member_whose_partition_was_lost_gets_no_outcome_from_the_answer() -> None:
    """One outcome per record (SPEC §2): when one member's partition is lost while the call is
    out, the answer settles the others; the lost one is left to the partition's new owner."""
    h = harness(planner=PairPlanner(first_accepted_others_rejected))
    h.feed(record(0, "a", "a@x.io", partition=0), record(0, "b", "b@x.io", partition=1))
    h.turn()
    assert emails(h, 0) == ["a@x.io", "b@x.io"]
    h.pipeline.lost([("leads", 1)])
    h.calls.answer(ACCEPTED)
    h.turn(2)
    assert [(w.record.partition, w.kind) for w in h.output.written] == [(0, "result")]
    tally = h.pipeline.tally
    assert (tally.accepted, tally.dead_lettered, h.account.in_flight) == (1, 0, 0)
