"""[pure] Draining before a revoke or a graceful stop (SPEC §2.10): calls in flight in the scope
are finished, and queued records that lie behind an already-done one are sent, so the done records
form a committable prefix; everything else is handed back (not sent, not committed). Only work
that can still end by the deadline is waited for."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

    from connector.flow.deadline import Deadline
    from connector.flow.dispatch import Dispatcher
    from connector.flow.lanes import Job
    from connector.flow.offsets import TopicPartitionKey
    from connector.flow.ports import Output

__all__ = ["drain"]


def drain(
    dispatcher: Dispatcher,
    scope: set[TopicPartitionKey] | None,
    deadline: Deadline,
    output: Output,
) -> None:
    """Finish the work of ``scope`` (all partitions when ``None``) by ``deadline`` (see the module
    docstring): records no job holds (held back with their route) are never sent, so their gaps
    are not waited for. Waits for ``output`` to acknowledge the outcomes until ``deadline``."""
    offsets = dispatcher.offsets
    gaps: dict[TopicPartitionKey, int] = {}  # highest done offset beyond a pending one

    def fills_a_gap(job: Job) -> bool:
        return job.record.offset < gaps.get(job.tp, -1)

    while not deadline.expired():
        gaps.clear()
        for tp in offsets.partitions():
            highest = offsets.highest_done_beyond_watermark(tp)
            if highest is not None and (scope is None or tp in scope):
                gaps[tp] = highest
        dispatcher.send_records(fills_a_gap, dispatcher.clock())  # records only: no polls
        if not _busy(dispatcher, scope, fills_a_gap if gaps else None, deadline):
            break
        dispatcher.collect(min(0.05, deadline.left()))
        output.poll()
    output.flush(deadline)


def _busy(
    dispatcher: Dispatcher,
    scope: set[TopicPartitionKey] | None,
    fills: Callable[[Job], bool] | None,
    deadline: Deadline,
) -> bool:
    """Whether draining ``scope`` must wait on: a call is out for one of its records, or a queued
    job that ``fills`` a gap (``None``: no gap) may still go before ``deadline``: a ready one the
    participants admit (it goes as the budget lets it), or one waiting for a retry due by then
    (any job's: the lanes keep retries by time only). A record no job holds (held back with its
    route) or a participant refuses until polls the drain does not make is never waited for."""
    if any(scope is None or job.tp in scope for job in dispatcher.jobs_out()):
        return True
    if fills is None:
        return False
    if (timer := dispatcher.lanes.next_timer()) is not None and timer < deadline.at:
        return True
    return dispatcher.admitted_ready(fills, dispatcher.clock())
