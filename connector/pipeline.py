"""The connector's loop (SPEC §2), on one thread, one numbered step after another:

    consume → decode → unwrap → map → plan calls under the budgets → submit → settle answers
    → record results → commit

Records are prepared by their :class:`~connector.transform.route.Route`; jobs, calls and answers
are the :class:`~connector.flow.dispatch.Dispatcher`'s; outcomes and offsets are
:class:`~connector.flow.outcomes.Outcomes`'. HTTP calls run on the submitter's workers and come
back as answers; everything else is plain state owned by this loop. Outcomes count as durable only
when the broker acknowledged them, and only contiguous durable prefixes are committed.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from connector.errors import FatalError
from connector.flow.deadline import REVOKE_S, Grace
from connector.flow.dispatch import Dispatcher
from connector.flow.fleet import Shares
from connector.flow.lanes import Job
from connector.flow.observe import (
    Progress,
    Snapshot,
    account_view,
    not_ready,
    progress_fields,
    route_backlog,
    take_snapshot,
    tracking_fields,
    tracking_view,
)
from connector.flow.outcomes import Outcomes, names
from connector.flow.pauses import Pauses
from connector.flow.planner import SinglePlanner
from connector.logs import flush_logs, get_logger
from connector.records import DeadLetter, Skip

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from connector.flow.accounts import Account
    from connector.flow.deadline import Deadline
    from connector.flow.fingerprints import Memory
    from connector.flow.observe import Tally
    from connector.flow.offsets import TopicPartitionKey
    from connector.flow.planner import Planner
    from connector.flow.ports import Calls, Input, Output, Recovery
    from connector.flow.quotas import Quotas
    from connector.flow.tracking import Tracking
    from connector.records import SourceRecord
    from connector.settings.model import FlowSettings, RetrySettings
    from connector.transform.route import Route

__all__ = ["Pipeline"]

_log = get_logger(__name__)
_PAUSED_POLL_S = 0.1


class Pipeline:
    """Runs the loop until asked to stop; raises :class:`FatalError` when it must stop early."""

    def __init__(
        self,
        *,
        routes: Callable[[str], Route | None],
        accounts: Mapping[str, Account],
        output: Output,
        calls: Calls,
        recovery: Recovery | None = None,
        retry: RetrySettings,
        flow: FlowSettings,
        planner: Planner | None = None,
        memory: Memory | None = None,
        quotas: Quotas | None = None,
        tracking: Tracking | None = None,
        progress_interval: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        draw: Callable[[], float] | None = None,
    ) -> None:
        import random  # noqa: PLC0415 - default jitter source only

        self._routes, self._output, self._recovery = routes, output, recovery
        self._outcomes = Outcomes(output, wall)
        self._dispatcher = Dispatcher(
            accounts=accounts,
            planner=planner or SinglePlanner(routes),
            calls=calls,
            outcomes=self._outcomes,
            routes=routes,
            retry=retry,
            clock=clock,
            wall=wall,
            draw=draw or random.random,
            memory=memory,
            snapshot_share=flow.snapshot_share,
            tracking=tracking,
        )
        self._memory, self._quotas = memory, quotas
        self._tracker = self._dispatcher.tracker  # what LeadSquared did with them (SPEC §13)
        self._pauses = Pauses(flow, routes)
        self._flow, self._clock, self._wall = flow, clock, wall
        self._input: Input | None = None
        self._joined = False
        self._shares = Shares(accounts.values(), routes, clock, wall)
        self.last_turn = clock()  # when the loop last turned (for /livez)
        self.snapshot = Snapshot()  # the state /metrics and /readyz serve, replaced each second
        self._next_publish = 0.0
        self._stopping = False
        self._failed = False
        self._next_commit = self._next_poll = 0.0
        self._progress = Progress(progress_interval, clock())
        self._grace = Grace(flow.shutdown_grace_seconds, clock)  # a graceful stop's deadlines

    # -- wiring -------------------------------------------------------------------------------

    @property
    def tally(self) -> Tally:
        """What happened so far."""
        return self._outcomes.tally

    def attach(self, source: Input) -> None:
        """Use ``source``, which calls back :meth:`assigned`, :meth:`revoked`, :meth:`lost`."""
        self._input = source

    def request_stop(self) -> None:
        """Ask the loop to stop gracefully (signal handlers call this): the grace starts now."""
        self._grace.begin()
        self._stopping = True

    def time_left(self, otherwise: float) -> float:
        """Seconds left of the grace of a graceful stop; ``otherwise`` when none began."""
        return self._grace.left(otherwise)

    def run(self) -> None:
        """Loop until :meth:`request_stop`, then drain, commit and flush by the stop's deadline and
        leave the group in the reserve after it: all within the grace (SPEC §2.10)."""
        source = self._source()
        try:
            while not self._stopping:
                self.step()
        except FatalError:
            self._failed = True  # leave the group without draining or committing more
            source.close()
            raise
        _log.info("connector.stopping", calls_in_flight=self._dispatcher.in_flight)
        self._finish(None, self._grace.begin())
        source.close()  # its revoke callback gets what is left of the same deadline

    def step(self) -> None:
        """One turn of the loop."""
        source, wait, now = self._source(), self._idle_wait(), self._clock()
        # 1. consume (block on Kafka only when no call is out: answers must wake us otherwise);
        # while paused, only as often as the group needs (each poll hands the GIL away)
        records = []
        if not self._pauses.full or now >= self._next_poll:
            self._next_poll = now + _PAUSED_POLL_S
            records = source.poll(
                self._flow.poll_batch_size, 0 if self._dispatcher.in_flight else wait
            )
        # 2-4. decode → unwrap → map, into per-key lanes (or straight to an outcome)
        for record in records:
            self._intake(record)
        # 5. answers of calls made earlier (wait for them only when some are out)
        self._dispatcher.collect(wait if self._dispatcher.in_flight and not records else 0)
        # 5b. Status API polls of accepted calls; a route the canary halts is held back
        if self._tracker is not None:
            self._tracker.poll()
            self._hold_halted()
        # 6. rate-limit (this replica's shares of the budgets, as learned) → plan → submit
        if not self._failed:
            self._shares.update(source)
        now = self._clock()
        self._dispatcher.dispatch(now=now)
        if self._tracker is not None:  # polls take the calls the records left at that moment
            self._tracker.spare(now)
        if self._quotas is not None:  # the calls spent of daily quotas, kept in Kafka
            self._quotas.save(self._clock())
        # 7. record results: acknowledged outcomes become durable
        self._output.poll()
        # 8. commit contiguous durable prefixes
        if self._clock() >= self._next_commit:
            self._commit()
        # 9. bounded memory: pause while too much is in flight
        self._pauses.pressure(source, self._outcomes)
        self._report_progress()
        self.last_turn = self._clock()
        if self.last_turn >= self._next_publish:
            self._publish()
        flush_logs()

    # -- rebalance (called from inside Input.poll) ---------------------------------------------

    def assigned(self, tps: list[TopicPartitionKey]) -> None:
        """New partitions: find their records that already have an outcome (written by an
        owner that stopped before committing them), so they are not called again."""
        _log.info("partitions.assigned", partitions=names(tps))
        self._joined = True
        self._shares.gained(tps)
        self._pauses.assigned(self._source(), tps)
        if not tps or self._stopping or self._failed:
            return
        # Reads back, each bounded by its own timeout; the loop counts as turning between them
        # (/livez), and together they stay well within max.poll.interval.ms.
        if self._recovery is not None:
            self._outcomes.found(self._recovery.done(self._source().committed(tps)))
            self.last_turn = self._clock()
        if self._quotas is not None:
            self._quotas.restore(tps, self._wall())
            self.last_turn = self._clock()
        if self._memory is not None:
            self._memory.restore(tps)
            self.last_turn = self._clock()
            _log.info("partitions.state_read", partitions=names(tps), keys=len(self._memory))
        if self._tracker is not None:
            self._tracker.restore(tps)
            self._hold_halted(tps)

    def revoked(self, tps: list[TopicPartitionKey]) -> None:
        """Finish what is in flight for these partitions, commit it, hand back the rest."""
        _log.info("partitions.revoked", partitions=names(tps))
        if not self._failed:  # after a failure, leave without finishing or committing more
            self._finish(set(tps), self._grace.within(REVOKE_S))  # a stop's deadline, if stopping
        self._forget(tps)

    def lost(self, tps: list[TopicPartitionKey]) -> None:
        """Partitions taken away without a chance to commit: drop their state."""
        _log.warning("partitions.lost", partitions=names(tps))
        self._forget(tps)

    # -- steps ----------------------------------------------------------------------------------

    def _intake(self, record: SourceRecord) -> None:
        if not self._outcomes.take(record):
            return
        route = self._routes(record.topic)
        if route is None:  # subscribed by the routes' patterns, so only a misconfigured group
            why = DeadLetter("route", f"no route consumes topic {record.topic!r}", "NoRoute")
            self._outcomes.dead_letter(record, None, why)
            return
        prepared = route.prepare(record)
        if isinstance(prepared, Skip | DeadLetter):  # after its key's earlier outcomes
            self._dispatcher.settle_without_call(record, route, prepared)
        elif self._tracker is not None and self._tracker.canary.halted(route.name):
            return  # held: neither sent nor committed until the mapping is fixed
        else:
            live = not prepared.snapshot
            job = Job(record, route.name, route.account, prepared, self._clock(), live=live)
            self._dispatcher.queue(job, route)

    def _finish(self, scope: set[TopicPartitionKey] | None, deadline: Deadline) -> None:
        """Finish the work of ``scope`` (every partition when ``None``), commit it and make durable
        what the next owner reads back (quota counts, then sealed fingerprints), by ``deadline``."""
        self._dispatcher.drain(scope, deadline, self._output)
        self._commit(scope)
        if self._quotas is not None:
            self._quotas.settle(deadline.left())
        if self._memory is not None:
            self._memory.settle(deadline.left(), scope)

    def _commit(self, only: set[TopicPartitionKey] | None = None) -> None:
        self._next_commit = self._clock() + self._flow.commit_interval_seconds
        self._outcomes.commit(self._source(), only, self._clock)

    def _hold_halted(self, tps: list[TopicPartitionKey] | None = None) -> None:
        """Pause the partitions of routes the canary halted and drop their queued jobs: their
        records stay uncommitted (``tps``: newly assigned ones, else the whole assignment)."""
        assert self._tracker is not None  # noqa: S101 - only with tracking
        halted = {halt.route for halt in self._tracker.canary.halts}
        if new := self._pauses.hold(self._source(), halted, tps):
            self._dispatcher.forget(new)

    def _publish(self) -> None:
        """Replace the snapshot the health port serves (about once a second)."""
        now = self._clock()
        self._next_publish = now + 1.0
        accounts = self._dispatcher.accounts.values()
        self.snapshot = take_snapshot(
            self._outcomes,
            [account_view(account, now) for account in accounts],
            lag=sum(self._source().lag().values()),
            paused=self._pauses.full,
            not_ready=not_ready(
                stopping=self._stopping or self._failed,
                joined=self._joined,
                results_delayed=self._output.delayed,
                accounts=accounts,
                halts=() if self._tracker is None else self._tracker.canary.halts,
            ),
            tracking=None if self._tracker is None else tracking_view(self._tracker),
        )

    def _report_progress(self) -> None:
        """Every ``progress_interval``: see :func:`connector.flow.observe.progress_fields`."""
        last, now = self._progress, self._clock()
        if now - last.at < last.interval:
            return
        backlog = route_backlog(self._source().lag(), self._outcomes.offsets, self._routes)
        in_flight, accounts = self._outcomes.pending(), self._dispatcher.accounts
        fields = progress_fields(
            self.tally, last, now, in_flight=in_flight, backlog=backlog, accounts=accounts
        )
        if self._tracker is not None:
            fields |= tracking_fields(self._tracker)
        _log.info("progress", **fields)

    def _forget(self, tps: list[TopicPartitionKey]) -> None:
        if self._memory is not None:
            self._memory.forget(tps)
        if self._quotas is not None:
            self._quotas.forget(tps)
        if self._tracker is not None:
            self._tracker.forget(tps)
        self._pauses.forget(tps)
        self._dispatcher.forget(tps)
        self._outcomes.forget(tps)
        self._shares.lost(tps)

    def _source(self) -> Input:
        if self._input is None:
            raise RuntimeError("Pipeline.attach() was not called")
        return self._input

    def _idle_wait(self) -> float:
        """How long a turn may block waiting for records or answers."""
        now, wait = self._clock(), 0.1 if not self._dispatcher.in_flight else 0.02
        floor = 0.0 if self._tracker is None else self._tracker.canary.idle()
        return max(0.0, floor, min(wait, self._dispatcher.wait(now)))
