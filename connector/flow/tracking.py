"""[pure] Completion tracking (SPEC §13): what LeadSquared did with each accepted async call.

Each accepted RequestID (all of them, or ``status.sample`` of them; a canary call always) becomes a
:class:`Check`, polled on the Status API: first ``first_poll_seconds`` after it was accepted, then
at doubling intervals up to ``max_poll_interval_seconds``, until a terminal status or
``give_up_seconds`` (counted from its acceptance; a check a backlog kept from being polled is
polled once before it gives up). Then every source record of the call gets a follow-up results
record (:class:`~connector.flow.follow_ups.FollowUps`).

Polls are calls of the account's main budget (whether LeadSquared counts them is not documented):
they go through the same gates. Before the loop sends records, polls may take up to ``max_share``
of the budget (:meth:`Tracker.poll`); after it, any call it left (:meth:`Tracker.spare`). So a
backlog leaves polls their share, and calls nothing else can use all go to polls.

Commits never wait for a check: a check survives a restart because the accepted results record
says it is unfinished, and the next owner of its partition reads it back (:meth:`Tracker.restore`).
The Metrics API is polled about once a ``queue.poll_seconds`` per operation in use; a long queue
holds the account's budget (:meth:`Account.queue`).
"""

from __future__ import annotations

import heapq
import itertools
import math
import zlib
from collections import Counter, defaultdict, deque
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from connector.flow.accounts import MAIN
from connector.flow.canary import Canary
from connector.flow.follow_ups import Check, FollowUps
from connector.logs import get_logger
from connector.lsq.answers import Verdict
from connector.lsq.status import (
    METRICS_PATHS,
    STATUS_PATHS,
    metrics_request,
    read_metrics,
    read_status,
    status_request,
)
from connector.records import Accepted

if TYPE_CHECKING:
    from collections.abc import Callable, Collection, Mapping

    from connector.flow.accounts import Account
    from connector.flow.lanes import Job
    from connector.flow.observe import Tally
    from connector.flow.offsets import TopicPartitionKey
    from connector.flow.ports import Calls, Originals, Output, Unchecked
    from connector.lsq.status import Depth, Report
    from connector.records import Answer, Operation, SourceRecord
    from connector.settings.status import StatusSettings
    from connector.transform.route import Route

__all__ = ["Tracker", "Tracking", "Unfinished"]

_log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Unfinished:
    """An accepted results record read back with no follow-up after it: its check goes on."""

    record: SourceRecord  # position, key and timestamp of the source record (no value)
    request_id: str
    attempts: int
    accepted_at: float  # wall-clock seconds


@dataclass(frozen=True, slots=True)
class Tracking:
    """What completion tracking needs besides the loop's own parts: its settings, the routes,
    and its ports (the Status API calls, source records read back, unfinished checks read back)."""

    settings: StatusSettings
    routes: tuple[Route, ...]
    calls: Calls
    originals: Originals
    unchecked: Unchecked


