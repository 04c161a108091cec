"""Priorities (SPEC §7): within an account, live changes go ahead of snapshot reads, which still get
at least ``flow.snapshot_share`` of the jobs handed out; per-key order holds (a live change lifts
the snapshot reads of its key ahead of it)."""

from __future__ import annotations

import itertools
import json
from dataclasses import replace
from typing import Any

import pytest
from pydantic import ValidationError

from connector.flow.fingerprints import fingerprint
from connector.flow.lanes import Job, Lanes
from connector.lsq.coalesce import combine
from connector.records import Payload, Skip, SourceRecord
from connector.settings.model import FlowSettings
from tests.unit.pipeline_fakes import harness, record, route, run_until_done

LIVE = Payload("capture", (), [])
READ = replace(LIVE, snapshot=True)
ROW = {"email": "a@x.io", "name": "A"}


def _job(offset: int, key: bytes | None, *, live: bool, account: str = "main") -> Job:
    source = SourceRecord("leads", 0, offset, key, b"v")
    return Job(source, "leads", account, LIVE if live else READ, 0.0, live=live)


def _queue(lanes: Lanes, *jobs: Job) -> list[Job]:
    for job in jobs:
        lanes.add(job)
    return list(jobs)


def _backlog(lanes: Lanes, reads: int, lives: int) -> None:
    """``reads`` snapshot reads, then ``lives`` live changes, each of its own key."""
    for offset in range(reads + lives):
        lanes.add(_job(offset, b"%d" % offset, live=offset >= reads))


def _take_all(lanes: Lanes, now: float = 0.0) -> list[Job]:
    return list(iter(lambda: lanes.take("main", now), None))


def _offsets(jobs: list[Job]) -> list[int]:
    return [job.record.offset for job in jobs]


# -- which records are snapshot reads -------------------------------------------------------------


def _envelope(op: str, snapshot: Any = ...) -> dict[str, Any]:
    source = {"connector": "postgresql", "db": "crm"}
    if snapshot is not ...:
        source["snapshot"] = snapshot
    return {"op": op, "before": None, "after": ROW, "source": source, "ts_ms": 1}


@pytest.mark.parametrize(
    ("value", "snapshot"),
    [
        (_envelope("r"), True),
        (_envelope("r", "true"), True),
        (_envelope("c"), False),
        (_envelope("u", "false"), False),
        (_envelope("c", "first"), True),
        (_envelope("c", "last"), True),
        (_envelope("c", "first_in_data_collection"), True),
        (_envelope("c", "last_in_data_collection"), True),
        (_envelope("u", "incremental"), True),
        (_envelope("c", True), True),
        (_envelope("c", False), False),
        (_envelope("c", None), False),
        ({"op": "u", "before": None, "after": ROW}, False),
        ({**ROW, "__op": "r"}, True),
        ({**ROW, "__op": "c", "__snapshot": "true"}, True),
        ({**ROW, "__op": "c", "__source_snapshot": "last"}, True),
        ({**ROW, "__op": "u", "__source_snapshot": "false"}, False),
        ({**ROW, "__op": "u"}, False),
        ({**ROW, "__deleted": "false"}, False),
        (ROW, False),
    ],
)
def test_snapshot_reads_are_told_from_live_changes(value: dict[str, Any], snapshot: bool) -> None:
    """op ``r``, or Debezium's ``source.snapshot`` set to anything but "false", is a snapshot read
    (in an envelope or a flattened record); creates, updates and plain rows are live."""
    prepared = route().prepare(SourceRecord("leads", 0, 0, b"k", json.dumps(value).encode()))
    assert isinstance(prepared, Payload)
    assert prepared.snapshot is snapshot


