"""[pure] Completion tracking (SPEC §13): what LeadSquared did with each accepted async call.

Each accepted RequestID (all of them, or ``status.sample`` of them; a canary call always) becomes a
:class:`Check`, polled on the Status API: first ``first_poll_seconds`` after it was accepted, then
at doubling intervals up to ``max_poll_interval_seconds``, until a terminal status or the give-up
time (:class:`~connector.flow.checks.Checks`). Then every source record of the call gets a
follow-up results record (:class:`~connector.flow.follow_ups.FollowUps`). At most ``max_checks``
are held: while that many are, accepted calls are only counted (``status_checks_skipped``), never
waited for.

Polls are calls of the account's main budget (whether LeadSquared counts them is not documented):
:class:`~connector.flow.planner.Call` s like every other, planned by the tracker's two planners
and settled by its interpreters. The first is asked before the records' and takes up to
``max_share`` of the budget; the second after them, any call they left. So a backlog leaves polls
their share, and calls nothing else can use all go to polls.

Commits never wait for a check: the accepted results record says it is unfinished, and the next
owner of its partition reads back those of the last two ``give_up_seconds``
(:meth:`CompletionTracker.assigned`): checks within theirs go on, older ones end ``unknown``.
LeadSquared's queue paces the budget (:class:`~connector.flow.queue_depth.QueueDepths`).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from connector.flow.canary import Canary
from connector.flow.checks import Checks, restored, sampled
from connector.flow.follow_ups import Check, FollowUps
from connector.flow.observe import TrackingView
from connector.flow.participant import Participant
from connector.flow.polls import UNOBSERVED, Polls
from connector.flow.progress import tracking_fields
from connector.flow.queue_depth import QueueDepths
from connector.logs import get_logger
from connector.lsq.answers import Settlement, Verdict
from connector.lsq.status import read_status

if TYPE_CHECKING:
    from collections.abc import Callable, Collection, Sequence

    from connector.flow.lanes import Job
    from connector.flow.observe import Snapshot
    from connector.flow.offsets import TopicPartitionKey
    from connector.flow.participant import Loop
    from connector.flow.planner import Planner
    from connector.flow.ports import SourceReadBack, UnfinishedChecks
    from connector.lsq.status import Report
    from connector.records import Accepted, Answer, Unfinished
    from connector.settings.status import StatusSettings
    from connector.transform.route import Route

__all__ = ["CompletionTracker", "Tracking"]

_log = get_logger(__name__)
_READ_BACK = 2  # a restart reads back the calls accepted in the last this many give_up_seconds


@dataclass(frozen=True, slots=True)
class Tracking:
    """What completion tracking needs besides the loop's own parts: its settings, the routes,
    and its ports (source records read back, unfinished checks read back)."""

    settings: StatusSettings
    routes: tuple[Route, ...]
    originals: SourceReadBack
    unchecked: UnfinishedChecks


class CompletionTracker(Participant):
    """Checks in flight, their polls under the accounts' budgets, and their follow-ups."""

    def __init__(self, tracking: Tracking, loop: Loop) -> None:
        settings = self._settings = tracking.settings
        self._loop, self._unchecked = loop, tracking.unchecked
        self.tally, self._wall = loop.outcomes.tally, loop.wall
        tracked = [route for route in tracking.routes if route.mode == "async"]
        self._routes = {route.name: route for route in tracked}
        self.canary = Canary(self._routes, settings.canary)
        self._checks = Checks(
            settings.max_checks, settings.give_up_seconds, settings.max_poll_interval_seconds
        )
        self._full = False  # whether the last call that found max_checks held was logged
        self._follow_ups = FollowUps(
            loop.outcomes.output,
            tracking.originals,
            self.tally,
            loop.wall,
            settings.give_up_seconds,
        )
        self._out_by_route: Counter[str] = Counter()  # canary checks not finished
        operations = {(r.account, r.operation) for r in tracked}
        queues = QueueDepths(settings.queue, operations, loop.accounts)
        self._polls = Polls(settings, queues, self._checks, self._settle, loop)

    # -- partitions -----------------------------------------------------------------------------

    def assigned(self, tps: list[TopicPartitionKey]) -> None:
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

    # -- the loop -------------------------------------------------------------------------------

    def planners(self) -> tuple[Sequence[Planner], Sequence[Planner]]:
        return self._polls.planners

    def before_calls(self) -> None:
        """Write the follow-ups whose source records came back; give up checks past their time."""
        self._follow_ups.collect()
        for expired, why in self._checks.expired(self._wall()):
            self._finish(expired, None, why)

    def held_routes(self) -> Collection[str]:
        return {halt.route for halt in self.canary.halts}

    def idle_floor(self) -> float:
        return self.canary.idle()

    def not_ready(self) -> list[str]:
        return [str(halt) for halt in self.canary.halts]

    def progress(self) -> dict[str, Any]:
        return tracking_fields(self.view(), self.tally)

    def snapshot(self, snapshot: Snapshot) -> Snapshot:
        return replace(snapshot, tracking=self.view())

    def view(self) -> TrackingView:
        """Checks not finished, routes halted, LeadSquared's queues (for the health port)."""
        queues = tuple(
            (account, operation, depth.pending, depth.max_delay_s)
            for (account, operation), depth in sorted(self._polls.depths.items())
        )
        halted = tuple(halt.route for halt in self.canary.halts)
        return TrackingView(len(self._checks), halted, queues)

    # -- jobs -----------------------------------------------------------------------------------

    def admission(self) -> Callable[[Job], bool]:
        return self.admits

    def admits(self, job: Job) -> bool:
        """Whether ``job``'s route may send a call now (the canary: see
        :meth:`Canary.allows`)."""
        route = job.route
        if route not in self._routes:
            return True
        out = self._loop.calls_out(route) + self._out_by_route[route]
        return self.canary.allows(route, out, self._wall())

    def accepted(self, job: Job, route: Route, accepted: Accepted) -> None:
        """LeadSquared's async host accepted a call of ``route`` for ``job`` (checked if sampled
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
        records = [replace(r, value=None, headers=()) for r in (job.record, *job.riders)]
        self._track(Check(accepted.request_id, route, records, accepted, wall, wall, canary))

    # -- polls ----------------------------------------------------------------------------------

    def _settle(self, check: Check, answer: Answer) -> Settlement:
        check.out = False
        if self._checks.get(check.request_id) is not check:
            return UNOBSERVED  # its partition was revoked meanwhile
        report = read_status(answer, check.route.operation)
        if report.kind in {"succeeded", "failed"}:
            self._finish(check, report)
            return UNOBSERVED
        check.last = report.reason or report.kind
        if self._wall() - check.since >= self._settings.give_up_seconds:  # (while it was out)
            self._finish(check, None)
        else:
            interval = self._settings.first_poll_seconds * 2.0 ** min(check.polls, 30)
            due = self._wall() + min(self._settings.max_poll_interval_seconds, interval)
            self._checks.schedule(check, due)
        if report.kind == "throttled":
            return Settlement(Verdict("throttled", report.reason), ())
        return UNOBSERVED

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
                self._loop.doubt(record)

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
        route, request_id = self._loop.route_of(item.record.topic), item.request_id
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
