"""SPEC §2 where the features meet: random streams through the whole loop with coalescing, bulk
calls, no-op skips, a daily quota and completion tracking each on or off, random answers
(accepted, throttled, unavailable, timed out, refused; for status polls: succeeded, in queue,
failed, throttled), and graceful rebalances in between. Whatever the mix, every record ends in
exactly one outcome, the outcomes of a key come in offset order, no commit passes a record
without a durable outcome, and no window holds more calls than its budget (status polls count
against the main budget with the records' calls)."""

from __future__ import annotations

import bisect
import json
from collections import defaultdict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from structlog.testing import capture_logs

from connector.flow.fingerprints import FingerprintStore
from connector.flow.quota import Quota
from connector.records import Answer, SourceRecord
from connector.settings.model import FlowSettings, RetrySettings
from tests.unit.pipeline_fakes import DUPLICATE, THROTTLED, UNAVAILABLE, harness, record
from tests.unit.test_fingerprints import FakeStateTopic
from tests.unit.test_quota import TopicLog
from tests.unit.tracking_fakes import DUPLICATE as FAILED_STATUS
from tests.unit.tracking_fakes import IN_QUEUE, SUCCESS, status_settings

if TYPE_CHECKING:
    from collections.abc import Callable, MutableMapping

    from tests.unit.pipeline_fakes import FakeCalls, Harness, Sent

CALLS, BULK_CALLS, WINDOW = 4, 1, 5.0
TP = ("leads", 0)
TIMED_OUT = Answer(None, error="read timed out", maybe_sent=True)
OUTCOMES = ("record.accepted", "record.dead_lettered", "record.skipped")

answers = st.sampled_from(["accepted"] * 6 + ["throttled", "unavailable", "timeout", "refused"])
POLL_ANSWERS = {"accepted": SUCCESS, "throttled": THROTTLED, "unavailable": IN_QUEUE}


@dataclass
class Stream:
    """The records fed so far and what the loop logged about them."""

    records: dict[int, SourceRecord] = field(default_factory=dict)
    logs: list[MutableMapping[str, Any]] = field(default_factory=list)
    decided: list[int] = field(default_factory=list)  # offsets, in the order outcomes were given

    def outcomes(self) -> list[MutableMapping[str, Any]]:
        return [line for line in self.logs if line.get("event") in OUTCOMES]

    def done(self) -> set[int]:
        return {line["offset"] for line in self.outcomes()}


def _answer(kind: str, sent: Sent) -> Answer:
    if sent.request.endpoint.path.startswith("/v2/"):  # a bulk call: one row per record
        if kind != "accepted":
            return UNAVAILABLE if kind == "unavailable" else THROTTLED
        rows = [{"RowNumber": n + 1, "LeadId": f"L{n}", "AffectedRows": 1} for n in range(99)]
        count = len(sent.request.body) if isinstance(sent.request.body, list) else 1
        return Answer(200, json.dumps(rows[:count]).encode())
    if sent.request.endpoint.host == "status":  # a status poll
        return POLL_ANSWERS.get(kind, FAILED_STATUS)
    chosen = {"throttled": THROTTLED, "unavailable": UNAVAILABLE, "refused": DUPLICATE}
    if kind == "timeout":
        return TIMED_OUT
    body = {"Status": "Request accepted.", "RequestID": f"req-{sent.ticket}"}
    return chosen.get(kind, Answer(200, json.dumps(body).encode()))


def _ticket(ticket: int) -> Callable[[Sent], bool]:
    return lambda sent: sent.ticket == ticket


def _check_commits(h: Harness, stream: Stream) -> None:
    """No commit passes an offset without a durable outcome."""
    position = h.input.committed_positions().get(TP)
    if position is not None and position >= 0:
        done = stream.done()
        assert all(offset in done for offset in range(position)), (position, sorted(done))


def _most_in_a_window(times: list[float]) -> int:
    times = sorted(times)
    return max((bisect.bisect_left(times, t + WINDOW) - i for i, t in enumerate(times)), default=0)


def _rebalance(h: Harness, stream: Stream) -> None:
    """A graceful rebalance: the partition is revoked (finished, committed), then assigned
    again; the consumer fetches again from the committed offset, and the outcomes written past
    it are found in the results topic."""
    h.input.rebalances.append(("revoked", [TP]))
    h.turn()
    committed = h.input.committed_positions().get(TP, 0)
    done = stream.done()
    h.recovery.found = {TP: {o for o in done if o >= committed}}
    h.input.pending = [r for r in h.input.pending if r.offset < 0]
    h.input.rebalances.append(("assigned", [TP]))
    h.feed(*(r for offset, r in sorted(stream.records.items()) if offset >= committed))


@settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    derandomize=True,
)
@given(
    coalesce=st.sampled_from([None, "latest", "merge"]),
    bulk=st.booleans(),
    remember=st.booleans(),
    quota=st.booleans(),
    tracking=st.booleans(),
    steps=st.lists(
        st.tuples(
            st.lists(
                st.tuples(
                    st.integers(0, 4),
                    st.sampled_from(["c", "u", "u", "r", "d", "tombstone"]),
                    st.integers(0, 2),
                ),
                max_size=6,
            ),
            st.lists(answers, max_size=6),
            st.floats(0.0, 3.0),
            st.booleans(),
        ),
        min_size=1,
        max_size=12,
    ),
)
@example(  # the partition assigned before any record arrives
    coalesce="merge",
    bulk=False,
    remember=True,
    quota=True,
    tracking=False,
    steps=[
        ([], ["unavailable", "unavailable", "accepted", "timeout", "timeout"], 1.68, False),
        ([], ["unavailable", "unavailable", "accepted", "timeout", "timeout"], 1.68, False),
        (
            [(0, "d", 1), (2, "u", 0), (4, "r", 1), (3, "c", 0), (3, "u", 0), (3, "u", 1)],
            ["throttled", "accepted"],
            1.24,
            False,
        ),
        ([(2, "c", 0)], ["accepted", "accepted", "refused"], 2.1, False),
    ],
)
def test_every_feature_mix_keeps_the_invariants(
    *, coalesce: Any, bulk: bool, remember: bool, quota: bool, tracking: bool, steps: list[Any]
) -> None:
    memory = FingerprintStore(FakeStateTopic(partitions=1)) if remember else None
    h = harness(
        calls=CALLS,
        window=WINDOW,
        retry=RetrySettings(max_attempts=3, backoff_base_seconds=0.1, backoff_max_seconds=0.5),
        flow=FlowSettings(commit_interval_seconds=0.001),
        bulk=(2, 25, BULK_CALLS) if bulk else None,
        coalesce=coalesce,
        memory=memory,
        quota=(Quota(10_000, 86_400.0, "greedy"), TopicLog()) if quota else None,
        status=status_settings(first_poll_seconds=1.0) if tracking else None,
    )
    h.input.rebalances.append(("assigned", [TP]))
    h.input.cluster = {"leads": 1}  # the topic exists before its first record
    h.clock.drift = 0.001  # time passes inside a turn too (a drain waits for answers by it)
    stream = Stream()
    _watch(h, stream)
    with capture_logs() as logs:
        stream.logs = logs
        for records, replies, pause, rebalance in steps:
            for key, op, name in records:
                offset = len(stream.records)
                fed = _record(offset, key, op, name)
                stream.records[offset] = fed
                h.feed(fed)
            h.turn(3)
            for kind in replies:
                for calls in _all_calls(h):
                    open_calls = [s for s in calls.sent if s.ticket not in calls.done]
                    if open_calls:
                        first = open_calls[0]
                        calls.answer(_answer(kind, first), _ticket(first.ticket))
                h.turn()
                _check_commits(h, stream)
            h.clock.advance(pause)
            if rebalance:
                _rebalance(h, stream)
            _check_commits(h, stream)
        _finish(h, stream)
    _check_invariants(h, stream)


def _watch(h: Harness, stream: Stream) -> None:
    """Note each outcome as it is given: written (results, dead letters) or skipped."""
    write, outcomes = h.output._write, h.pipeline._outcomes
    skipped = outcomes.skipped

    def written(item: Any) -> None:
        stream.decided.append(item.record.offset)
        write(item)

    def skip(record: SourceRecord, route: Any, reason: str) -> None:
        stream.decided.append(record.offset)
        skipped(record, route, reason)

    h.output._write = written  # type: ignore[method-assign]
    outcomes.skipped = skip  # type: ignore[method-assign]


def _record(offset: int, key: int, op: str, name: int) -> SourceRecord:
    if op == "tombstone":
        return record(offset, f"k{key}", None, value=None)
    made = record(offset, f"k{key}", f"k{key}@x.io", op=op)
    value = json.loads(made.value or b"{}")
    for row in (value.get("before"), value.get("after")):
        if row:
            row["name"] = f"name {name}"
    return SourceRecord(made.topic, made.partition, offset, made.key, json.dumps(value).encode())


def _all_calls(h: Harness) -> list[FakeCalls]:
    """The fakes the loop's calls go to: records' calls, and status polls when tracking is on."""
    return [h.calls] if h.tracked is None else [h.calls, h.tracked.calls]


def _finish(h: Harness, stream: Stream) -> None:
    """Everything accepted from now on, time moving on past cool-downs and backoffs."""
    for _ in range(3000):
        h.turn()
        for calls in _all_calls(h):
            for sent in [s for s in calls.sent if s.ticket not in calls.done]:
                calls.answer(_answer("accepted", sent), _ticket(sent.ticket))
        h.clock.advance(0.2)
        _check_commits(h, stream)
        if len(stream.done()) >= len(stream.records) and not h.calls.in_flight:
            h.turn(3)
            return
    raise AssertionError(f"no outcome for {set(stream.records) - stream.done()}")


def _check_invariants(h: Harness, stream: Stream) -> None:
    outcomes = stream.outcomes()
    by_offset: defaultdict[int, list[str]] = defaultdict(list)
    for line in outcomes:
        by_offset[line["offset"]].append(line["event"])
    assert {o: len(e) for o, e in by_offset.items() if len(e) != 1} == {}  # exactly one each
    assert set(by_offset) == set(stream.records)
    order: defaultdict[bytes | None, list[int]] = defaultdict(list)
    for offset in dict.fromkeys(stream.decided):  # the first time each was given an outcome
        order[stream.records[offset].key].append(offset)
    bad = {k: o for k, o in order.items() if o != sorted(o)}
    assert bad == {}  # per-key order
    assert h.input.committed_positions().get(TP, 0) == len(stream.records)  # commits to the end
    polls = [] if h.tracked is None else [s.at for s in h.tracked.calls.sent]
    single = [s.at for s in h.calls.sent if not s.request.endpoint.path.startswith("/v2/")]
    single += polls  # the main budget's calls, polls included
    bulk = [s.at for s in h.calls.sent if s.request.endpoint.path.startswith("/v2/")]
    assert _most_in_a_window(single) <= CALLS
    assert _most_in_a_window(bulk) <= BULK_CALLS
    assert h.pipeline.tally.lost == 0
