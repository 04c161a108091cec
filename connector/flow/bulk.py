"""[pure] Bulk calls for backlogs (SPEC §12): when enough ready records of a bulk route wait, up
to ``max_rows`` of them (of distinct keys: only lane heads are ready) go in one bulk call under the
account's bulk budget; everything else goes in single calls under the main budget, at once, so a
live trickle never waits for a batch to fill. Both budgets are used side by side.

A batch is the first ready bulk-eligible record, in the order the account hands them out (live
changes ahead of snapshot reads, :meth:`~connector.flow.lanes.Lanes.ready_jobs`), and the next ones
of the same route (and the same ``searchBy``), skipping the others. Records that failed in a call
that failed as a whole come back with at most half its rows
(:attr:`~connector.flow.lanes.Job.rows`); below the route's ``min_rows`` they go in single calls.

A bulk activity call that fails may have posted its activities, so its records are dead-lettered,
never sent again (:mod:`connector.lsq.bulk`): while the account's latest answer is such a failure
(LeadSquared failing, or down and probed), activities go in single calls, which are retried, so an
outage costs at most the bulk activity calls already out when it began."""

from __future__ import annotations

import itertools
import uuid
from typing import TYPE_CHECKING

from connector.flow.accounts import BULK
from connector.flow.planner import Call, SinglePlanner
from connector.lsq.bulk import bulk_answer, bulk_request, row_of

if TYPE_CHECKING:
    from collections.abc import Callable

    from connector.flow.accounts import Account
    from connector.flow.lanes import Job, Lanes
    from connector.flow.planner import Planner
    from connector.lsq.bulk import Row
    from connector.transform.route import Route

__all__ = ["BulkPlanner"]

#: Ready records looked at for one batch (the next to go): bounds the work of a turn of the loop.
_SCAN = 500


class BulkPlanner:
    """Bulk calls when a batch is ready and the bulk budget allows one, else single calls."""

    def __init__(
        self,
        routes: Callable[[str], Route | None],
        single: Planner | None = None,
        new_id: Callable[[], str] = lambda: str(uuid.uuid4()),
    ) -> None:
        self._routes, self._new_id = routes, new_id
        self._single = single or SinglePlanner(routes)

    def next_call(
        self, account: Account, lanes: Lanes, now: float, allow: Callable[[Job], bool] | None
    ) -> Call | None:
        """A bulk call if a batch is ready and the bulk budget lets one start, else the next
        single call."""
        bulk = BULK in account.gates and account.may_send(BULK, now)
        if bulk and (batch := self._batch(account, lanes, now, allow)):
            route, jobs, rows = batch
            lanes.claim(account.name, jobs)
            request = bulk_request(route.operation, rows)
            interpret = bulk_answer(route.operation, len(rows))
            return Call(account.name, BULK, request, tuple(jobs), interpret, id=self._new_id())
        return self._single.next_call(account, lanes, now, allow)

    def wait(self, account: Account, lanes: Lanes, now: float) -> float:
        """Seconds until the main budget, or the bulk budget with a batch ready, lets a call go."""
        wait = self._single.wait(account, lanes, now)
        if wait > 0 and BULK in account.gates and self._batch(account, lanes, now, None):
            wait = min(wait, account.wait(BULK, now))
        return wait

    def _batch(
        self, account: Account, lanes: Lanes, now: float, allow: Callable[[Job], bool] | None
    ) -> tuple[Route, list[Job], list[Row]] | None:
        """The next ready batch of ``account``, if it has its route's ``min_rows``."""
        first: tuple[Route, str | None] | None = None
        jobs: list[Job] = []
        rows: list[Row] = []
        most = 0
        for job in itertools.islice(lanes.ready_jobs(account.name, now), _SCAN):
            route = self._routes(job.record.topic)
            if route is None or route.bulk is None or job.rows <= 1:
                continue
            if route.operation == "lead_and_activity" and account.failures_in_a_row:
                continue  # see the module's docstring
            if (allow is not None and not allow(job)) or (row := row_of(job.payload)) is None:
                continue
            if first is None:
                first, most = (route, row[0]), min(route.bulk[1], job.rows)
            elif route.name != first[0].name or row[0] != first[1] or job.rows < most:
                continue
            jobs.append(job)
            rows.append(row)
            if len(jobs) == most:
                break
        if first is None or first[0].bulk is None or len(jobs) < first[0].bulk[0]:
            return None
        return first[0], jobs, rows