class Tracker:
    """Checks in flight, their polls under the accounts' budgets, and their follow-ups."""

    def __init__(
        self,
        tracking: Tracking,
        *,
        accounts: Mapping[str, Account],
        route_of: Callable[[str], Route | None],
        output: Output,
        tally: Tally,
        calls_out: Callable[[str], int],
        clock: Callable[[], float],
        wall: Callable[[], float],
    ) -> None:
        settings = self._settings = tracking.settings
        self._accounts, self._calls = accounts, tracking.calls
        self._unchecked, self._route_of = tracking.unchecked, route_of
        self.tally = tally
        self._calls_out = calls_out
        self._clock, self._wall = clock, wall
        tracked = [route for route in tracking.routes if route.mode == "async"]
        self._routes = {route.name: route for route in tracked}
        self.canary = Canary(self._routes, settings.canary)
        self._paths = STATUS_PATHS | settings.paths
        self._checks: dict[str, Check] = {}
        self._tickets: dict[int, Check | tuple[str, Operation]] = {}
        self._slots: dict[int, int] = {}  # the gate slot each poll in flight holds
        #: per account, checks by when their next poll is due (entries of finished or
        #: rescheduled checks are skipped when they come up)
        self._due: defaultdict[str, list[tuple[float, int, Check]]] = defaultdict(list)
        self._next_ticket = itertools.count()
        self._order = itertools.count()
        self._follow_ups = FollowUps(
            output, tracking.originals, tally, wall, settings.give_up_seconds
        )
        self._recent: defaultdict[str, deque[float]] = defaultdict(deque)  # polls per account
        self._out_by_route: Counter[str] = Counter()  # canary checks not finished
        operations = {(r.account, r.operation) for r in tracked}
        self._queues: dict[tuple[str, Operation], float] = dict.fromkeys(operations, 0.0)
        self.depths: dict[tuple[str, Operation], Depth] = {}

    # -- what the loop tells --------------------------------------------------------------------

    @property
    def pending(self) -> int:
        """Checks not finished."""
        return len(self._checks)

    def admits(self, job: Job) -> bool:
        """Whether ``job``'s route may send a call now (the canary: see
        :meth:`Canary.allows`)."""
        route = job.route
        if route not in self._routes:
            return True
        out = self._calls_out(route) + self._out_by_route[route]
        return self.canary.allows(route, out, self._wall())

    def accepted(self, route: Route, records: list[SourceRecord], accepted: Accepted) -> None:
        """LeadSquared's async host accepted a call of ``route`` for ``records``."""
        if route.name not in self._routes or accepted.request_id is None:
            return
        canary = self.canary.probing(route.name)
        if not canary and not self._sampled(accepted.request_id):
            return
        wall = self._wall()
        if canary:
            self.canary.accepted(route.name, wall)
        kept = [replace(record, value=None, headers=()) for record in records]  # key and place
        self._track(Check(accepted.request_id, route, kept, accepted, wall, wall, canary))

    def restore(self, tps: Collection[TopicPartitionKey]) -> None:
        """Newly assigned partitions: read back their unfinished checks (accepted within
        ``give_up_seconds``), whose polls go on where the last owner left them."""
        since = self._wall() - self._settings.give_up_seconds
        found: dict[str, Check] = {}
        for item in self._unchecked.unfinished(tps, since):
            route = self._route_of(item.record.topic)
            known = item.request_id in self._checks or not self._sampled(item.request_id)
            if route is None or route.name not in self._routes or known:
                continue
            check = found.get(item.request_id)
            if check is None:
                accepted = Accepted(
                    route.operation,
                    route.name,
                    route.account,
                    item.request_id,
                    None,
                    submitted_at_ms=int(item.accepted_at * 1000),
                    attempts=item.attempts,
                    http_status=200,
                )
                check = Check(item.request_id, route, [], accepted, item.accepted_at, self._wall())
                found[item.request_id] = check
            check.records.append(item.record)
        for check in found.values():
            self._track(check)
        if found:
            _log.info("status.checks_restored", checks=len(found))

    def forget(self, tps: Collection[TopicPartitionKey]) -> None:
        """Partitions no longer owned: their checks go on at the next owner."""
        for request_id, check in list(self._checks.items()):
            if check.tp in tps:
                self._untrack(request_id)
        self._follow_ups.forget(tps)

    # -- polls ----------------------------------------------------------------------------------

    def poll(self) -> None:
        """Settle the answers that came; send the polls that are due, up to their share of the
        budgets (before the loop sends records)."""
        for ticket, answer in self._calls.collect(0):
            self._settle(ticket, answer)
        self._follow_ups.collect()
        self._send_due(share=True)

    def spare(self, now: float) -> None:
        """Send the polls that are due with the calls the loop left when it sent records at
        ``now`` (a call the gate frees a moment later is the records')."""
        self._send_due(share=False, now=now)

    def _send_due(self, *, share: bool, now: float | None = None) -> None:
        now, wall = self._clock() if now is None else now, self._wall()
        for key, at in self._queues.items():
            if at <= wall and self._settings.queue.enabled and self._may_send(key[0], now, share):
                self._queues[key] = wall + self._settings.queue.poll_seconds
                self._send(key[0], key, metrics_request(METRICS_PATHS[key[1]]), now)
        for account, heap in self._due.items():
            while heap and heap[0][0] <= wall:
                when, _, check = heap[0]
                gone = self._checks.get(check.request_id) is not check
                if gone or check.out or when != check.due:
                    heapq.heappop(heap)  # finished, or polled again later
                    continue
                if check.polls and wall - check.since >= self._settings.give_up_seconds:
                    heapq.heappop(heap)
                    self._finish(check, None)
                    continue
                if not self._may_send(account, now, share):
                    break
                heapq.heappop(heap)
                check.out, check.polls = True, check.polls + 1
                path = self._paths[check.route.operation]
                self._send(account, check, status_request(path, check.request_id), now, check.tp)

    def _may_send(self, account_name: str, now: float, share: bool) -> bool:
        """Whether a poll may take a call of the account's main budget now (with ``share``: only
        while polls took less than ``max_share`` of the budget in the last window)."""
        account = self._accounts[account_name]
        if not account.may_send(MAIN, now):
            return False
        if not share:
            return True
        gate = account.gates[MAIN]
        recent = self._recent[account_name]
        while recent and recent[0] <= now - gate.window:
            recent.popleft()
        return len(recent) < max(1, math.floor(self._settings.max_share * gate.calls))

    def _send(
        self,
        account_name: str,
        what: Check | tuple[str, Operation],
        request: Any,
        now: float,
        tp: TopicPartitionKey | None = None,
    ) -> None:
        account = self._accounts[account_name]
        slot = account.sent(MAIN, now, tp)
        self._recent[account_name].append(now)
        ticket = next(self._next_ticket)
        self._tickets[ticket] = what
        self._slots[ticket] = slot
        self.tally.status_calls += 1
        self._calls.submit(ticket, account_name, request)

    def _settle(self, ticket: int, answer: Answer) -> None:
        what = self._tickets.pop(ticket)
        now, wall = self._clock(), self._wall()
        account_name = what.route.account if isinstance(what, Check) else what[0]
        account = self._accounts[account_name]
        account.answered(MAIN, self._slots.pop(ticket), now)
        if isinstance(what, tuple):
            self._queue_depth(what, answer, now)
            return
        check = what
        check.out = False
        if self._checks.get(check.request_id) is not check:
            return  # its partition was revoked meanwhile
        report = read_status(answer, check.route.operation)
        if report.kind == "throttled":
            account.observe(Verdict("throttled", report.reason), MAIN, now)
        if report.kind in {"succeeded", "failed"}:
            self._finish(check, report)
            return
        check.last = report.reason or report.kind
        interval = self._settings.first_poll_seconds * 2.0 ** min(check.polls, 30)
        self._schedule(check, wall + min(self._settings.max_poll_interval_seconds, interval))

    def _queue_depth(self, key: tuple[str, Operation], answer: Answer, now: float) -> None:
        depth = read_metrics(answer)
        if depth is None:
            return
        self.depths[key] = depth
        queue = self._settings.queue
        account = key[0]
        long = [
            op
            for (name, op), d in self.depths.items()
            if name == account
            and (d.pending > queue.max_pending or d.max_delay_s > queue.max_delay_seconds)
        ]
        about = {"operations": long, "pending": depth.pending, "max_delay_s": depth.max_delay_s}
        self._accounts[account].queue(queue.slowdown if long else None, now, **about)

    def _finish(self, check: Check, report: Report | None) -> None:
        """A terminal status (``None``: none before the give-up time): the canary learns it,
        the follow-ups are written."""
        self._untrack(check.request_id)
        halt = self.canary.checked(check.route.name, report, check.request_id, canary=check.canary)
        if halt is not None:
            self.tally.halted += 1
        self._follow_ups.write(check, report)

    def _sampled(self, request_id: str) -> bool:
        """Whether calls of ``request_id`` are checked: the same answer after a restart."""
        sample = self._settings.sample
        return sample >= 1 or zlib.crc32(request_id.encode()) < sample * 2**32

    def _schedule(self, check: Check, due: float) -> None:
        check.due = due
        heapq.heappush(self._due[check.route.account], (due, next(self._order), check))

    def _track(self, check: Check) -> None:
        self._checks[check.request_id] = check
        self._schedule(check, check.since + self._settings.first_poll_seconds)
        if check.canary:
            self._out_by_route[check.route.name] += 1

    def _untrack(self, request_id: str) -> None:
        check = self._checks.pop(request_id)
        if check.canary:
            self._out_by_route[check.route.name] -= 1
