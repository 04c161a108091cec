"""The async work queue: order, processing delay, retries on the schedule, outcomes, metrics."""

from __future__ import annotations

import pytest

from connector.testing.sim.records import Operation, Submission
from connector.testing.sim.workqueue import RETRY_SCHEDULE_S, Task, TaskStatus, WorkQueue

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
