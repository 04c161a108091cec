"""No poison pill (SPEC §2.7): no single record, topic or answer stops the loop or holds a partition
forever; and the loop's smaller promises (the in-flight byte bound, a shutdown within its grace, a
dropped call's late answer) hold. With the fakes of :mod:`tests.unit.pipeline_fakes`."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import pytest

from connector.errors import FatalError, SchemaSourceError
from connector.flow.accounts import MAIN
from connector.records import Answer, DeadLetter, SourceRecord
from connector.settings.model import FlowSettings, RetrySettings
from tests.unit.pipeline_fakes import (
    ACCEPTED,
    THROTTLED,
    Harness,
    harness,
    record,
    route,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from connector.transform.route import Route


def _with_route(h: Harness, the_route: Route) -> None:
    h.pipeline._routes = lambda topic: the_route if topic == "leads" else None


def _dead_letters(h: Harness) -> dict[int, DeadLetter]:
    return {w.record.offset: w.data for w in h.output.written if isinstance(w.data, DeadLetter)}


def test_a_record_of_a_topic_no_route_consumes_is_dead_lettered_at_route() -> None:
    """A record from a topic without a route (a group member with other routes, a pattern
    librdkafka reads differently) is dead-lettered at stage route naming the topic; the loop
    goes on and commits past it."""
    h = harness()
    stray = SourceRecord("leads_archive", 0, 7, b"k", b"{}")
    h.feed(stray, record(0, "a", "a@x.io"))
    h.turn()
    h.calls.answer(ACCEPTED)
    h.turn()
    [dead] = [w for w in h.output.written if w.kind == "dead_letter"]
    assert isinstance(dead.data, DeadLetter)
    assert (dead.data.stage, dead.data.error_class) == ("route", "NoRoute")
    assert "'leads_archive'" in dead.data.reason
    assert h.input.committed_positions() == {("leads_archive", 0): 8, ("leads", 0): 1}


@pytest.mark.parametrize(
    ("step", "error", "stage"),
    [
        ("decode", ValueError("bad varint"), "decode"),
        ("decode", RecursionError("maximum recursion depth exceeded"), "decode"),
        ("render", TypeError("unhashable type: 'list'"), "map"),
        ("render", KeyError("op"), "map"),
    ],
)
def test_any_exception_while_preparing_a_record_is_its_dead_letter(
    step: str, error: Exception, stage: str
) -> None:
    """Whatever a step raises for one record (a bug, an input no one foresaw) dead-letters that
    record with the stage and the exception, and the next record of the same key is called."""

    base, calls = route(), 0

    def once(*args: Any) -> Any:  # fails for the first record only
        nonlocal calls
        calls += 1
        if calls == 1:
            raise error
        return base.decode(*args) if step == "decode" else base.render(*args)

    h = harness()
    _with_route(h, replace(base, decode=once) if step == "decode" else replace(base, render=once))
    h.feed(record(0, "k", "a@x.io"), record(1, "k", "b@x.io"))
    h.turn()
    h.calls.answer(ACCEPTED)
    h.turn()
    why = _dead_letters(h)[0]
    assert (why.stage, why.error_class) == (stage, type(error).__name__)
    assert why.reason.startswith(f"{type(error).__name__}: ")
    assert h.calls.emails == ["b@x.io"]
    assert h.input.committed_positions() == {("leads", 0): 2}


def test_an_unreachable_schema_registry_still_stops_the_connector() -> None:
    """Not every error is one record's: a registry that cannot be reached would fail every
    record, so it stops the loop (a restart resumes), and nothing is dead-lettered."""

    def unreachable(_: bytes) -> Any:
        raise SchemaSourceError("cannot reach the schema registry")

    h = harness()
    _with_route(h, replace(route(), decode=unreachable))
    h.feed(record(0, "k", "a@x.io"))
    with pytest.raises(FatalError, match="schema registry"):
        h.turn()
    assert h.output.written == []


def test_an_mx_exception_that_mentions_a_limit_is_dead_lettered_not_retried() -> None:
    """An application error about a value ("... exceeded the limit of 2000 characters") is the
    record's own: dead-lettered at once, the account is not cooled down, the partition moves."""
    h = harness()
    body = {
        "Status": "Error",
        "ExceptionType": "MXInvalidInputException",
        "ExceptionMessage": "Notes exceeded the limit of 2000 characters",
    }
    h.feed(record(0, "k", "a@x.io"), record(1, "k", "b@x.io"))
    h.turn()
    h.calls.answer(Answer(200, json.dumps(body).encode()))
    h.turn()
    h.calls.answer(ACCEPTED)
    h.turn()
    assert _dead_letters(h)[0].exception_type == "MXInvalidInputException"
    assert (h.pipeline.tally.throttled, len(h.calls.sent)) == (0, 2)
    assert h.input.committed_positions() == {("leads", 0): 2}


def _spell(h: Harness) -> str | None:
    return h.account.throttle_spell


