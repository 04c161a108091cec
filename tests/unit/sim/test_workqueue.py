"""The async work queue: order, processing delay, retries on the schedule, outcomes, metrics."""

from __future__ import annotations

import pytest

from lsq_sim.records import Operation, Submission
from lsq_sim.workqueue import RETRY_SCHEDULE_S, Task, TaskStatus, WorkQueue

CAPTURE = Submission(Operation.CAPTURE)
UPDATE = Submission(Operation.UPDATE, lead_id="L")


def _task(request_id: str, due: float = 0.0, submission: Submission = CAPTURE) -> Task:
    return Task(request_id, submission, "[]", submitted_at=0.0, due_at=due)


def _queue(delays: tuple[float, ...] = RETRY_SCHEDULE_S) -> WorkQueue:
    return WorkQueue(record_limit=100, retry_delays=delays)


def test_tasks_come_out_in_order_once_due() -> None:
    """FIFO; nothing is handed out before its due time."""
    queue = _queue()
    queue.submit(_task("a", due=1.0))
    queue.submit(_task("b", due=1.5))
    assert (queue.next_due(), queue.pop_due(0.5)) == (1.0, None)
    assert [t.request_id for t in (queue.pop_due(2.0), queue.pop_due(2.0)) if t] == ["a", "b"]
    assert (queue.pending, queue.next_due()) == (0, None)


def test_success_keeps_the_sync_response_as_message() -> None:
    """Success: reason 'Request was successfully completed', Message the response string."""
    queue = _queue()
    task = _task("a")
    queue.submit(task)
    assert queue.pop_due(0.0) is task
    queue.succeed(task, '{"Status":"Success"}', now=1.0)
    assert (task.status, task.reason, task.message) == (
        TaskStatus.SUCCESS,
        "Request was successfully completed",
        '{"Status":"Success"}',
    )
    assert (queue.succeeded, queue.pending_by_operation[Operation.CAPTURE]) == (1, 0)


def test_application_error_is_a_failure_without_retry() -> None:
    """FAILURE keeps the MX type and message; the task is not queued again."""
    queue = _queue()
    task = _task("a")
    queue.submit(task)
    assert queue.pop_due(0.0) is task
    queue.fail(task, "MXDuplicateEntryException", "dup", now=1.0)
    assert (task.status, task.reason, task.exception_type, task.message) == (
        TaskStatus.FAILURE,
        "dup",
        "MXDuplicateEntryException",
        None,
    )
    assert (queue.failed, queue.pending, queue.next_due()) == (1, 0, None)


def test_system_errors_retry_on_the_scaled_schedule_then_error() -> None:
    """Ten retries at 30s, 2m, 7m, ... 3h (scaled), then ERROR."""
    delays = tuple(d * 0.001 for d in RETRY_SCHEDULE_S)
    queue = _queue(delays)
    task = _task("a")
    queue.submit(task)
    now, waits = 0.0, []
    for _ in range(11):
        popped = queue.pop_due(now)
        assert popped is task
        task.attempts += 1
        queue.system_error(task, "Unable to Connect to DB", now)
        if task.status is TaskStatus.IN_QUEUE:
            due = queue.next_due()
            assert due is not None
            waits.append(round(due - now, 6))
            now = due
    assert waits == [round(d, 6) for d in delays]
    assert (task.status, task.reason, queue.errored, queue.pending) == (
        TaskStatus.ERROR,
        "Unable to Connect to DB",
        1,
        0,
    )


def test_due_retry_goes_before_newer_tasks() -> None:
    """A retry that is due is handed out before a task that became due later."""
    queue = _queue((1.0,))
    first = _task("a", due=0.0)
    queue.submit(first)
    task = queue.pop_due(0.0)
    assert task is first
    task.attempts = 1
    queue.system_error(task, "x", now=0.0)
    queue.submit(_task("b", due=2.0))
    assert [t.request_id for t in (queue.pop_due(3.0), queue.pop_due(3.0)) if t] == ["a", "b"]


def test_lost_tasks_are_recorded_but_never_processed() -> None:
    """lost=True: the status record exists (In-Queue) but nothing is pending."""
    queue = _queue()
    queue.submit(_task("a"), lost=True)
    record = queue.get("a")
    assert record is not None
    assert (record.status, queue.pending, queue.lost) == (TaskStatus.IN_QUEUE, 0, 1)


def test_record_limit_forgets_the_oldest_records() -> None:
    """Only the most recent records are kept."""
    queue = WorkQueue(record_limit=2, retry_delays=())
    for name in "abc":
        queue.submit(_task(name))
    assert [queue.get(n) is not None for n in "abc"] == [False, True, True]


def test_metrics_report_pending_delay_and_rate_per_operation() -> None:
    """PendingMessages per operation, MaxDelayInSeconds to drain, rate over 10 minutes."""
    queue = _queue()
    for i in range(30):
        queue.submit(_task(f"c{i}"))
    queue.submit(_task("u", submission=UPDATE))
    for _ in range(10):
        task = queue.pop_due(0.0)
        assert task is not None
        queue.succeed(task, "{}", now=5.0)
    metrics = queue.metrics(Operation.CAPTURE, now=6.0, rate=7.0)
    assert metrics == {
        "PendingMessages": 20,
        "MaxDelayInSeconds": 3,
        "ProcessingRatePerMinute": 1.0,
    }
    assert queue.metrics(Operation.ACTIVITY_CREATE, now=6.0, rate=7.0) == {
        "PendingMessages": 0,
        "MaxDelayInSeconds": 0,
        "ProcessingRatePerMinute": 0.0,
    }