def test_the_snapshot_flag_is_no_part_of_the_call() -> None:
    """Payloads equal and fingerprint alike with or without it; an update that changes nothing
    is skipped whatever its class."""
    body = [{"Attribute": "EmailAddress", "Value": "a@x.io"}]
    live = Payload("capture", (), body)
    read = replace(live, snapshot=True)
    assert read == live
    assert fingerprint(read) == fingerprint(live)
    unchanged = {**_envelope("u", "incremental"), "before": ROW}
    skipper = replace(route(), skip_unchanged=True)
    assert skipper.prepare_value(unchanged, record(0, "k", "a@x.io")) == Skip("no_change")


@pytest.mark.parametrize("mode", ["latest", "merge"])
def test_a_combined_payload_is_live_if_either_part_is(mode: Any) -> None:
    """Coalescing keeps the call as it was and the flag of the live part, if any."""
    email = {"Attribute": "EmailAddress", "Value": "k@x.io"}  # the same lead: they may combine
    one = Payload("capture", (), [email, {"Attribute": "FirstName", "Value": "K"}])
    two = Payload("capture", (), [email, {"Attribute": "City", "Value": "Pune"}])
    plain = combine(mode, one, two)
    assert plain is not None
    for first, second in itertools.product([False, True], repeat=2):
        combined = combine(mode, replace(one, snapshot=first), replace(two, snapshot=second))
        assert combined is not None
        assert (combined.body, combined.snapshot) == (plain.body, first and second)


# -- live first, snapshot reads never starved -----------------------------------------------------


def test_live_changes_go_before_older_snapshot_reads() -> None:
    """Reads 0-2 came first; the live changes 3 and 4 go ahead of them (share 0)."""
    lanes = Lanes(snapshot_share=0)
    _backlog(lanes, reads=3, lives=2)
    assert _offsets(_take_all(lanes)) == [3, 4, 0, 1, 2]


@pytest.mark.parametrize(("share", "every"), [(0.25, 4), (0.1, 10), (0.5, 2)])
def test_snapshot_reads_get_their_share_while_live_changes_wait(share: float, every: int) -> None:
    """With long queues of both, exactly one of every ``1 / share`` jobs handed out is a snapshot
    read, oldest first in each class."""
    lanes = Lanes(snapshot_share=share)
    _backlog(lanes, reads=100, lives=100)
    taken = [lanes.take("main", 0.0) for _ in range(10 * every)]
    classes = [job.live if job else None for job in taken]
    assert classes == ([True] * (every - 1) + [False]) * 10
    reads = [job.record.offset for job in taken if job and not job.live]
    assert reads == list(range(10))


def test_share_zero_is_strict_priority() -> None:
    """With share 0 a snapshot read goes only when no live change is ready, and then it goes."""
    lanes = Lanes(snapshot_share=0)
    _backlog(lanes, reads=50, lives=50)
    taken = _take_all(lanes)
    assert [job.live for job in taken] == [True] * 50 + [False] * 50


def test_the_credit_only_grows_while_both_classes_wait() -> None:
    """Live changes handed out with no snapshot read ready earn nothing: a read arriving later
    waits for its share like any other."""
    lanes = Lanes(snapshot_share=0.5)
    for offset in range(10):
        lanes.add(_job(offset, b"live-%d" % offset, live=True))
    assert all(lanes.take("main", 0.0) for _ in range(6))
    lanes.add(_job(10, b"read", live=False))
    assert _offsets(_take_all(lanes)) == [6, 10, 7, 8, 9]


def test_the_share_is_a_setting() -> None:
    """``flow.snapshot_share``: 0.1 unless set, between 0 and 0.5 (turn about)."""
    assert FlowSettings().snapshot_share == 0.1
    assert FlowSettings(snapshot_share=0).snapshot_share == 0
    for wrong in (-0.1, 0.6):
        with pytest.raises(ValidationError, match="snapshot_share"):
            FlowSettings(snapshot_share=wrong)


# -- per-key order ---------------------------------------------------------------------------------


