"""[pure] Completion tracking (SPEC §13): what LeadSquared did with each accepted async call.

Each accepted RequestID (all of them, or ``status.sample`` of them; a canary call always) becomes a
:class:`Check`, polled on the Status API: first ``first_poll_seconds`` after it was accepted, then
at doubling intervals up to ``max_poll_interval_seconds``, until a terminal status or the give-up
time (:class:`~connector.flow.checks.Checks`). Then every source record of the call gets a
follow-up results record (:class:`~connector.flow.follow_ups.FollowUps`). At most ``max_checks``
are held: while that many are, accepted calls are only counted (``status_checks_skipped``), never
waited for.

Polls are calls of the account's main budget (whether LeadSquared counts them is not documented):
they go through the same gates. Before the loop sends records, polls may take up to ``max_share``
of the budget (:meth:`Tracker.poll`); after it, any call it left (:meth:`Tracker.spare`). So a
backlog leaves polls their share, and calls nothing else can use all go to polls.

Commits never wait for a check: the accepted results record says it is unfinished, and the next
owner of its partition reads back those of the last two ``give_up_seconds``
(:meth:`Tracker.restore`): checks within theirs go on, older ones end ``unknown``. LeadSquared's
queue paces the budget (:class:`~connector.flow.queue_depth.QueueDepths`).
"""

from __future__ import annotations

import itertools
import math
from collections import Counter, defaultdict, deque
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from connector.flow.accounts import MAIN
from connector.flow.canary import Canary
from connector.flow.checks import Checks, Unfinished, restored, sampled
from connector.flow.follow_ups import Check, FollowUps
from connector.flow.queue_depth import QueueDepths
from connector.logs import get_logger
from connector.lsq.answers import Verdict
from connector.lsq.status import STATUS_PATHS, read_status, status_request

if TYPE_CHECKING:
    from collections.abc import Callable, Collection, Mapping

    from connector.flow.accounts import Account
    from connector.flow.lanes import Job
    from connector.flow.observe import Tally
    from connector.flow.offsets import TopicPartitionKey
    from connector.flow.ports import Calls, Originals, Output, Unchecked
    from connector.flow.queue_depth import QueueKey
    from connector.lsq.status import Depth, Report
    from connector.records import Accepted, Answer, SourceRecord
    from connector.settings.status import StatusSettings
    from connector.transform.route import Route

__all__ = ["Tracker", "Tracking", "Unfinished"]

