"""The connector's loop (SPEC §2), on one thread, one numbered step after another:

    consume → decode → unwrap → map → plan calls under the budgets → submit → settle answers
    → record results → commit

Jobs, calls and answers are the :class:`~connector.flow.dispatch.Dispatcher`'s, outcomes and
offsets :class:`~connector.flow.outcomes.Outcomes`'; each feature that keeps state per partition
takes part as a :mod:`~connector.flow.participant`. HTTP calls run on the submitter's workers. Only
outcomes the broker acknowledged are durable, and only contiguous durable prefixes are committed.
"""

from __future__ import annotations

import random
import time
from typing import TYPE_CHECKING

from connector.errors import FatalError
from connector.flow.deadline import REVOKE_S, Grace
from connector.flow.dispatch import Dispatcher
from connector.flow.drain import drain
from connector.flow.fleet import Shares
from connector.flow.intake import intake
from connector.flow.outcomes import Outcomes, names
from connector.flow.participant import Loop, Participants
from connector.flow.pauses import Pauses
from connector.flow.planner import SinglePlanner
from connector.flow.reports import Reports
from connector.logs import flush_logs, get_logger

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from connector.flow.accounts import Account
    from connector.flow.deadline import Deadline
    from connector.flow.observe import Snapshot
    from connector.flow.offsets import TopicPartitionKey
    from connector.flow.participant import Participant
    from connector.flow.planner import Planner
    from connector.flow.ports import Calls, Input, Output
    from connector.flow.tally import Tally
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
        retry: RetrySettings,
        flow: FlowSettings,
        planner: Planner | None = None,
        participants: Sequence[Callable[[Loop], Participant]] = (),
        progress_interval: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        draw: Callable[[], float] | None = None,
    ) -> None:
        self._routes, self._output = routes, output
        self._outcomes = Outcomes(output, wall)
        loop = Loop(
            accounts,
            routes,
            self._outcomes,
            clock,
            wall,
            committed=lambda tps: self._source().committed(tps),
            calls_out=lambda route: self._dispatcher.out_by_route[route],
            doubt=lambda record: self._participants.doubted(record),  # noqa: PLW0108 - built below
        )
        self._participants = Participants([build(loop) for build in participants])
        self._dispatcher = Dispatcher(
            loop,
            self._participants,
            planner=planner or SinglePlanner(routes),
            calls=calls,
            retry=retry,
            draw=draw or random.random,
            snapshot_share=flow.snapshot_share,
        )
        self._pauses = Pauses(flow, routes)
        self._flow, self._clock, self._wall = flow, clock, wall
        self._input: Input | None = None
        self._joined = False
        self._shares = Shares(accounts.values(), routes, clock, wall)
        self.last_turn = clock()  # when the loop last turned (for /livez)
        self._reports = Reports(loop, self._participants, output, progress_interval)
        self._stopping = self._failed = False
        self._next_commit = self._next_poll = 0.0
        self._grace = Grace(flow.shutdown_grace_seconds, clock)  # a graceful stop's deadlines

    @property
    def tally(self) -> Tally:
        """What happened so far."""
        return self._outcomes.tally

    @property
    def snapshot(self) -> Snapshot:
        """The state /metrics and /readyz serve, replaced about once a second."""
        return self._reports.snapshot

    def attach(self, source: Input) -> None:
        """Use ``source``, which calls back :meth:`assigned`, :meth:`revoked`, :meth:`lost`."""
        self._input = source

    def request_stop(self) -> None:
        """Ask the loop to stop gracefully (signal handlers call this): the grace starts now."""
        self._grace.begin()
        self._stopping = True

    def closing(self, otherwise: float) -> Deadline:
        """The end of a graceful stop's grace; ``otherwise`` seconds from now when none began."""
        return self._grace.closing(otherwise)

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
        held = self._participants.held_routes() if records else ()
        for record in records:
            intake(
                record,
                route_of=self._routes,
                outcomes=self._outcomes,
                dispatcher=self._dispatcher,
                held=held,
                now=self._clock(),
            )
        # 5. answers of calls made earlier (wait for them only when some are out)
        self._dispatcher.collect(wait if self._dispatcher.in_flight and not records else 0)
        self._participants.before_calls()
        self._hold()  # e.g. routes the canary halted
        # 6. rate-limit (this replica's shares of the budgets, as learned) → plan → submit
        if not self._failed:
            self._shares.update(source)
        self._dispatcher.dispatch(self._clock())
        self._participants.after_calls(self._clock())
        # 7. record results: acknowledged outcomes become durable
        self._output.poll()
        # 8. commit contiguous durable prefixes
        if self._clock() >= self._next_commit:
            self._commit()
        # 9. bounded memory: pause while too much is in flight
        self._pauses.pressure(source, self._outcomes)
        self.last_turn = self._clock()
        stopping, joined = self._stopping or self._failed, self._joined
        self._reports.turn(source, paused=self._pauses.full, stopping=stopping, joined=joined)
        flush_logs()

    # -- rebalance (called from inside Input.poll) ---------------------------------------------

    def assigned(self, tps: list[TopicPartitionKey]) -> None:
        """New partitions: each participant reads back what their last owner left (records that
        already have an outcome, quota counts, fingerprints, unfinished checks)."""
        _log.info("partitions.assigned", partitions=names(tps))
        self._joined = True
        self._shares.gained(tps)
        self._pauses.assigned(self._source(), tps)
        if not tps or self._stopping or self._failed:
            return
        # Reads back, each bounded by its own timeout; the loop counts as turning between them
        # (/livez), and together they stay well within max.poll.interval.ms.
        for participant in self._participants.members:
            participant.assigned(tps)
            self.last_turn = self._clock()
        self._hold(tps)

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

    def _finish(self, scope: set[TopicPartitionKey] | None, deadline: Deadline) -> None:
        """Finish the work of ``scope`` (every partition when ``None``) and commit it, then the
        participants make durable what the next owner reads back, all by ``deadline``."""
        drain(self._dispatcher, scope, deadline, self._output)
        self._commit(scope)
        if scope is None:
            self._participants.closing(deadline)
        else:
            self._participants.revoking(scope, deadline)

    def _commit(self, only: set[TopicPartitionKey] | None = None) -> None:
        self._next_commit = self._clock() + self._flow.commit_interval_seconds
        self._outcomes.commit(self._source(), only, self._clock)

    def _hold(self, tps: list[TopicPartitionKey] | None = None) -> None:
        """Pause the partitions of routes the participants hold back and drop their queued jobs:
        their records stay uncommitted (``tps``: newly assigned ones, else the assignment)."""
        held = self._participants.held_routes()
        if held and (new := self._pauses.hold(self._source(), held, tps)):
            self._dispatcher.forget(new)

    def _forget(self, tps: list[TopicPartitionKey]) -> None:
        for part in (self._participants, self._pauses, self._dispatcher, self._outcomes):
            part.forget(tps)
        self._shares.lost(tps)

    def _source(self) -> Input:
        if self._input is None:
            raise RuntimeError("Pipeline.attach() was not called")
        return self._input

    def _idle_wait(self) -> float:
        """How long a turn may block waiting for records or answers."""
        floor, wait = self._participants.idle_floor(), self._dispatcher.wait(self._clock())
        return max(0.0, floor, min(0.02 if self._dispatcher.in_flight else 0.1, wait))
