"""[pure] From mapped records to their LeadSquared outcomes: jobs wait in per-key lanes, a planner
turns ready ones into calls each account's budgets allow, the calls go out through the
:class:`~connector.flow.ports.Calls` port, and each answer, interpreted, settles its members:
accepted and dead-lettered ones get their outcome, the others go back to their lane for a retry.
Everything the account's state decides (cool-downs, probes, held records) is
:class:`~connector.flow.accounts.Account`'s; what a record's own failure costs (backoff, the attempt
limit) is decided here."""

from __future__ import annotations

import itertools
from collections import Counter
from typing import TYPE_CHECKING, Any

from connector.flow.accounts import BULK
from connector.flow.lanes import Job, Lanes
from connector.flow.tracking import Tracker
from connector.logs import get_logger
from connector.lsq.answers import backoff
from connector.lsq.coalesce import combine
from connector.records import DeadLetter, Payload, Skip

if TYPE_CHECKING:
    from collections.abc import Callable, Collection, Mapping

    from connector.flow.accounts import Account
    from connector.flow.deadline import Deadline
    from connector.flow.fingerprints import Memory
    from connector.flow.offsets import TopicPartitionKey
    from connector.flow.outcomes import Outcomes
    from connector.flow.planner import Call, Planner
    from connector.flow.ports import Calls, Output
    from connector.flow.tracking import Tracking
    from connector.lsq.answers import Verdict
    from connector.records import Answer, SourceRecord
    from connector.settings.model import RetrySettings
    from connector.transform.route import Route

__all__ = ["Dispatcher"]

_log = get_logger(__name__)
_NO_CALL = Payload("capture", (), [])  # the payload of a job settled without a call (unused)