def test_a_throttle_spell_that_does_not_end_is_handled_like_an_outage() -> None:
    """An account that answers only throttles for retry.throttle_unavailable_seconds is not
    available: one probe a cool-down instead of every slot, the replica is unready with the
    reason, nothing is dead-lettered or committed past it; the first other answer ends it."""
    h = harness(retry=RetrySettings(throttle_unavailable_seconds=20), concurrency=4)
    h.feed(*(record(i, f"k{i}", f"l{i}@x.io") for i in range(6)))
    h.turn()
    assert len(h.calls.sent) == 4
    for _ in range(5):  # throttles for 25 s, one cool-down (5 s) after the other
        h.calls.answer(THROTTLED)
        h.turn()
        h.clock.advance(5.0)
        h.turn()
    assert _spell(h) is not None
    sent = len(h.calls.sent)
    h.calls.answer(THROTTLED)
    h.turn()
    h.clock.advance(5.0)
    h.turn()
    h.turn()
    assert len(h.calls.sent) == sent + 1  # one probe at a time
    h.clock.advance(1.0)
    h.turn()
    assert any("only throttles" in reason for reason in h.pipeline.snapshot.not_ready)
    assert (h.output.written, h.input.committed_positions()) == ([], {})
    h.calls.answer(ACCEPTED)
    for _ in range(4):
        h.turn()
        h.calls.answer(ACCEPTED)
        h.clock.advance(5.0)
    h.turn()
    assert _spell(h) is None
    assert (h.pipeline.tally.accepted, h.pipeline.tally.dead_lettered) == (6, 0)
    assert h.input.committed_positions() == {("leads", 0): 6}


def test_the_late_answer_of_a_dropped_call_changes_nothing() -> None:
    """A call whose partition was lost while it was out: its answer, arriving after the
    partition came back and the record was called again, writes nothing, counts nothing and
    settles nothing but its own slot; the new call's answer gives the one outcome."""
    h = harness(concurrency=1)
    h.feed(record(0, "a", "a@x.io"))
    h.turn()
    h.pipeline.lost([("leads", 0)])
    h.input.rebalances.append(("assigned", [("leads", 0)]))
    h.feed(record(0, "a", "a@x.io"))  # assigned again: the record comes again
    h.turn()
    gate = h.account.gates[MAIN]
    h.clock.advance(gate.turn)  # the budget of a partition taken over: a turn later
    h.turn()
    h.calls.answer(ACCEPTED, lambda s: s.ticket == 0)  # the dropped call's late answer
    h.turn()
    assert (h.output.written, h.pipeline.tally.accepted) == ([], 0)
    assert len(h.calls.sent) == 2  # the second call went out once the first slot came back
    assert h.account.in_flight == 1
    h.calls.answer(ACCEPTED)
    h.turn()
    assert [w.record.offset for w in h.output.written] == [0]
    assert (h.pipeline.tally.accepted, h.account.in_flight, gate.in_flight) == (1, 0, 0)
    assert h.input.committed_positions() == {("leads", 0): 1}


def test_input_pauses_above_the_in_flight_byte_bound_and_resumes_below() -> None:
    """flow.max_in_flight_bytes bounds memory like max_in_flight_records: above it every
    partition pauses; once outcomes bring the bytes under 80% of it, they resume."""
    flow = FlowSettings(commit_interval_seconds=0.001, max_in_flight_bytes=4096)
    h = harness(flow=flow, concurrency=1)
    big = [replace(record(i, f"k{i}", f"l{i}@x.io"), key=b"x" * 1400) for i in range(4)]
    h.feed(*big)
    h.turn()
    assert h.pipeline.tally.consumed == 4
    assert h.input.paused == {("leads", 0)}
    for _ in range(2):
        h.calls.answer(ACCEPTED)
        h.turn()
    assert h.input.paused == set()


def _collect_waiting(h: Harness) -> Callable[[float], list[tuple[int, Answer]]]:
    """A collect() that lets the (fake) time it was given pass, as the real one does."""

    def collect(timeout: float) -> list[tuple[int, Answer]]:
        h.clock.advance(timeout)
        return type(h.calls).collect(h.calls, timeout)

    return collect


def test_a_graceful_stop_ends_within_its_grace_while_calls_hang() -> None:
    """SIGTERM while a call hangs: the loop gives up on it when the grace runs out, flushes
    outcomes only with the grace left, commits what is done and leaves the group, all within
    flow.shutdown_grace_seconds."""
    flow = FlowSettings(commit_interval_seconds=0.001, shutdown_grace_seconds=4.0)
    h = harness(flow=flow, concurrency=2, auto_ack=False)
    h.feed(record(0, "a", "a@x.io"), record(1, "b", "b@x.io"))
    h.turn()
    h.calls.answer(ACCEPTED, lambda s: s.ticket == 1)  # done, its result not acknowledged yet
    # a fake whose collect() lets the time it was given pass
    h.calls.collect = _collect_waiting(h)  # type: ignore[method-assign,assignment]
    h.pipeline.request_stop()
    started = h.clock.now
    h.pipeline.run()
    assert h.input.closed
    assert h.clock.now - started <= 4.0
    assert h.output.flushes
    assert max(h.output.flushes) <= 4.0  # never a flush past the grace
    assert h.pipeline.closing(5.0).left() >= 0.0
    assert h.input.committed_positions() == {}  # offset 0 never finished


def test_partitions_assigned_while_stopping_are_not_read_back() -> None:
    """Leaving the group can hand this replica partitions from inside close() (another member
    left first): it neither asks the broker for their committed offsets (which times out while
    the client closes, and used to crash the stop) nor reads their outcomes back."""
    h = harness()
    h.pipeline.request_stop()
    h.pipeline.assigned([("leads", 0)])
    assert h.recovery.asked == []
