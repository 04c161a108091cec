"""The connector's loop (SPEC §2), on one thread, one numbered step after another:

    consume → decode → unwrap → map → rate-limit → submit → record result → commit

HTTP calls run on the submitter's workers and come back as answers; everything else (per-key
lanes, rate gates, offsets) is plain state owned by this loop. Outcomes count as durable only when
the broker acknowledged them, and only contiguous durable prefixes are committed.
"""

from __future__ import annotations

import itertools
import time
from typing import TYPE_CHECKING, Any

from connector.errors import FatalError
from connector.flow.fleet import reshare
from connector.flow.lanes import Job, Lanes
from connector.flow.observe import (
    Buckets,
    Progress,
    Snapshot,
    account_view,
    not_ready,
    progress_fields,
    take_snapshot,
)
from connector.flow.outcomes import Outcomes
from connector.logs import flush_logs, get_logger
from connector.lsq.answers import Verdict, backoff, classify
from connector.records import DeadLetter, Skip

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from connector.flow.offsets import TopicPartitionKey
    from connector.flow.ports import Account, Calls, Input, Output, Recovery, Route, Tally
    from connector.records import Answer, SourceRecord
    from connector.settings.model import FlowSettings, RetrySettings

__all__ = ["Pipeline"]

_log = get_logger(__name__)
_PAUSED_POLL_S = 0.1
_CLOSE_RESERVE_S = 1.0  # of the shutdown grace, kept for the last commit and leaving the group


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
        progress_interval: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        draw: Callable[[], float] | None = None,
    ) -> None:
        import random  # noqa: PLC0415 - default jitter source only

        self._routes, self._accounts, self._output, self._calls = routes, accounts, output, calls
        self._recovery = recovery
        self._outcomes = Outcomes(output, wall)
        self._retry, self._flow = retry, flow
        self._clock, self._wall, self._draw = clock, wall, draw or random.random
        self._input: Input | None = None
        self._lanes = Lanes()
        self._owned: set[TopicPartitionKey] = set()
        self._joined = False
        self._reshare_due = False  # partitions came or went: recompute budget shares
        self.last_turn = clock()  # when the loop last turned (for /livez)
        self.snapshot = Snapshot()  # the state /metrics and /readyz serve, replaced each second
        self._next_publish = 0.0
        self._commit_latency = Buckets()
        self._tickets: dict[int, Job] = {}
        self._next_ticket = itertools.count()
        self._paused = False
        self._stopping = False
        self._failed = False
        self._next_commit = self._next_poll = 0.0
        self._progress = Progress(progress_interval, clock())
        self.stop_by: float | None = None  # when a graceful stop must be over

    # -- wiring -------------------------------------------------------------------------------

    @property
    def tally(self) -> Tally:
        """What happened so far."""
        return self._outcomes.tally

    def attach(self, source: Input) -> None:
        """Use ``source``, which calls back :meth:`assigned`, :meth:`revoked`, :meth:`lost`."""
        self._input = source

    def request_stop(self) -> None:
        """Ask the loop to stop gracefully (signal handlers call this)."""
        self._stopping = True

    def time_left(self, otherwise: float) -> float:
        """Seconds left of the grace of a graceful stop; ``otherwise`` when none began."""
        return otherwise if self.stop_by is None else max(0.0, self.stop_by - self._clock())

    def run(self) -> None:
        """Loop until :meth:`request_stop`, then drain, commit and close."""
        source = self._source()
        try:
            while not self._stopping:
                self.step()
        except FatalError:
            self._failed = True  # leave the group without draining or committing more
            source.close()
            raise
        _log.info("connector.stopping", calls_in_flight=self._calls.in_flight)
        grace = self._flow.shutdown_grace_seconds
        self.stop_by = self._clock() + grace
        self._drain(None, self.stop_by - min(_CLOSE_RESERVE_S, grace / 4))  # then commit, leave
        self._commit()
        source.close()

    def step(self) -> None:
        """One turn of the loop."""
        source, wait, now = self._source(), self._idle_wait(), self._clock()
        # 1. consume (block on Kafka only when no call is out: answers must wake us otherwise);
        # while paused, only as often as the group needs (each poll hands the GIL away)
        records = []
        if not self._paused or now >= self._next_poll:
            self._next_poll = now + _PAUSED_POLL_S
            records = source.poll(self._flow.poll_batch_size, 0 if self._calls.in_flight else wait)
        if self._reshare_due:
            self._reshare()
        # 2-4. decode → unwrap → map, into per-key lanes (or straight to an outcome)
        for record in records:
            self._intake(record)
        # 5. answers of calls made earlier (wait for them only when some are out)
        for ticket, answer in self._calls.collect(
            wait if self._calls.in_flight and not records else 0
        ):
            self._settle(ticket, answer)
        # 6. rate-limit → submit
        self._dispatch()
        # 7. record results: acknowledged outcomes become durable
        self._output.poll()
        # 8. commit contiguous durable prefixes
        if self._clock() >= self._next_commit:
            self._commit()
        # 9. bounded memory: pause while too much is in flight
        self._backpressure()
        self._report_progress()
        self.last_turn = self._clock()
        if self.last_turn >= self._next_publish:
            self._publish()
        flush_logs()

    # -- rebalance (called from inside Input.poll) ---------------------------------------------

    def assigned(self, tps: list[TopicPartitionKey]) -> None:
        """New partitions: find their records that already have an outcome (written by an
        owner that stopped before committing them), so they are not called again."""
        _log.info("partitions.assigned", partitions=_names(tps))
        self._joined = True
        self._owned.update(tps)
        self._reshare_due = True
        if self._paused:
            self._source().pause(tps)
        if self._recovery is not None and tps and not (self._stopping or self._failed):
            found = self._recovery.done(self._source().committed(tps))
            self._outcomes.found(found)
            if found:
                counts = {f"{t}[{p}]": len(offsets) for (t, p), offsets in found.items()}
                _log.info("partitions.outcomes_found", records=counts)

    def revoked(self, tps: list[TopicPartitionKey]) -> None:
        """Finish what is in flight for these partitions, commit it, hand back the rest."""
        _log.info("partitions.revoked", partitions=_names(tps))
        if self._failed:
            self._forget(tps)
            return
        self._drain(set(tps), self._clock() + min(self._flow.shutdown_grace_seconds, 10.0))
        self._commit(set(tps))
        self._forget(tps)
        self._reshare_due = True

    def lost(self, tps: list[TopicPartitionKey]) -> None:
        """Partitions taken away without a chance to commit: drop their state."""
        _log.warning("partitions.lost", partitions=_names(tps))
        self._forget(tps)
        self._reshare_due = True

    def _reshare(self) -> None:
        """Each account's budget for this replica (see :func:`connector.flow.fleet.reshare`). Run
        after the poll that delivered the rebalance, before anything is sent: never from inside
        the rebalance callback, where a metadata request would break the Kafka client."""
        self._reshare_due = False
        if not self._failed:
            counts = self._source().topic_partitions()
            now, wall = self._clock(), self._wall()
            accounts, routes = self._accounts.values(), self._routes
            reshare(accounts, self._owned, partitions=counts, route_of=routes, now=now, wall=wall)

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
        if isinstance(prepared, Skip):
            self._outcomes.skipped(record, route, prepared.reason)
        elif isinstance(prepared, DeadLetter):
            self._outcomes.dead_letter(record, route, prepared)
        else:
            self._lanes.add(Job(record, route.name, route.account, prepared, self._clock()))

    def _dispatch(self, allow: Callable[[Job], bool] | None = None) -> None:
        now, threshold = self._clock(), self._retry.outage_threshold
        for account in self._accounts.values():
            rejected, down = account.rejected is not None, account.looks_down(threshold)
            if (rejected and now < account.probe_at) or (down and now < account.down_until):
                continue
            limit = 1 if account.probing(threshold) else account.concurrency
            while account.in_flight < limit and account.gate.wait(now) == 0:
                job = self._lanes.take(account.name, now, allow)
                if job is None:
                    break
                self._send(job, account, now)
                if rejected:  # one call tells whether the keys work again
                    account.probe_at = now + self._retry.auth_retry_seconds

    def _send(self, job: Job, account: Account, now: float) -> None:
        job.slot = account.gate.acquire(now)
        account.in_flight += 1
        job.attempts += 1
        job.first_sent_at = job.first_sent_at or now
        job.sent_wall = self._wall()
        ticket = next(self._next_ticket)
        self._tickets[ticket] = job
        self.tally.api_calls += 1
        route = self._routes(job.record.topic)
        assert route is not None  # noqa: S101 - jobs only exist for routed records
        self._calls.submit(ticket, account.name, route.mode, job.payload)

    def _settle(self, ticket: int, answer: Answer) -> None:
        job, now = self._tickets.pop(ticket), self._clock()
        account = self._accounts[job.account]
        account.gate.release(now, job.slot)
        account.in_flight -= 1
        if job.dropped:
            return  # its partition was revoked meanwhile; the new owner calls again
        route = self._routes(job.record.topic)
        assert route is not None  # noqa: S101 - jobs only exist for routed records
        verdict = classify(answer, route.operation, route.mode)
        account.answers[verdict.kind] += 1
        if change := account.note_answer(verdict, now, self._retry):
            log = _log.info if change == "available_again" else _log.warning
            log(f"account.{change}", account=account.name, reason=verdict.reason)
        if verdict.kind == "accepted":
            if account.rejected is not None:
                _log.info("account.accepted_again", account=account.name)
                account.rejected = None
            self._lanes.finish(job)
            self._outcomes.accepted(job, route, verdict, answer)
        elif verdict.kind == "throttled":
            self.tally.throttled += 1
            account.gate.cool_down(now, account.cooldown)
            _log.warning("call.throttled", account=account.name, reason=verdict.reason)
            self._lanes.later(job, now + account.cooldown)
        elif verdict.kind == "auth":
            if account.rejected is None:
                _log.error("account.rejected", account=account.name, reason=verdict.reason)
            account.rejected = verdict.reason
            account.probe_at = now + self._retry.auth_retry_seconds
            self._lanes.later(job, account.probe_at)
        elif verdict.kind == "retry":
            self._retry_later(job, route, account, verdict, answer)
        else:
            self._lanes.finish(job)
            why = DeadLetter(
                "submit",
                verdict.reason,
                "LeadSquaredRejected",
                verdict.exception_type,
                answer.status,
                job.attempts,
            )
            self._outcomes.dead_letter(job.record, route, why)

    def _retry_later(
        self, job: Job, route: Route, account: Account, verdict: Verdict, answer: Answer
    ) -> None:
        now = self._clock()
        self.tally.retried += 1
        if answer.maybe_sent:
            self.tally.ambiguous += 1  # LeadSquared may have it: a retry may duplicate it
        if account.looks_down(self._retry.outage_threshold):
            self._lanes.later(job, account.down_until)  # an outage: not this record's fault
            return
        job.failures += 1
        if job.failures >= self._retry.max_attempts:
            self._lanes.finish(job)
            why = DeadLetter(
                "submit",
                f"retries_exhausted: {verdict.reason}",
                "RetriesExhausted",
                verdict.exception_type,
                answer.status,
                job.attempts,
            )
            self._outcomes.dead_letter(job.record, route, why)
            return
        retry = self._retry
        delay = backoff(
            job.failures, retry.backoff_base_seconds, retry.backoff_max_seconds, self._draw
        )
        _log.info("call.retry", **_where(job), reason=verdict.reason, delay_s=round(delay, 3))
        self._lanes.later(job, now + delay)

    def _commit(self, only: set[TopicPartitionKey] | None = None) -> None:
        self._next_commit = self._clock() + self._flow.commit_interval_seconds
        positions = {
            tp: offset
            for tp, offset in self._outcomes.offsets.committable().items()
            if only is None or tp in only
        }
        if not positions:
            return
        started = self._clock()
        error = self._source().commit(positions)
        self._commit_latency.observe(self._clock() - started)
        if error is not None:
            _log.warning("commit.failed", error=error, partitions=_names(list(positions)))
            return
        self._outcomes.offsets.committed(positions)

    def _backpressure(self) -> None:
        pending, size = self._outcomes.pending(), self._outcomes.bytes_held()
        full = pending >= self._flow.max_in_flight_records or size >= self._flow.max_in_flight_bytes
        low = (
            pending <= 0.8 * self._flow.max_in_flight_records
            and size <= 0.8 * self._flow.max_in_flight_bytes
        )
        if full and not self._paused:
            self._paused = True
            self._source().pause(self._source().assignment())
            _log.info("input.paused", records_in_flight=pending, bytes_in_flight=size)
        elif low and self._paused:
            self._paused = False
            self._source().resume(self._source().assignment())
            _log.info("input.resumed", records_in_flight=pending, bytes_in_flight=size)

    def _publish(self) -> None:
        """Replace the snapshot the health port serves (about once a second)."""
        now = self._clock()
        self._next_publish = now + 1.0
        outcomes, accounts = self._outcomes, self._accounts.values()
        self.snapshot = take_snapshot(
            self.tally,
            accounts=tuple(account_view(a, now, self._retry.outage_threshold) for a in accounts),
            in_flight=(outcomes.pending(), outcomes.bytes_held()),
            lag=self._source().lag(),
            paused=self._paused,
            latency=(outcomes.result_latency, self._commit_latency),
            not_ready=not_ready(
                stopping=self._stopping or self._failed,
                joined=self._joined,
                results_delayed=self._output.delayed,
                accounts=accounts,
            ),
        )

    def _report_progress(self) -> None:
        """Every ``progress_interval``: see :func:`connector.flow.observe.progress_fields`."""
        last, now = self._progress, self._clock()
        if now - last.at < last.interval:
            return
        in_flight = self._outcomes.pending()
        tokens = {a.name: a.gate.free(now) for a in self._accounts.values()}
        lag = self._source().lag()
        fields = progress_fields(self.tally, last, now, in_flight=in_flight, lag=lag, tokens=tokens)
        _log.info("progress", **fields)

    # -- draining -------------------------------------------------------------------------------

    def _drain(self, scope: set[TopicPartitionKey] | None, deadline: float) -> None:
        """Finish calls in flight in ``scope`` (all partitions when ``None``) and the queued
        records that lie behind an already-done one, so the done records form a committable
        prefix; everything else is handed back (not sent, not committed)."""

        def in_scope(tp: TopicPartitionKey) -> bool:
            return scope is None or tp in scope

        def fills_a_gap(job: Job) -> bool:
            highest = self._outcomes.offsets.highest_done_beyond_watermark(job.tp)
            return in_scope(job.tp) and highest is not None and job.record.offset < highest

        while self._clock() < deadline:
            self._dispatch(fills_a_gap)
            busy = any(in_scope(job.tp) for job in self._tickets.values() if not job.dropped)
            if not busy and not any(
                self._outcomes.offsets.highest_done_beyond_watermark(tp) is not None
                for tp in self._outcomes.offsets.partitions()
                if in_scope(tp)
            ):
                break
            for ticket, answer in self._calls.collect(min(0.05, deadline - self._clock())):
                self._settle(ticket, answer)
            self._output.poll()
        self._output.flush(max(0.0, deadline - self._clock()))

    def _forget(self, tps: list[TopicPartitionKey]) -> None:
        for job in self._lanes.drop(tps):
            job.dropped = True
        for job in self._tickets.values():
            if job.tp in tps:
                job.dropped = True
        self._outcomes.forget(tps)
        self._owned.difference_update(tps)

    # -- helpers --------------------------------------------------------------------------------

    def _source(self) -> Input:
        if self._input is None:
            raise RuntimeError("Pipeline.attach() was not called")
        return self._input

    def _idle_wait(self) -> float:
        """How long a turn may block waiting for records or answers."""
        now, wait = self._clock(), 0.1 if not self._calls.in_flight else 0.02
        if (timer := self._lanes.next_timer()) is not None:
            wait = min(wait, timer - now)
        for account in self._accounts.values():
            if account.in_flight < account.concurrency and self._lanes.ready(account.name, now):
                wait = min(wait, account.gate.wait(now))
        return max(0.0, wait)


def _names(tps: list[TopicPartitionKey]) -> list[str]:
    return [f"{topic}[{partition}]" for topic, partition in sorted(tps)]


def _where(job: Job) -> dict[str, Any]:
    record = job.record
    return {"topic": record.topic, "partition": record.partition, "offset": record.offset}