def test_a_live_change_lifts_the_snapshot_read_ahead_of_it() -> None:
    """k's live change waits behind k's snapshot read, which goes ahead of the other snapshot
    reads (it inherits the priority); the live change goes once the read has its outcome."""
    lanes = Lanes(snapshot_share=0)
    a, b, k_read, k_live = _queue(
        lanes,
        _job(0, b"a", live=False),
        _job(1, b"b", live=False),
        _job(2, b"k", live=False),
        _job(3, b"k", live=True),
    )
    assert k_read.live
    assert lanes.take("main", 0.0) is k_read
    assert lanes.take("main", 0.0) is a  # k's live change waits for k's read
    lanes.finish(k_read)
    assert _take_all(lanes) == [k_live, b]


def test_every_snapshot_read_ahead_of_a_live_change_of_its_key_is_lifted() -> None:
    """Two reads of k wait ahead of k's live change: both go before the other key's read."""
    lanes = Lanes(snapshot_share=0)
    other, first, second, live = _queue(
        lanes,
        _job(0, b"other", live=False),
        _job(1, b"k", live=False),
        _job(2, b"k", live=False),
        _job(3, b"k", live=True),
    )
    order = []
    while job := lanes.take("main", 0.0):
        order.append(job)
        lanes.finish(job)
    assert order == [first, second, live, other]


def test_a_snapshot_read_out_or_on_a_timer_is_live_when_it_comes_back() -> None:
    """k's read is out when k's live change arrives: handed back for a retry, it goes ahead of
    the other snapshot reads."""
    lanes = Lanes(snapshot_share=0)
    k_read = _queue(lanes, _job(0, b"k", live=False))[0]
    assert lanes.take("main", 0.0) is k_read
    other, k_live = _queue(lanes, _job(1, b"other", live=False), _job(2, b"k", live=True))
    lanes.later(k_read, 5.0)
    assert lanes.take("main", 4.0) is other
    lanes.later(other, 5.0)
    assert lanes.take("main", 5.0) is k_read
    lanes.finish(k_read)
    assert _take_all(lanes, 5.0) == [k_live, other]


def test_a_live_change_coalesced_into_a_waiting_snapshot_read_makes_it_live() -> None:
    """Through the loop: the snapshot read of k, not yet sent, takes in k's live change and then
    goes ahead of the older snapshot reads of other keys (share 0, one call at a time)."""
    h = harness(concurrency=1, coalesce="latest", flow=_flow(0))
    h.feed(*(record(i, f"k{i}", f"r{i}@x.io", op="r") for i in range(4)))
    h.feed(record(4, "k3", "r3@x.io", op="u"))  # the same lead: it may combine
    run_until_done(h)
    assert h.calls.emails == ["r3@x.io", "r0@x.io", "r1@x.io", "r2@x.io"]
    assert h.pipeline.tally.coalesced == 1


def test_the_loop_sends_live_changes_first_and_snapshot_reads_their_share() -> None:
    """Through the loop, with ``flow.snapshot_share`` 0.25: eight snapshot reads then four creates
    arrive together; every fourth call is a snapshot read while creates wait."""
    h = harness(concurrency=1, flow=_flow(0.25))
    h.feed(*(record(i, f"k{i}", f"r{i}@x.io", op="r") for i in range(8)))
    h.feed(*(record(i, f"k{i}", f"c{i}@x.io") for i in range(8, 12)))
    run_until_done(h)
    expected = ["c8", "c9", "c10", "r0", "c11", *(f"r{i}" for i in range(1, 8))]
    assert h.calls.emails == [f"{name}@x.io" for name in expected]


def _flow(share: float) -> FlowSettings:
    return FlowSettings(commit_interval_seconds=0.001, snapshot_share=share)


# -- the rest of the lanes' interface, with both classes -------------------------------------------


