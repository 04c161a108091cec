"""Bulk calls (SPEC §12): a record's row, the bulk request, the answer read row by row, and the
loop sending bulk calls for backlogs beside single calls, under both budgets."""

from __future__ import annotations

import json
from functools import partial
from typing import TYPE_CHECKING, Any

import pytest

from connector.flow.accounts import BULK, MAIN, Account
from connector.flow.bulk import BulkPlanner
from connector.flow.gates import RateGate
from connector.flow.members import FoundOutcomes
from connector.lsq.bulk import bulk_answer, bulk_request, row_of
from connector.pipeline import Pipeline
from connector.records import Accepted, Answer, DeadLetter, Payload, SourceRecord
from connector.settings.model import FlowSettings, RetrySettings
from connector.transform.mapping import MappingSpec, compile_mapping
from connector.transform.route import Route
from tests.unit.pipeline_fakes import (
    ACCEPTED,
    UNAVAILABLE,
    Clock,
    FakeCalls,
    FakeInput,
    FakeOutput,
    FakeRecovery,
    Harness,
    harness,
    record,
)

if TYPE_CHECKING:
    from tests.unit.pipeline_fakes import Sent

CAPTURE = "/v2/LeadManagement.svc/Lead/Bulk/CreateOrUpdate"
ACTIVITIES = "/v2/ProspectActivity.svc/Bulk/CustomActivity/Add/ByLeadField"


def lead(email: str) -> list[dict[str, str]]:
    return [
        {"Attribute": "EmailAddress", "Value": email},
        {"Attribute": "SearchBy", "Value": "EmailAddress"},
    ]


def activity_payload(email: str, *extra: dict[str, str]) -> Payload:
    body = {
        "LeadDetails": [*lead(email), *extra],
        "Activity": {"ActivityEvent": 201, "ActivityNote": "n", "Fields": []},
    }
    return Payload("lead_and_activity", (), body)


def test_rows_are_the_single_call_bodies_of_the_records() -> None:
    """A capture row is the Lead.Capture body; an activity row is the Activity object plus the
    lead's search value, the search attribute going in ``searchBy``."""
    capture = Payload("capture", (), lead("a@x.io"))
    assert row_of(capture) == (None, lead("a@x.io"))
    row = row_of(activity_payload("b@x.io"))
    expected = {"SearchByValue": "b@x.io", "ActivityEvent": 201, "ActivityNote": "n", "Fields": []}
    assert row == ("EmailAddress", expected)
    request = bulk_request("lead_and_activity", [row, row])
    assert (request.endpoint.host, request.endpoint.method) == ("api", "POST")
    assert request.endpoint.path == ACTIVITIES
    assert request.params == (("searchBy", "EmailAddress"),)
    assert request.body == [expected, expected]
    assert bulk_request("capture", [row_of(capture)] * 2).endpoint.path == CAPTURE  # type: ignore[list-item]


def test_records_a_bulk_row_cannot_carry_have_no_row() -> None:
    """Lead fields besides the search key (a bulk activity row would drop them), a
    LeadUpdateBehavior (the bulk call has none), or no search value: single calls only."""
    assert row_of(activity_payload("b@x.io", {"Attribute": "FirstName", "Value": "B"})) is None
    behaviour = (("LeadUpdateBehavior", "DoNotUpdate"),)
    assert row_of(Payload("capture", behaviour, lead("a@x.io"))) is None
    assert row_of(Payload("update", (("leadId", "1"),), lead("a@x.io"))) is None
    no_value = Payload("lead_and_activity", (), {"LeadDetails": lead("")[1:], "Activity": {}})
    assert row_of(no_value) is None


def answer(body: Any, status: int = 200) -> Answer:
    return Answer(status, json.dumps(body).encode())


