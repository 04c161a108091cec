"""[pure] One account's async work queue: task records (what the Status API reports, kept up to a
count and, optionally, for a time after they finish), FIFO order with a processing delay, retries
of system errors on LeadSquared's schedule, and the numbers the Metrics API reports. Time is
passed in; the async driver lives in ``tasks.py``."""

from __future__ import annotations

import heapq
import math
from collections import Counter, OrderedDict, deque
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from lsq_sim.meters import RateMeter
from lsq_sim.records import Operation, Submission

if TYPE_CHECKING:
    from collections.abc import Sequence

    from pydantic import JsonValue


__all__ = ["RETRY_SCHEDULE_S", "Task", "TaskStatus", "WorkQueue"]

#: Delays before each retry of a system error: 30s, 2m, 7m, 15m, 30m, 45m, 60m, 1.5h, 2h, 3h.
RETRY_SCHEDULE_S = (30, 120, 420, 900, 1800, 2700, 3600, 5400, 7200, 10800)


#: What a finished task keeps of its submission: the operation only.
_DONE = {operation: Submission(operation) for operation in Operation}


class TaskStatus(StrEnum):
    """TaskStatus.Status values."""

    IN_QUEUE = "In-Queue"
    SUCCESS = "Success"
    FAILURE = "FAILURE"  # an application (MX) error: never retried
    ERROR = "ERROR"  # a system error, still failing after every retry


@dataclass(slots=True)
class Task:
    """One accepted async request and its outcome so far."""

    request_id: str
    submission: Submission
    body: str
    submitted_at: float
    due_at: float
    attempts: int = 0
    status: TaskStatus = TaskStatus.IN_QUEUE
    reason: str | None = None
    exception_type: str | None = None
    message: str | None = None  # the sync response, JSON-encoded, on success


class WorkQueue:
    """Pending tasks in FIFO order plus a retry heap; finished tasks stay as records, the oldest
    submissions evicted past ``record_limit`` and, with ``record_ttl_s``, each forgotten that
    long after it finished (lazily: when records are read or a task is submitted)."""

    def __init__(
        self, record_limit: int, retry_delays: Sequence[float], record_ttl_s: float | None = None
    ) -> None:
        self._record_limit = record_limit
        self._retry_delays = tuple(retry_delays)
        self._record_ttl_s = record_ttl_s
        self.clear()

    def clear(self) -> None:
        """Forget every task and count."""
        self._fifo: deque[Task] = deque()
        self._retries: list[tuple[float, int, Task]] = []
        self._retry_seq = 0
        self._records: dict[str, Task] = {}
        # With a TTL: request id -> when it finished, in that order (only ids still in _records)
        self._finished: OrderedDict[str, float] = OrderedDict()
        self._meters: dict[Operation, RateMeter] = {}
        self.pending_by_operation: Counter[Operation] = Counter()
        self.succeeded = self.failed = self.errored = self.lost = 0

    @property
    def pending(self) -> int:
        """Tasks waiting for processing (including those waiting for a retry)."""
        return len(self._fifo) + len(self._retries)

    def get(self, request_id: str, now: float | None = None) -> Task | None:
        """The record of ``request_id``, if still kept (at ``now``, when given)."""
        if now is not None:
            self._expire(now)
        return self._records.get(request_id)

    def records(self, now: float | None = None) -> list[Task]:
        """Every record still kept (at ``now``, when given), oldest submission first."""
        if now is not None:
            self._expire(now)
        return list(self._records.values())

    def submit(self, task: Task, *, lost: bool = False) -> None:
        """Record ``task`` (first forgetting records expired at its submission time); queue it
        unless it is to be lost (accepted, never processed)."""
        self._expire(task.submitted_at)
        self._records[task.request_id] = task
        if len(self._records) > self._record_limit:
            oldest = next(iter(self._records))
            del self._records[oldest]
            self._finished.pop(oldest, None)
        if lost:
            self.lost += 1
            return
        self._fifo.append(task)
        self.pending_by_operation[task.submission.operation] += 1

    def next_due(self) -> float | None:
        """When the next task becomes eligible, or None when nothing is pending."""
        times = []
        if self._fifo:
            times.append(self._fifo[0].due_at)
        if self._retries:
            times.append(self._retries[0][0])
        return min(times) if times else None

    def pop_due(self, now: float) -> Task | None:
        """Take the eligible task that has waited longest, if any."""
        retry_due = self._retries[0][0] if self._retries else None
        fifo_due = self._fifo[0].due_at if self._fifo else None
        if (
            retry_due is not None
            and retry_due <= now
            and (fifo_due is None or retry_due <= fifo_due)
        ):
            return heapq.heappop(self._retries)[2]
        if fifo_due is not None and fifo_due <= now:
            return self._fifo.popleft()
        return None

    def succeed(self, task: Task, message: str, now: float) -> None:
        """The sync semantics applied: Success with the sync response as ``Message``."""
        self._finish(task, TaskStatus.SUCCESS, "Request was successfully completed", now)
        task.message = message
        self.succeeded += 1

    def fail(self, task: Task, exception_type: str, reason: str, now: float) -> None:
        """An application (MX) error: FAILURE, not retried."""
        self._finish(task, TaskStatus.FAILURE, reason, now)
        task.exception_type = exception_type
        self.failed += 1

    def system_error(self, task: Task, reason: str, now: float) -> None:
        """A system error: retry on the schedule, then ERROR after the last retry."""
        task.reason = reason
        retry = task.attempts - 1
        if retry < len(self._retry_delays):
            task.due_at = now + self._retry_delays[retry]
            self._retry_seq += 1
            heapq.heappush(self._retries, (task.due_at, self._retry_seq, task))
            return
        self._finish(task, TaskStatus.ERROR, reason, now)
        self.errored += 1

    def metrics(self, operation: Operation, now: float, rate: float) -> dict[str, JsonValue]:
        """The Metrics API body for ``operation``."""
        pending = self.pending_by_operation[operation]
        delay = 0
        if pending:
            last_due = self._fifo[-1].due_at if self._fifo else now
            delay = math.ceil(max(self.pending / rate, last_due - now))
        meter = self._meters.get(operation)
        rate_per_minute = 0.0 if meter is None else round(meter.per_minute(now), 2)
        return {
            "PendingMessages": pending,
            "MaxDelayInSeconds": delay,
            "ProcessingRatePerMinute": rate_per_minute,
        }

    def _finish(self, task: Task, status: TaskStatus, reason: str, now: float) -> None:
        task.status, task.reason = status, reason
        operation = task.submission.operation
        task.submission = _DONE[operation]  # the parsed payload is no longer needed
        self.pending_by_operation[operation] -= 1
        self._meters.setdefault(operation, RateMeter()).add(now)
        if self._record_ttl_s is not None and self._records.get(task.request_id) is task:
            self._finished[task.request_id] = now

    def _expire(self, now: float) -> None:
        """Forget the records that finished ``record_ttl_s`` or more before ``now``."""
        if self._record_ttl_s is None:
            return
        cutoff = now - self._record_ttl_s
        finished = self._finished
        while finished and next(iter(finished.values())) <= cutoff:
            request_id, _ = finished.popitem(last=False)
            del self._records[request_id]