def test_ready_jobs_lists_the_order_take_hands_them_out() -> None:
    """The read-only list follows the credit, from its current state: the bulk planner builds
    batches in the order single calls would go."""
    lanes = Lanes(snapshot_share=0.25)
    _backlog(lanes, reads=6, lives=6)
    taken = [lanes.take("main", 0.0) for _ in range(3)]
    assert [job.record.offset if job else None for job in taken] == [6, 7, 8]
    listed = list(lanes.ready_jobs("main", 0.0))  # three live changes out: a read is owed
    assert _offsets(listed) == [0, 9, 10, 11, 1, 2, 3, 4, 5]
    assert _take_all(lanes) == listed
    assert list(lanes.ready_jobs("elsewhere", 0.0)) == []


def test_claim_hands_out_jobs_of_both_classes_and_charges_the_credit() -> None:
    """Claimed jobs are no longer ready, wherever they were queued; live ones claimed while
    snapshot reads wait earn the reads their share."""
    lanes = Lanes(snapshot_share=0.25)
    _backlog(lanes, reads=4, lives=6)
    jobs = {job.record.offset: job for job in lanes.ready_jobs("main", 0.0)}
    lanes.claim("main", [jobs[5], jobs[6], jobs[7]])
    assert _offsets(list(lanes.ready_jobs("main", 0.0))) == [0, 4, 8, 9, 1, 2, 3]
    lanes.claim("main", [jobs[1]])  # a snapshot read: it spends the credit
    assert _offsets(_take_all(lanes)) == [4, 8, 9, 0, 2, 3]
    assert not lanes.ready("main", 0.0)


def test_ready_is_false_when_only_stale_entries_are_queued() -> None:
    """A snapshot read lifted to the live queue and handed out from there leaves nothing ready."""
    lanes = Lanes()
    read = _queue(lanes, _job(0, b"k", live=False))[0]
    lanes.add(_job(1, b"k", live=True))
    assert lanes.ready("main", 0.0)
    assert lanes.take("main", 0.0) is read
    assert not lanes.ready("main", 0.0)
    assert list(lanes.ready_jobs("main", 0.0)) == []


def test_take_with_a_filter_follows_the_priority_order() -> None:
    """A filtered take returns the first accepted job in hand-out order, leaving the rest."""
    lanes = Lanes(snapshot_share=0)
    _backlog(lanes, reads=2, lives=2)
    job = lanes.take("main", 0.0, lambda j: j.record.offset != 2)
    assert job is not None
    assert job.record.offset == 3
    assert _offsets(_take_all(lanes)) == [2, 0, 1]


def test_drop_removes_ready_jobs_of_both_classes() -> None:
    """Revoking a partition removes its live and snapshot jobs; other partitions' stay, in
    order."""
    lanes = Lanes(snapshot_share=0)
    for offset, (partition, live) in enumerate(itertools.product([0, 1], [False, True])):
        source = SourceRecord("leads", partition, offset, b"%d" % offset, b"v")
        lanes.add(Job(source, "leads", "main", LIVE, 0.0, live=live))
    dropped = lanes.drop([("leads", 0)])
    assert sorted(_offsets(dropped)) == [0, 1]
    assert _offsets(_take_all(lanes)) == [3, 2]
    assert len(lanes) == 2


def test_entries_left_behind_do_not_pile_up() -> None:
    """Snapshot reads lifted out of a queue that never moves (share 0, live changes all the
    time) leave entries behind that are dropped: the queue stays about the size of what waits."""
    lanes = Lanes(snapshot_share=0)
    lanes.add(_job(0, b"stuck", live=False))
    for offset in range(1, 2001, 2):
        read = _job(offset, b"%d" % offset, live=False)
        lanes.add(read)
        lanes.add(_job(offset + 1, b"%d" % offset, live=True))
        assert lanes.take("main", 0.0) is read
        lanes.finish(read)
        live = lanes.take("main", 0.0)
        assert live is not None
        lanes.finish(live)
    assert len(lanes._ready["main"].snapshot._entries) <= 3
    assert _offsets(_take_all(lanes)) == [0]