def test_each_row_of_the_answer_is_its_records_verdict() -> None:
    """Rows are matched by RowNumber; a row with an exception is that record's permanent failure,
    the others succeeded (applied at once) with their lead id."""
    rows = [
        {"RowNumber": 2, "LeadId": None, "ExceptionType": "MXUnknownAttributeException",
         "ExceptionMessage": "mx_Nope is not an attribute"},
        {"RowNumber": 1, "LeadId": "L1", "LeadCreated": True, "AffectedRows": 1},
        {"RowNumber": 3, "LeadId": "L3", "LeadUpdated": True, "AffectedRows": 1},
    ]  # fmt: skip
    settled = bulk_answer("capture", 3)(answer(rows))
    assert settled.call.kind == "accepted"
    kinds = [(v.kind, v.lead_id, v.row, v.applied) for v in settled.members]
    assert kinds == [
        ("accepted", "L1", 1, True),
        ("permanent", None, 2, False),
        ("accepted", "L3", 3, True),
    ]
    assert settled.members[1].exception_type == "MXUnknownAttributeException"
    assert "mx_Nope is not an attribute" in settled.members[1].reason


def test_an_activity_row_whose_lead_does_not_exist_goes_alone() -> None:
    """Such a row goes in a CreateCustom call of its own (which creates the lead); an invalid
    event is the record's own failure; a created activity carries its id."""
    body = {
        "Response": [
            {"RowNumber": 1, "ActivityCreated": True, "ProspectActivityId": "A1"},
            {"RowNumber": 2, "ActivityCreated": False, "ProspectActivityId": None,
             "ExceptionType": "MXInvalidEntityException",
             "ExceptionMessage": "Lead does not exist in the system"},
            {"RowNumber": 3, "ActivityCreated": False, "ProspectActivityId": None,
             "ExceptionType": "MXInvalidActivityException",
             "ExceptionMessage": "Event Code is invalid or empty"},
        ]
    }  # fmt: skip
    members = bulk_answer("lead_and_activity", 3)(answer(body)).members
    assert [m.kind for m in members] == ["accepted", "alone", "permanent"]
    assert members[0].activity_id == "A1"
    assert members[0].lead_id is None


def test_a_row_missing_from_the_answer_is_retried_only_when_it_may_go_twice() -> None:
    """An upsert may be sent again; an activity may have been posted and is never sent twice."""
    one = [{"RowNumber": 1, "LeadId": "L1"}]
    assert [m.kind for m in bulk_answer("capture", 2)(answer(one)).members] == [
        "accepted",
        "retry",
    ]
    posted = {"Response": [{"RowNumber": 1, "ActivityCreated": True, "ProspectActivityId": "A"}]}
    assert [m.kind for m in bulk_answer("lead_and_activity", 2)(answer(posted)).members] == [
        "accepted",
        "permanent",
    ]


@pytest.mark.parametrize(
    ("reply", "call", "rows"),
    [
        (Answer(503, b'{"message":"Service Unavailable"}'), "retry", "retry"),
        (Answer(None, error="read timed out"), "retry", "retry"),
        (Answer(429, b'{"message":"Too Many Requests"}'), "throttled", "throttled"),
        (Answer(401, b'{"message":"Unauthorized"}'), "auth", "auth"),
        # one bad row fails the whole call with a 400: each record goes alone
        (
            answer(
                {
                    "Status": "Error",
                    "ExceptionType": "MXInvalidInputException",
                    "ExceptionMessage": "Invalid request",
                },
                400,
            ),
            "permanent",
            "alone",
        ),
        (Answer(200, b"<html>gateway</html>"), "retry", "retry"),  # no rows: an upsert again
    ],
)
def test_a_call_that_fails_as_a_whole_settles_every_row_alike(
    reply: Answer, call: str, rows: str
) -> None:
    settled = bulk_answer("capture", 3)(reply)
    assert settled.call.kind == call
    assert [m.kind for m in settled.members] == [rows] * 3


@pytest.mark.parametrize(
    "reply",
    [
        Answer(None, error="ReadTimeout: timed out", maybe_sent=True),
        Answer(None, error="RemoteProtocolError: Server disconnected", maybe_sent=True),
        Answer(503, b'{"message":"Service Unavailable"}'),
        Answer(500, b'{"ExceptionType":"System.TimeoutException","ExceptionMessage":"x"}'),
    ],
    ids=["timeout", "dropped-after-sending", "503", "500-system-error"],
)
def test_a_bulk_activity_call_that_may_have_been_posted_is_never_posted_again(
    reply: Answer,
) -> None:
    """Like a 200 without rows: its activities may be in LeadSquared, so each row is
    dead-lettered saying so (to check and replay), while the account still counts the call as a
    failure (it may be down); a lead upsert in the same case is simply retried."""
    settled = bulk_answer("lead_and_activity", 3)(reply)
    assert settled.call.kind == "retry"
    assert [m.kind for m in settled.members] == ["permanent"] * 3
    assert "may have been posted: not sent again" in settled.members[0].reason
    assert [m.kind for m in bulk_answer("capture", 3)(reply).members] == ["retry"] * 3


