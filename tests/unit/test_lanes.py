"""Per-key order (SPEC §2.4): same key waits for the earlier record; other keys run in parallel."""

from __future__ import annotations

import pytest

from connector.flow.lanes import Job, Lanes
from connector.records import Payload, Skip, SourceRecord

PAYLOAD = Payload("capture", (), [])


def _job(offset: int, key: bytes | None, account: str = "main", partition: int = 0) -> Job:
    record = SourceRecord("leads", partition, offset, key, b"v")
    return Job(record, "leads", account, PAYLOAD, queued_at=0.0)


def _skip(offset: int, key: bytes | None, partition: int = 0) -> Job:
    """A record that needs no call (a skipped delete), waiting for its turn."""
    job = _job(offset, key, partition=partition)
    job.outcome = Skip("delete")
    return job


def _offsets(jobs: list[Job | None]) -> list[int | None]:
    return [j.record.offset if j else None for j in jobs]


def test_same_key_waits_for_the_earlier_record_to_finish() -> None:
    """The second record of a key is not handed out until the first has its outcome."""
    lanes = Lanes()
    first, second = _job(0, b"k"), _job(1, b"k")
    lanes.add(first)
    lanes.add(second)
    assert lanes.take("main", 0.0) is first
    assert lanes.take("main", 0.0) is None
    lanes.finish(first)
    assert lanes.take("main", 0.0) is second


def test_different_keys_run_in_parallel_oldest_first() -> None:
    """Heads of different keys are all ready, in arrival order."""
    lanes = Lanes()
    for offset, key in enumerate([b"a", b"b", b"a", b"c"]):
        lanes.add(_job(offset, key))
    assert _offsets([lanes.take("main", 0.0) for _ in range(4)]) == [0, 1, 3, None]
    assert len(lanes) == 4


def test_records_without_key_are_independent() -> None:
    """Null-key records do not wait for one another."""
    lanes = Lanes()
    lanes.add(_job(0, None))
    lanes.add(_job(1, None))
    assert _offsets([lanes.take("main", 0.0), lanes.take("main", 0.0)]) == [0, 1]


def test_retry_keeps_the_lane_blocked_until_the_timer_fires() -> None:
    """A job handed back for a retry stays its key's head and is ready again at its time."""
    lanes = Lanes()
    first, second = _job(0, b"k"), _job(1, b"k")
    lanes.add(first)
    lanes.add(second)
    assert lanes.take("main", 0.0) is first
    lanes.later(first, 5.0)
    assert lanes.next_timer() == 5.0
    assert lanes.take("main", 4.9) is None
    assert not lanes.ready("main", 4.9)
    assert lanes.take("main", 5.0) is first
    lanes.finish(first)
    assert lanes.take("main", 5.0) is second


def test_accounts_are_served_independently() -> None:
    """Each account hands out only its own jobs."""
    lanes = Lanes()
    lanes.add(_job(0, b"a", account="one"))
    lanes.add(_job(1, b"b", account="two"))
    assert _offsets([lanes.take("two", 0.0), lanes.take("two", 0.0)]) == [1, None]
    assert set(lanes.accounts()) == {"one", "two"}


def test_drop_removes_every_job_of_revoked_partitions() -> None:
    """Revoking a partition removes its waiting, ready and timed jobs; others stay."""
    lanes = Lanes()
    kept = _job(0, b"x", partition=1)
    timed, waiting = _job(0, b"k"), _job(1, b"k")
    for job in (timed, waiting, _job(2, b"j"), kept):
        lanes.add(job)
    assert lanes.take("main", 0.0) is timed
    lanes.later(timed, 9.0)
    dropped = lanes.drop([("leads", 0)])
    assert sorted(j.record.offset for j in dropped) == [0, 1, 2]
    assert len(lanes) == 1
    assert lanes.next_timer() is None
    assert lanes.take("main", 10.0) is kept


def test_finishing_a_job_that_is_not_the_head_is_an_error() -> None:
    """Only a lane's head can finish: anything else is a bug in the caller."""
    lanes = Lanes()
    first, second = _job(0, b"k"), _job(1, b"k")
    lanes.add(first)
    lanes.add(second)
    with pytest.raises(RuntimeError, match="not its lane's head"):
        lanes.finish(second)


def test_take_with_a_filter_skips_jobs_it_rejects() -> None:
    """A filtered take returns the oldest accepted job and leaves the others ready."""
    lanes = Lanes()
    for offset, key in enumerate([b"a", b"b", b"c"]):
        lanes.add(_job(offset, key))
    assert _offsets([lanes.take("main", 0.0, lambda j: j.record.offset > 0)]) == [1]
    assert _offsets([lanes.take("main", 0.0, lambda _: False)]) == [None]
    assert _offsets([lanes.take("main", 0.0), lanes.take("main", 0.0)]) == [0, 2]


def test_a_ready_made_outcome_is_never_handed_out_and_is_due_at_its_turn() -> None:
    """A record without a call waits behind its key's earlier job (in flight), is due once that
    one finished, and the key's later job waits for it in turn; other keys are not held."""
    lanes = Lanes()
    first, skipped, later, other = _job(0, b"k"), _skip(1, b"k"), _job(2, b"k"), _job(3, b"o")
    for job in (first, skipped, later, other):
        lanes.add(job)
    assert _offsets([lanes.take("main", 0.0) for _ in range(3)]) == [0, 3, None]
    assert lanes.due() == []
    lanes.finish(first)
    assert lanes.due() == [skipped]
    assert (lanes.due(), lanes.take("main", 0.0)) == ([], None)  # `later` waits for the skip
    lanes.finish(skipped)
    assert lanes.take("main", 0.0) is later


def test_ready_made_outcomes_of_a_revoked_partition_are_dropped_not_due() -> None:
    """Revoking a partition drops its records without a call like any job: handed back, never
    settled, whether still queued or already due."""
    lanes = Lanes()
    first, queued = _job(0, b"k"), _skip(1, b"k")
    lanes.add(first)
    lanes.add(queued)
    due = _skip(0, b"j", partition=1)
    lanes.add(due)  # alone in its lane: due at once
    assert lanes.take("main", 0.0) is first
    dropped = lanes.drop([("leads", 0), ("leads", 1)])
    assert {id(j) for j in dropped} == {id(first), id(queued), id(due)}
    assert (lanes.due(), len(lanes)) == ([], 0)