_log = get_logger(__name__)
_READ_BACK = 2  # a restart reads back the calls accepted in the last this many give_up_seconds


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
        doubt: Callable[[SourceRecord], None] = lambda _: None,
    ) -> None:
        self._doubt = doubt  # a failed or unknown call's records: their fingerprints no longer hold
        settings = self._settings = tracking.settings
        self._accounts, self._calls = accounts, tracking.calls
        self._unchecked, self._route_of = tracking.unchecked, route_of
        self.tally, self._calls_out = tally, calls_out
        self._clock, self._wall = clock, wall
        tracked = [route for route in tracking.routes if route.mode == "async"]
        self._routes = {route.name: route for route in tracked}
        self.canary = Canary(self._routes, settings.canary)
        self._paths = STATUS_PATHS | settings.paths
        self._checks = Checks(
            settings.max_checks, settings.give_up_seconds, settings.max_poll_interval_seconds
        )
        self._full = False  # whether the last call that found max_checks held was logged
        self._tickets: dict[int, Check | QueueKey] = {}
        self._slots: dict[int, int] = {}  # the gate slot each poll in flight holds
        self._next_ticket = itertools.count()
        self._follow_ups = FollowUps(
            output, tracking.originals, tally, wall, settings.give_up_seconds
        )
        self._recent: defaultdict[str, deque[float]] = defaultdict(deque)  # polls per account
        self._out_by_route: Counter[str] = Counter()  # canary checks not finished
        operations = {(r.account, r.operation) for r in tracked}
        self._queues = QueueDepths(settings.queue, operations, accounts)
        self.depths: dict[QueueKey, Depth] = self._queues.depths

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
        """LeadSquared's async host accepted a call of ``route`` for ``records`` (checked if sampled
        and room permits; canary calls always)."""
        if route.name not in self._routes or accepted.request_id is None:
            return
        canary = self.canary.probing(route.name)
        if not canary and not (
            sampled(accepted.request_id, self._settings.sample) and self._room()
        ):
            return
        wall = self._wall()
        if canary:
            self.canary.accepted(route.name, wall)
        kept = [replace(record, value=None, headers=()) for record in records]  # key and place
        self._track(Check(accepted.request_id, route, kept, accepted, wall, wall, canary))

    def restore(self, tps: Collection[TopicPartitionKey]) -> None:
        """Newly assigned partitions: read back their unfinished checks. Those accepted within
        ``give_up_seconds`` go on where the last owner left them (room permitting); older ones
        (up to twice that) end ``unknown``: nobody checked them in time."""
        give_up, wall = self._settings.give_up_seconds, self._wall()
        items = self._unchecked.unfinished(tps, wall - _READ_BACK * give_up)
        found = restored(items, self._restorable, wall)
        why = f"not checked within give_up_seconds ({give_up:g} s): found unfinished on assignment"
        late = kept = 0
        for check in found:
            if check.since <= wall - give_up:
                late += 1
                self._write(check, None, why)
            elif self._room():
                kept += 1
                self._track(check)
        if found:
            _log.info("status.checks_restored", checks=kept, too_late=late)

    def forget(self, tps: Collection[TopicPartitionKey]) -> None:
        """Partitions no longer owned: their checks go on at the next owner."""
        for check in self._checks.of(tps):
            self._untrack(check.request_id)
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
        for key in self._queues.due(wall):
            if self._may_send(key[0], now, share):
                self._send(key[0], key, self._queues.request(key, wall), now)
        for expired, why in self._checks.expired(wall):
            self._finish(expired, None, why)
        for account in self._checks.accounts():
            while (check := self._checks.due(account, wall)) is not None:
                if not self._may_send(account, now, share):
                    break
                self._checks.take(account)
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
        what: Check | QueueKey,
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
            self._queues.read(what, answer, now)
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
        if wall - check.since >= self._settings.give_up_seconds:  # (came while it was out)
            self._finish(check, None)
            return
        interval = self._settings.first_poll_seconds * 2.0 ** min(check.polls, 30)
        self._checks.schedule(check, wall + min(self._settings.max_poll_interval_seconds, interval))

    def _finish(self, check: Check, report: Report | None, why: str = "") -> None:
        """A terminal status (``None``: none before the give-up time, for ``why``): the canary
        learns it, the follow-ups are written."""
        self._untrack(check.request_id)
        halt = self.canary.checked(check.route.name, report, check.request_id, canary=check.canary)
        if halt is not None:
            self.tally.halted += 1
        self._write(check, report, why)

    def _write(self, check: Check, report: Report | None, why: str = "") -> None:
        """Write ``check``'s follow-ups; a failed or unknown call's records lose their
        fingerprints (SPEC §2, 9)."""
        self._follow_ups.write(check, report, why)
        if report is None or report.kind == "failed":
            for record in check.records:
                self._doubt(record)

    def _room(self) -> bool:
        """Whether one more check may be held; if not, the call is counted (and logged once)."""
        if not self._checks.full:
            self._full = False
            return True
        self.tally.status_checks_skipped += 1
        if not self._full:
            self._full = True
            _log.warning("status.checks_full", max_checks=self._checks.limit)
        return False

    def _restorable(self, item: Unfinished) -> Route | None:
        """The route of an unfinished call read back, if it is to be checked here."""
        route, request_id = self._route_of(item.record.topic), item.request_id
        new = sampled(request_id, self._settings.sample) and not self._checks.get(request_id)
        return route if new and route is not None and route.name in self._routes else None

    def _track(self, check: Check) -> None:
        self._checks.add(check, check.since + self._settings.first_poll_seconds)
        if check.canary:
            self._out_by_route[check.route.name] += 1

    def _untrack(self, request_id: str) -> None:
        check = self._checks.remove(request_id)
        if check.canary:
            self._out_by_route[check.route.name] -= 1