@pytest.mark.parametrize(
    ("reply", "kind"),
    [
        (Answer(None, error="ConnectError: refused", maybe_sent=False), "retry"),
        (Answer(408, b"Request Timeout"), "retry"),
        (Answer(429, b'{"message":"Too Many Requests"}'), "throttled"),
    ],
    ids=["never-sent", "408", "429"],
)
def test_a_bulk_activity_call_that_was_not_applied_goes_again(reply: Answer, kind: str) -> None:
    """A call that never left (connection refused), was not read whole (408) or was throttled
    posted nothing: its rows go again."""
    assert [m.kind for m in bulk_answer("lead_and_activity", 2)(reply).members] == [kind] * 2


def test_an_error_for_a_one_row_call_is_that_records_own() -> None:
    bad = answer({"Status": "Error", "ExceptionType": "MXInvalidInputException"}, 400)
    assert [m.kind for m in bulk_answer("capture", 1)(bad).members] == ["permanent"]
    unclear = Answer(200, b"{}")
    assert [m.kind for m in bulk_answer("lead_and_activity", 2)(unclear).members] == [
        "permanent",
        "permanent",
    ]


# -- the loop -------------------------------------------------------------------------------------


def rows(sent: Sent) -> list[str]:
    body = sent.request.body
    assert isinstance(body, list)
    return [next(a["Value"] for a in row if a["Attribute"] == "EmailAddress") for row in body]


def bulk_calls(h: Harness) -> list[Sent]:
    return [s for s in h.calls.sent if s.request.endpoint.path == CAPTURE]


def single_calls(h: Harness) -> list[Sent]:
    return [s for s in h.calls.sent if s.request.endpoint.path == "/lead/capture"]


def created(sent: Sent) -> Answer:
    count = len(rows(sent))
    return answer([{"RowNumber": n, "LeadId": f"L{n}"} for n in range(1, count + 1)])


def answer_all(h: Harness) -> None:
    for sent in [s for s in h.calls.sent if s.ticket not in h.calls.done]:
        bulk = sent.request.endpoint.path == CAPTURE
        ticket = sent.ticket
        h.calls.answer(created(sent) if bulk else ACCEPTED, lambda s: s.ticket == ticket)  # noqa: B023


def backlog(count: int, start: int = 0) -> list[Any]:
    return [record(i, f"k{i}", f"u{i}@x.io") for i in range(start, start + count)]


def test_a_backlog_goes_in_bulk_calls_beside_single_calls() -> None:
    """With 40 records waiting, one bulk call carries 25 of them (the oldest) while single calls
    go on the main budget; each row's record gets its own results record, status succeeded,
    sharing the call's id, with its row number and lead id."""
    h = harness(bulk=(5, 25, 1), concurrency=8)
    h.feed(*backlog(40))
    h.turn()
    [bulk] = bulk_calls(h)
    assert rows(bulk) == [f"u{i}@x.io" for i in range(25)]
    assert len(single_calls(h)) == 7  # the rest of the concurrency, on the main budget
    assert (h.pipeline.tally.api_calls, h.pipeline.tally.bulk_calls) == (8, 1)
    answer_all(h)
    h.turn()
    results = [w.data for w in h.output.written if isinstance(w.data, Accepted)]
    rowed = [r for r in results if r.batch_row is not None]
    assert [r.batch_row for r in rowed] == list(range(1, 26))
    assert {r.status for r in rowed} == {"succeeded"}
    assert len({r.call_id for r in rowed}) == 1
    assert rowed[0].call_id is not None
    assert [r.lead_id for r in rowed[:2]] == ["L1", "L2"]
    singles = [r for r in results if r.batch_row is None]
    assert {(r.status, r.call_id) for r in singles} == {("accepted", None)}


def test_a_trickle_never_waits_for_a_batch() -> None:
    """Fewer ready records than min_rows go out at once, in single calls."""
    h = harness(bulk=(5, 25, 1))
    h.feed(*backlog(3))
    h.turn()
    assert bulk_calls(h) == []
    assert len(single_calls(h)) == 3