@pytest.mark.parametrize("count", [0, 3])
def test_clear_forgets_everything(count: int) -> None:
    """clear() empties queue, records and counters."""
    queue = _queue()
    for i in range(count):
        queue.submit(_task(str(i)))
    queue.clear()
    assert (queue.pending, queue.get("0"), queue.succeeded, queue.next_due()) == (0, None, 0, None)


def _finish(queue: WorkQueue, now: float) -> Task:
    task = queue.pop_due(now)
    assert task is not None
    queue.succeed(task, "{}", now)
    return task


def test_records_are_forgotten_ttl_seconds_after_they_finish() -> None:
    """With record_ttl_s: kept until finished + TTL, unknown from then on; the TTL counts from
    when each finished, not from submission."""
    queue = WorkQueue(record_limit=100, retry_delays=(), record_ttl_s=10.0)
    queue.submit(_task("a"))
    queue.submit(_task("b"))
    _finish(queue, now=1.0)
    _finish(queue, now=5.0)
    assert [queue.get(n, now=10.9) is not None for n in "ab"] == [True, True]
    assert [queue.get(n, now=11.0) is not None for n in "ab"] == [False, True]
    assert [queue.get(n, now=15.0) is not None for n in "ab"] == [False, False]


def test_pending_and_lost_records_are_never_forgotten() -> None:
    """A task still queued (or waiting for a retry), or lost, keeps its record past the TTL."""
    queue = WorkQueue(record_limit=100, retry_delays=(50.0,), record_ttl_s=1.0)
    queue.submit(_task("queued", due=0.0))
    queue.submit(_task("lost"), lost=True)
    retried = queue.pop_due(0.0)
    assert retried is not None
    retried.attempts = 1
    queue.system_error(retried, "x", now=0.0)
    assert [t.request_id for t in queue.records(now=40.0)] == ["queued", "lost"]
    popped = queue.pop_due(50.0)
    assert popped is retried
    popped.attempts = 2
    queue.system_error(popped, "x", now=50.0)  # no retry left: ERROR at 50
    assert queue.get("queued", now=50.9) is not None
    assert queue.get("queued", now=51.0) is None
    assert queue.get("lost", now=1000.0) is not None


def test_submitting_forgets_expired_records_and_without_ttl_nothing_expires() -> None:
    """Expiry is lazy: a submission at t forgets what expired by t. No TTL: records stay."""
    queue = WorkQueue(record_limit=100, retry_delays=(), record_ttl_s=2.0)
    queue.submit(_task("a"))
    _finish(queue, now=1.0)
    queue.submit(Task("b", CAPTURE, "[]", submitted_at=3.0, due_at=3.0))
    assert [t.request_id for t in queue.records()] == ["b"]
    kept = _queue()
    kept.submit(_task("a"))
    _finish(kept, now=1.0)
    assert kept.get("a", now=1e9) is not None


def test_ttl_and_record_limit_work_together() -> None:
    """A record the limit evicted is not expired again; the others still expire in turn."""
    queue = WorkQueue(record_limit=2, retry_delays=(), record_ttl_s=5.0)
    for name in "abc":
        queue.submit(_task(name))
        _finish(queue, now=1.0)
    assert [t.request_id for t in queue.records(now=5.9)] == ["b", "c"]
    assert queue.records(now=6.0) == []


def test_records_list_every_kept_task_with_its_outcome() -> None:
    """records(): oldest submission first, each with its status, reason and exception type."""
    queue = _queue()
    for name in "abc":
        queue.submit(_task(name))
    first = queue.pop_due(0.0)
    assert first is not None
    queue.fail(first, "MXInvalidEntityException", "Lead does not exist in the system", now=1.0)
    _finish(queue, now=1.0)
    assert [(t.request_id, t.status, t.reason, t.exception_type) for t in queue.records()] == [
        ("a", "FAILURE", "Lead does not exist in the system", "MXInvalidEntityException"),
        ("b", "Success", "Request was successfully completed", None),
        ("c", "In-Queue", None, None),
    ]


def test_metrics_under_load_grow_then_fall_back_to_zero() -> None:
    """At 5 tasks/s, 40 queued tasks: 40 pending and 8 s to drain; as they are processed at the
    rate both shrink, and once all are done both are 0 (the rate is what was processed)."""
    queue = _queue()
    for i in range(40):
        queue.submit(_task(f"c{i}"))
    assert queue.metrics(Operation.CAPTURE, now=0.0, rate=5.0) == {
        "PendingMessages": 40,
        "MaxDelayInSeconds": 8,
        "ProcessingRatePerMinute": 0.0,
    }
    seen = []
    for i in range(40):
        now = i / 5.0
        _finish(queue, now)
        metrics = queue.metrics(Operation.CAPTURE, now, rate=5.0)
        seen.append((metrics["PendingMessages"], metrics["MaxDelayInSeconds"]))
    assert seen[9] == (30, 6)
    assert seen == sorted(seen, reverse=True)
    assert queue.metrics(Operation.CAPTURE, now=8.0, rate=5.0) == {
        "PendingMessages": 0,
        "MaxDelayInSeconds": 0,
        "ProcessingRatePerMinute": 4.0,
    }