class Dispatcher:
    """Jobs from their lane to their outcome."""

    def __init__(
        self,
        *,
        accounts: Mapping[str, Account],
        planner: Planner,
        calls: Calls,
        outcomes: Outcomes,
        routes: Callable[[str], Route | None],
        retry: RetrySettings,
        clock: Callable[[], float],
        wall: Callable[[], float],
        draw: Callable[[], float],
        memory: Memory | None = None,
        snapshot_share: float = 0.1,
        tracking: Tracking | None = None,
    ) -> None:
        self._memory = memory
        self.accounts, self._planner, self._calls, self._outcomes = (
            accounts,
            planner,
            calls,
            outcomes,
        )
        self._routes, self._retry = routes, retry
        self._clock, self._wall, self._draw = clock, wall, draw
        self.lanes = Lanes(snapshot_share)
        self._tickets: dict[int, Call] = {}
        self._next_ticket = itertools.count()
        self.out_by_route: Counter[str] = Counter()  # calls in flight, by route
        self.tracker = None  # what LeadSquared then did with accepted calls (SPEC §13)
        if tracking is not None:
            self.tracker = Tracker(
                tracking,
                accounts=accounts,
                route_of=routes,
                output=outcomes.output,
                tally=outcomes.tally,
                calls_out=self.out_by_route.__getitem__,
                clock=clock,
                wall=wall,
                doubt=(lambda _: None) if memory is None else memory.invalidate,
            )

    @property
    def in_flight(self) -> int:
        """Calls sent and not answered yet."""
        return len(self._tickets)

    def queue(self, job: Job, route: Route) -> None:
        """Queue ``job`` behind the earlier jobs of its key; when the last of them has not been
        sent yet and the route coalesces, that one carries this one's change too. With no job of
        its key waiting, a payload LeadSquared last accepted for the key is skipped (SPEC §12)."""
        tail = self.lanes.tail(job)
        if tail is None and route.remember and self._memory and self._memory.unchanged(job):
            self._outcomes.skipped(job.record, route, "no_change")
            return
        tail = tail if tail is not None and tail.outcome is None else None  # a call, not a skip
        if tail is not None and tail.attempts == 0 and route.coalesce is not None:
            payload = combine(route.coalesce, tail.payload, job.payload)
            if payload is not None:
                tail.payload = payload
                tail.riders.append(job.record)
                if job.live:
                    self.lanes.quicken(tail)
                self._outcomes.tally.coalesced += 1
                return
        self.lanes.add(job)

    def dispatch(
        self, allow: Callable[[Job], bool] | None = None, now: float | None = None
    ) -> None:
        """Send every call the accounts' budgets allow at ``now`` (by default the clock's time),
        of jobs ``allow`` accepts and the tracker's canary admits."""
        now = self._clock() if now is None else now
        if (memory := self._memory) is not None and memory.closed:  # its state log says so first
            opened, before = memory.admits, allow
            allow = opened if before is None else lambda job: before(job) and opened(job)
        if (tracker := self.tracker) is not None:
            admits, only = tracker.admits, allow
            allow = admits if only is None else lambda job: only(job) and admits(job)
        for account in self.accounts.values():
            while (call := self._planner.next_call(account, self.lanes, now, allow)) is not None:
                call.slot = account.sent(call.budget, now, call.members[0].tp)
                wall = self._wall()
                for job in call.members:
                    job.attempts += 1
                    job.first_sent_at = job.first_sent_at or now
                    job.sent_wall = wall
                ticket = next(self._next_ticket)
                self._tickets[ticket] = call
                self.out_by_route[call.members[0].route] += 1
                self._outcomes.tally.api_calls += 1
                self._outcomes.tally.bulk_calls += call.budget == BULK
                self._calls.submit(ticket, account.name, call.request)

    def collect(self, timeout: float) -> None:
        """Settle the answers that arrived, waiting up to ``timeout`` for the first."""
        for ticket, answer in self._calls.collect(timeout):
            self._settle(ticket, answer, self._clock())
        self._settle_due()

    def settle_without_call(
        self, record: SourceRecord, route: Route, outcome: Skip | DeadLetter
    ) -> None:
        """The outcome of a record that needs no call (skipped, or dead-lettered before any
        call): at once, or, while earlier records of its key wait or are out, once they have
        theirs (per-key order covers every outcome: it waits in its key's lane)."""
        job = Job(record, route.name, route.account, _NO_CALL, self._clock(), outcome=outcome)
        if self.lanes.tail(job) is None:
            self._without_call(job, route)
        else:
            self.lanes.add(job)

    def _settle_due(self) -> None:
        """Settle the records without a call that the outcomes just settled let through."""
        while due := self.lanes.due():
            for job in due:
                route = self._routes(job.record.topic)
                assert route is not None  # noqa: S101 - jobs only exist for routed records
                self.lanes.finish(job)
                self._without_call(job, route)

    def _without_call(self, job: Job, route: Route) -> None:
        """Write the ready-made outcome of ``job``, whose turn it is."""
        if self._memory is not None:  # a delete forgets its key's fingerprint
            self._memory.settled(job.record, job.outcome)
        if isinstance(job.outcome, Skip):
            self._outcomes.skipped(job.record, route, job.outcome.reason)
        elif job.outcome is not None:
            self._outcomes.dead_letter(job.record, route, job.outcome)

    def drain(
        self, scope: set[TopicPartitionKey] | None, deadline: Deadline, output: Output
    ) -> None:
        """Finish calls in flight in ``scope`` (all partitions when ``None``) and send the queued
        records that lie behind an already-done one, so the done records form a committable
        prefix; everything else is handed back (not sent, not committed). Only work that can
        still end is waited for (see :meth:`_busy`): records no job holds (held back for a
        halted route) are never sent, so their gaps are not. Waits for ``output`` to
        acknowledge the outcomes until ``deadline``."""
        offsets = self._outcomes.offsets
        gaps: dict[TopicPartitionKey, int] = {}  # highest done offset beyond a pending one

        def fills_a_gap(job: Job) -> bool:
            return job.record.offset < gaps.get(job.tp, -1)

        while not deadline.expired():
            gaps.clear()
            for tp in offsets.partitions():
                highest = offsets.highest_done_beyond_watermark(tp)
                if highest is not None and (scope is None or tp in scope):
                    gaps[tp] = highest
            self.dispatch(fills_a_gap)
            if not self._busy(scope, fills_a_gap if gaps else None, deadline):
                break
            self.collect(min(0.05, deadline.left()))
            output.poll()
        output.flush(deadline.left())

    def _busy(
        self,
        scope: set[TopicPartitionKey] | None,
        fills: Callable[[Job], bool] | None,
        deadline: Deadline,
    ) -> bool:
        """Whether draining ``scope`` must wait on: a call is out for one of its records, or a
        queued job that ``fills`` a gap (``None``: no gap) may still go before ``deadline``: a
        ready one its route's canary admits (it goes as the budget lets it), or one waiting for a
        retry due by then (any job's: the lanes keep retries by time only). A record no job holds
        (held back for a halted route) or the canary refuses until polls the drain does not make
        is never waited for."""
        out = (job for call in self._tickets.values() for job in call.members if not job.dropped)
        if any(scope is None or job.tp in scope for job in out):
            return True
        if fills is None:
            return False
        if (timer := self.lanes.next_timer()) is not None and timer < deadline.at:
            return True
        admits = self.tracker.admits if self.tracker is not None else None
        now = self._clock()
        return any(
            fills(job) and (admits is None or admits(job))
            for account in self.accounts.values()
            for job in self.lanes.ready_jobs(account.name, now)
        )

    def forget(self, tps: Collection[TopicPartitionKey]) -> None:
        """Partitions no longer owned: drop their queued jobs, ignore their answers."""
        for job in self.lanes.drop(tps):
            job.dropped = True
        for call in self._tickets.values():
            for job in call.members:
                job.dropped = job.dropped or job.tp in tps

    def wait(self, now: float) -> float:
        """Seconds until a retry or a budget lets a ready job go (at most until an answer)."""
        wait = float("inf") if (timer := self.lanes.next_timer()) is None else timer - now
        for account in self.accounts.values():
            if self.lanes.ready(account.name, now):
                wait = min(wait, self._planner.wait(account, self.lanes, now))
        if self._memory is not None:  # no spinning while its calls wait for the state log
            wait = max(wait, self._memory.idle())
        return wait

    def _settle(self, ticket: int, answer: Answer, now: float) -> None:
        call = self._tickets.pop(ticket)
        self.out_by_route[call.members[0].route] -= 1
        account = self.accounts[call.account]
        account.answered(call.budget, call.slot, now)
        if call.dropped:
            return  # its partitions were revoked meanwhile; the new owner calls again
        settlement = call.interpret(answer)
        account.observe(settlement.call, call.budget, now)
        self._outcomes.tally.throttled += settlement.call.kind == "throttled"
        size = len(call.members)
        split = size > 1 and settlement.call.kind == "retry"  # it failed as a whole: in halves
        draw = self._draw()  # one backoff for the call: its members come back together
        for job, verdict in zip(call.members, settlement.members, strict=True):
            if not job.dropped:
                job.rows = min(job.rows, (size + 1) // 2) if split else job.rows
                hold = account.hold_until(verdict, now)
                self._member(job, verdict, answer, hold=hold, now=now, call_id=call.id, draw=draw)

    def _member(
        self,
        job: Job,
        verdict: Verdict,
        answer: Answer,
        *,
        hold: float | None,
        now: float,
        call_id: str | None,
        draw: float,
    ) -> None:
        route = self._routes(job.record.topic)
        assert route is not None  # noqa: S101 - jobs only exist for routed records
        if verdict.kind == "accepted":
            self.lanes.finish(job)
            accepted = self._outcomes.accepted(job, route, verdict, answer, call_id)
            if self.tracker is not None:
                self.tracker.accepted(route, [job.record, *job.riders], accepted)
            if self._memory is not None:
                self._memory.accepted(job, remember=route.remember)
            return
        if verdict.kind == "alone":  # it goes in a call of its own, at once
            job.rows = 1
            _log.info("call.alone", **_where(job), reason=verdict.reason)
            self.lanes.later(job, now)
            return
        if verdict.kind == "permanent":
            self._reject(job, route, verdict, answer, verdict.reason, kind="LeadSquaredRejected")
            return
        if verdict.kind == "retry":
            self._outcomes.tally.retried += 1
            # LeadSquared may have it: a retry may duplicate it
            self._outcomes.tally.ambiguous += answer.maybe_sent
        if hold is not None:  # the account's state holds it (throttled, keys rejected, down)
            self.lanes.later(job, hold)
            return
        job.failures += 1
        if job.failures >= self._retry.max_attempts:
            why = f"retries_exhausted: {verdict.reason}"
            self._reject(job, route, verdict, answer, why, kind="RetriesExhausted")
            return
        retry = self._retry
        delay = backoff(
            job.failures, retry.backoff_base_seconds, retry.backoff_max_seconds, lambda: draw
        )
        _log.info("call.retry", **_where(job), reason=verdict.reason, delay_s=round(delay, 3))
        self.lanes.later(job, now + delay)

    def _reject(
        self, job: Job, route: Route, verdict: Verdict, answer: Answer, reason: str, *, kind: str
    ) -> None:
        self.lanes.finish(job)
        if self._memory is not None:  # LeadSquared may hold it, or still the one before
            self._memory.invalidate(job.record)
        why = DeadLetter(
            "submit", reason, kind, verdict.exception_type, answer.status, job.attempts
        )
        for record in (job.record, *job.riders):
            self._outcomes.dead_letter(record, route, why)


def _where(job: Job) -> dict[str, Any]:
    record = job.record
    return {"topic": record.topic, "partition": record.partition, "offset": record.offset}