def test_a_bulk_call_carries_only_the_first_waiting_record_of_a_key() -> None:
    """Per-key order: a key's later record waits for the earlier one's outcome, even when the
    earlier one is a bulk row."""
    h = harness(bulk=(5, 25, 1), concurrency=1)
    first = [record(i, "same" if i < 2 else f"k{i}", f"u{i}@x.io") for i in range(8)]
    h.feed(*first)
    h.turn()
    [bulk] = bulk_calls(h)
    assert "u1@x.io" not in rows(bulk)
    assert rows(bulk)[0] == "u0@x.io"
    answer_all(h)
    h.turn()
    [later] = single_calls(h)
    assert later.request.body == h.calls.sent[-1].request.body
    assert isinstance(later.request.body, list)
    assert later.request.body[0] == {"Attribute": "EmailAddress", "Value": "u1@x.io"}


def test_a_bulk_call_that_fails_as_a_whole_is_retried_in_halves() -> None:
    """A 503 for a 20-row call: its records come back together, at most 10 to a call."""
    h = harness(bulk=(5, 25, 4), concurrency=1)
    h.feed(*backlog(20))
    h.turn()
    assert len(rows(bulk_calls(h)[0])) == 20
    h.calls.answer(UNAVAILABLE)
    h.turn()
    h.clock.advance(1.0)
    h.turn()
    assert [len(rows(s)) for s in bulk_calls(h)] == [20, 10]
    assert h.pipeline.tally.retried == 20


def test_a_call_refused_as_a_whole_sends_each_record_alone() -> None:
    """A 400 for the whole call (one bad row may cause it): each record goes in a call of its
    own, which gives it its own outcome; none is dead-lettered for the others."""
    h = harness(bulk=(5, 25, 4), concurrency=8)
    h.feed(*backlog(6))
    h.turn()
    refused = {"Status": "Error", "ExceptionType": "MXInvalidInputException",
               "ExceptionMessage": "Invalid request"}  # fmt: skip
    h.calls.answer(answer(refused, 400))
    h.turn(2)
    assert len(single_calls(h)) == 6
    alone = [s.request.body[0]["Value"] for s in single_calls(h)]  # type: ignore[index]
    assert sorted(alone) == sorted(f"u{i}@x.io" for i in range(6))
    h.calls.answer(ACCEPTED)
    h.turn(2)
    assert sorted(h.output.kinds().values()) == ["result"] * 6


def test_row_failures_are_dead_lettered_with_the_rows_reason() -> None:
    h = harness(bulk=(5, 25, 1), concurrency=1)
    h.feed(*backlog(5))
    h.turn()
    reply = [{"RowNumber": n, "LeadId": f"L{n}"} for n in (1, 2, 4, 5)]
    reply.insert(2, {"RowNumber": 3, "ExceptionType": "MXDuplicateEntryException",
                     "ExceptionMessage": "A Lead with same Email already exists."})  # fmt: skip
    h.calls.answer(answer(reply))
    h.turn()
    [letter] = [w for w in h.output.written if w.kind == "dead_letter"]
    assert letter.record.offset == 2
    assert isinstance(letter.data, DeadLetter)
    assert letter.data.exception_type == "MXDuplicateEntryException"
    assert "row 3" in letter.data.reason
    assert len(h.output.written) == 5


def test_neither_budget_is_exceeded_in_any_window_and_every_record_has_one_outcome() -> None:
    """A 600-record backlog answered as it goes: bulk calls never more than their budget in any
    window, single calls never more than theirs, and each record exactly one outcome."""
    window, main, bulk = 5.0, 25, 2
    h = harness(bulk=(5, 25, bulk), calls=main, window=window, concurrency=4)
    h.feed(*backlog(600))
    for _ in range(20_000):
        h.turn()
        answer_all(h)
        h.clock.advance(0.01)
        if len(h.output.written) == 600:
            break
    assert sorted(w.record.offset for w in h.output.written) == list(range(600))
    for calls, limit in ((bulk_calls(h), bulk), (single_calls(h), main)):
        times = [s.at for s in calls]
        worst = max(sum(1 for t in times if start <= t < start + window) for start in times)
        assert worst <= limit
    assert len(bulk_calls(h)) > 5  # the backlog did go in bulk calls


