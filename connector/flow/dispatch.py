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
from connector.logs import get_logger
from connector.lsq.answers import backoff
from connector.lsq.coalesce import combine
from connector.records import DeadLetter, Payload, Skip

if TYPE_CHECKING:
    from collections.abc import Callable, Collection, Iterator

    from connector.flow.accounts import Account
    from connector.flow.offsets import TopicPartitionKey
    from connector.flow.participant import Loop, Participant
    from connector.flow.planner import Call, Planner
    from connector.flow.ports import Calls
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
        loop: Loop,
        participants: Participant,
        *,
        planner: Planner,
        calls: Calls,
        retry: RetrySettings,
        draw: Callable[[], float],
        snapshot_share: float = 0.1,
    ) -> None:
        self.accounts, self._planner, self._calls = loop.accounts, planner, calls
        self._outcomes, self._participants = loop.outcomes, participants
        self.offsets = loop.outcomes.offsets
        first, last = participants.planners()
        self._planners = (*first, planner, *last)  # the participants' calls around the records'
        self._routes, self._retry = loop.route_of, retry
        self.clock = loop.clock  # the loop's monotonic clock
        self._wall, self._draw = loop.wall, draw
        self.lanes = Lanes(snapshot_share)
        self._tickets: dict[int, Call] = {}
        self._next_ticket = itertools.count()
        self.out_by_route: Counter[str] = Counter()  # calls in flight, by route

    @property
    def in_flight(self) -> int:
        """Calls sent and not answered yet."""
        return len(self._tickets)

    def queue(self, job: Job, route: Route) -> None:
        """Queue ``job`` behind the earlier jobs of its key; when the last of them has not been
        sent yet and the route coalesces, that one carries this one's change too. With no job of
        its key waiting, a payload LeadSquared last accepted for the key is skipped (SPEC §12)."""
        tail = self.lanes.tail(job)
        if tail is None and self._participants.unchanged(job, route):
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

    def dispatch(self, now: float) -> None:
        """Send every call the accounts' budgets allow at ``now``: the participants' and those of
        jobs they admit."""
        self._send(self._planners, self._participants.admission(), now)

    def _send(
        self, planners: tuple[Planner, ...], allow: Callable[[Job], bool] | None, now: float
    ) -> None:
        """Send the calls ``planners`` make (each asked in turn, first first) of jobs ``allow``
        accepts, while the budgets allow them at ``now``."""
        for account in self.accounts.values():
            while (call := _next(planners, account, self.lanes, now, allow)) is not None:
                call.slot = account.sent(call.budget, now, call.tp)
                wall = self._wall()
                for job in call.members:
                    job.attempts += 1
                    job.first_sent_at = job.first_sent_at or now
                    job.sent_wall = wall
                ticket = next(self._next_ticket)
                self._tickets[ticket] = call
                self.out_by_route.update(job.route for job in call.members[:1])
                self._outcomes.tally.api_calls += bool(call.members)  # (polls count apart)
                self._outcomes.tally.bulk_calls += call.budget == BULK
                self._calls.submit(ticket, account.name, call.request)

    def collect(self, timeout: float) -> None:
        """Settle the answers that arrived, waiting up to ``timeout`` for the first."""
        for ticket, answer in self._calls.collect(timeout):
            self._settle(ticket, answer, self.clock())
        self._settle_due()

    def settle_without_call(
        self, record: SourceRecord, route: Route, outcome: Skip | DeadLetter
    ) -> None:
        """The outcome of a record that needs no call (skipped, or dead-lettered before any
        call): at once, or, while earlier records of its key wait or are out, once they have
        theirs (per-key order covers every outcome: it waits in its key's lane)."""
        job = Job(record, route.name, route.account, _NO_CALL, self.clock(), outcome=outcome)
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
        self._participants.settled(job.record, job.outcome)
        if isinstance(job.outcome, Skip):
            self._outcomes.skipped(job.record, route, job.outcome.reason)
        elif job.outcome is not None:
            self._outcomes.dead_letter(job.record, route, job.outcome)

    def send_records(self, allow: Callable[[Job], bool], now: float) -> None:
        """Send the record calls (no participant's) of jobs ``allow`` and the participants admit
        that the budgets allow at ``now``."""
        self._send((self._planner,), _both(allow, self._participants.admission()), now)

    def jobs_out(self) -> Iterator[Job]:
        """The jobs of calls in flight whose partitions are still owned."""
        return (job for call in self._tickets.values() for job in call.members if not job.dropped)

    def admitted_ready(self, allow: Callable[[Job], bool], now: float) -> bool:
        """Whether a ready job ``allow`` and the participants admit waits at ``now``."""
        admits = _both(allow, self._participants.admission())
        return any(
            admits(job)
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
        return wait

    def _settle(self, ticket: int, answer: Answer, now: float) -> None:
        call = self._tickets.pop(ticket)
        self.out_by_route.subtract(job.route for job in call.members[:1])
        account = self.accounts[call.account]
        account.answered(call.budget, call.slot, now)
        if call.dropped:
            return  # its partitions were revoked meanwhile; the new owner calls again
        settlement = call.interpret(answer)
        if settlement.observed:
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
            self._participants.accepted(job, route, accepted)
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
        self._participants.doubted(job.record)  # LeadSquared may hold it, or still the one before
        why = DeadLetter(
            "submit", reason, kind, verdict.exception_type, answer.status, job.attempts
        )
        for record in (job.record, *job.riders):
            self._outcomes.dead_letter(record, route, why)


def _where(job: Job) -> dict[str, Any]:
    record = job.record
    return {"topic": record.topic, "partition": record.partition, "offset": record.offset}


def _next(
    planners: tuple[Planner, ...],
    account: Account,
    lanes: Lanes,
    now: float,
    allow: Callable[[Job], bool] | None,
) -> Call | None:
    """The call the first of ``planners`` that has one makes."""
    for planner in planners:
        if (call := planner.next_call(account, lanes, now, allow)) is not None:
            return call
    return None


def _both(
    first: Callable[[Job], bool], second: Callable[[Job], bool] | None
) -> Callable[[Job], bool]:
    return first if second is None else lambda job: first(job) and second(job)
