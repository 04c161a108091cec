"""[pure] Completion tracking's calls (SPEC §13): Metrics API calls of LeadSquared's queues
(:class:`~connector.flow.queue_depth.QueueDepths`) and Status API polls of held checks, as
:class:`~connector.flow.planner.Call` s of the account's main budget, planned by two planners: the
first, asked before the records' planner, takes up to ``max_share`` of the budget; the second,
asked after it, any call the records left. A check's poll is interpreted by the tracker."""

from __future__ import annotations

import math
from collections import defaultdict, deque
from functools import partial
from typing import TYPE_CHECKING

from connector.flow.accounts import MAIN
from connector.flow.planner import Call
from connector.lsq.answers import Settlement, Verdict
from connector.lsq.status import STATUS_PATHS, status_request

if TYPE_CHECKING:
    from collections.abc import Callable

    from connector.flow.accounts import Account
    from connector.flow.checks import Checks
    from connector.flow.follow_ups import Check
    from connector.flow.lanes import Job, Lanes
    from connector.flow.offsets import TopicPartitionKey
    from connector.flow.participant import Loop
    from connector.flow.queue_depth import QueueDepths, QueueKey
    from connector.lsq.catalog import Request
    from connector.lsq.status import Depth
    from connector.records import Answer
    from connector.settings.status import StatusSettings

__all__ = ["UNOBSERVED", "Polls"]

#: what a poll's answer tells the account's state: nothing, unless it is a throttle answer
UNOBSERVED = Settlement(Verdict("accepted"), (), observed=False)


class Polls:
    """The polls due, as calls, and the share of the budget they took in the last window."""

    def __init__(
        self,
        settings: StatusSettings,
        queues: QueueDepths,
        checks: Checks,
        settle: Callable[[Check, Answer], Settlement],
        loop: Loop,
    ) -> None:
        self._settings, self._queues, self._checks, self._settle = settings, queues, checks, settle
        self._clock, self._wall, self._tally = loop.clock, loop.wall, loop.outcomes.tally
        self._paths = STATUS_PATHS | settings.paths
        self._recent: defaultdict[str, deque[float]] = defaultdict(deque)  # polls per account
        self.planners = (_Planner(self, capped=True),), (_Planner(self, capped=False),)

    @property
    def depths(self) -> dict[QueueKey, Depth]:
        """LeadSquared's queues as last read."""
        return self._queues.depths

    def next_poll(self, account: Account, now: float, capped: bool) -> Call | None:
        """The next Metrics or Status API call of ``account`` that is due, if the main budget lets
        one start at ``now`` (``capped``: only while polls took less than ``max_share`` of it in
        the last window)."""
        wall = self._wall()
        if not self._may_send(account, now, capped):
            return None
        for key in self._queues.due(wall):
            if key[0] == account.name:
                request = self._queues.request(key, wall)
                return self._call(account, request, partial(self._read_queue, key), now)
        check = self._checks.due(account.name, wall)
        if check is None:
            return None
        self._checks.take(account.name)
        check.out, check.polls = True, check.polls + 1
        request = status_request(self._paths[check.route.operation], check.request_id)
        return self._call(account, request, partial(self._settle, check), now, check.tp)

    def _may_send(self, account: Account, now: float, capped: bool) -> bool:
        if not account.may_send(MAIN, now):
            return False
        if not capped:
            return True
        gate = account.gates[MAIN]
        recent = self._recent[account.name]
        while recent and recent[0] <= now - gate.window:
            recent.popleft()
        return len(recent) < max(1, math.floor(self._settings.max_share * gate.calls))

    def _call(
        self,
        account: Account,
        request: Request,
        interpret: Callable[[Answer], Settlement],
        now: float,
        tp: TopicPartitionKey | None = None,
    ) -> Call:
        self._recent[account.name].append(now)
        self._tally.status_calls += 1
        return Call(account.name, MAIN, request, (), interpret, tp=tp)

    def _read_queue(self, key: QueueKey, answer: Answer) -> Settlement:
        self._queues.read(key, answer, self._clock())
        return UNOBSERVED


class _Planner:
    """The polls as a planner: asked before the records' ``capped`` at ``max_share``, after them
    not."""

    def __init__(self, polls: Polls, *, capped: bool) -> None:
        self._polls, self._capped = polls, capped

    def next_call(
        self,
        account: Account,
        lanes: Lanes,  # noqa: ARG002 - polls wait in the checks' heaps, not in lanes
        now: float,
        allow: Callable[[Job], bool] | None,  # noqa: ARG002 - for jobs only
    ) -> Call | None:
        return self._polls.next_poll(account, now, self._capped)

    def wait(self, account: Account, lanes: Lanes, now: float) -> float:  # noqa: ARG002
        return math.inf  # polls never keep the loop from waiting