# -- bulk activity calls in the loop ---------------------------------------------------------------


def activity_route() -> Route:
    spec = MappingSpec.model_validate(
        {"search_by": "EmailAddress", "lead": {"EmailAddress": "email"}, "activity": {"event": 201}}
    )
    return Route(
        name="visits",
        account="main",
        operation="lead_and_activity",
        mode="async",
        on_delete="skip",
        decode=json.loads,
        render=compile_mapping("lead_and_activity", spec).render,
        bulk=(2, 25),
    )


def activity_harness() -> Harness:
    """The loop over fakes with one bulk activity route (topic ``visits``), bulk budget 4."""
    clock, retry, the_route = Clock(), RetrySettings(), activity_route()
    gates = {MAIN: RateGate(25, 5.0, margin=0.0), BULK: RateGate(4, 5.0, margin=0.0)}
    limits = {MAIN: (25, 5.0), BULK: (4, 5.0)}
    account = Account("main", gates, 4, cooldown=5.0, retry=retry, limits=limits)
    output, calls, source = FakeOutput(), FakeCalls(clock), FakeInput()
    pipeline = Pipeline(
        routes=lambda topic: the_route if topic == "visits" else None,
        accounts={"main": account},
        output=output,
        calls=calls,
        participants=[partial(FoundOutcomes, FakeRecovery({}))],
        retry=retry,
        flow=FlowSettings(commit_interval_seconds=0.001),
        planner=BulkPlanner(lambda topic: the_route if topic == "visits" else None),
        clock=clock,
        wall=lambda: 1_700_000_000.0,
        draw=lambda: 0.5,
    )
    pipeline.attach(source)
    source.listener = pipeline
    return Harness(pipeline, source, output, calls, clock, account)


def visit(offset: int) -> SourceRecord:
    row = {"email": f"v{offset}@x.io"}
    value = json.dumps({"op": "c", "before": None, "after": row}).encode()
    return SourceRecord("visits", 0, offset, f"k{offset}".encode(), value)


def posted(h: Harness) -> list[str]:
    """The lead of every activity posted, bulk rows and single calls alike, in order."""
    out: list[str] = []
    for sent in h.calls.sent:
        body = sent.request.body
        if sent.request.endpoint.path == ACTIVITIES:
            assert isinstance(body, list)
            out += [row["SearchByValue"] for row in body]
        else:
            assert isinstance(body, dict)
            out.append(body["LeadDetails"][0]["Value"])
    return out


@pytest.mark.parametrize(
    "failure",
    [Answer(None, error="ReadTimeout: timed out"), UNAVAILABLE],
    ids=["timeout", "503"],
)
def test_the_activities_of_a_timed_out_bulk_call_are_never_sent_again(failure: Answer) -> None:
    """A bulk activity call times out (or gets a 503): its records are dead-lettered as maybe
    posted and committed, and none of their activities is posted again, in bulk or alone; the
    activities after it go in single calls until LeadSquared answers again, then in bulk."""
    h = activity_harness()
    h.feed(*(visit(i) for i in range(3)))
    h.turn()
    assert [s.request.endpoint.path for s in h.calls.sent] == [ACTIVITIES]
    h.calls.answer(failure)
    h.feed(*(visit(i) for i in range(3, 6)))
    for _ in range(10):
        h.turn()
        h.calls.answer(ACCEPTED)
        h.clock.advance(1.0)
    assert posted(h) == [f"v{i}@x.io" for i in range(6)]  # each activity posted once
    assert [s.request.endpoint.path for s in h.calls.sent[1:]] == ["/activity/createcustom"] * 3
    letters = [w for w in h.output.written if w.kind == "dead_letter"]
    assert [w.record.offset for w in letters] == [0, 1, 2]
    why = letters[0].data
    assert isinstance(why, DeadLetter)
    assert (why.stage, why.attempts) == ("submit", 1)
    assert "may have been posted" in why.reason
    assert h.input.committed_positions() == {("visits", 0): 6}
    h.feed(*(visit(i) for i in range(6, 9)))  # LeadSquared answers again: bulk calls again
    h.turn()
    assert h.calls.sent[-1].request.endpoint.path == ACTIVITIES
