"""[pure] Pacing by LeadSquared's own queue (SPEC §13): the Metrics API of each (account,
operation) in use is read about once a ``queue.poll_seconds``; while one of an account's queues
holds more than ``max_pending`` requests or ``max_delay_seconds`` of work, the account's budget is
held at ``slowdown`` of what it was (:meth:`~connector.flow.accounts.Account.queue`). The polls
themselves are sent by the tracker, under the same gates as status polls."""

from __future__ import annotations

from typing import TYPE_CHECKING

from connector.lsq.status import METRICS_PATHS, metrics_request, read_metrics
from connector.records import Operation

if TYPE_CHECKING:
    from collections.abc import Collection, Mapping

    from connector.flow.accounts import Account
    from connector.lsq.catalog import Request
    from connector.lsq.status import Depth
    from connector.records import Answer
    from connector.settings.status import QueueSettings

__all__ = ["QueueDepths", "QueueKey"]

QueueKey = tuple[str, Operation]  # (account, operation)


class QueueDepths:
    """LeadSquared's queues as last read, and when each is read next."""

    def __init__(
        self,
        settings: QueueSettings,
        keys: Collection[QueueKey],
        accounts: Mapping[str, Account],
    ) -> None:
        self._settings, self._accounts = settings, accounts
        self._next = dict.fromkeys(keys, 0.0)  # wall-clock seconds of each next read
        self.depths: dict[QueueKey, Depth] = {}

    def due(self, wall: float) -> list[QueueKey]:
        """The queues to read now."""
        if not self._settings.enabled:
            return []
        return [key for key, at in self._next.items() if at <= wall]

    def request(self, key: QueueKey, wall: float) -> Request:
        """The Metrics API call of ``key``'s queue, sent at ``wall``."""
        self._next[key] = wall + self._settings.poll_seconds
        return metrics_request(METRICS_PATHS[key[1]])

    def read(self, key: QueueKey, answer: Answer, now: float) -> None:
        """The answer of ``key``'s Metrics API call: the account's budget is held while one of
        its queues is long, and recovers once none is."""
        depth = read_metrics(answer)
        if depth is None:
            return
        self.depths[key] = depth
        queue = self._settings
        account = key[0]
        long = [
            op
            for (name, op), d in self.depths.items()
            if name == account
            and (d.pending > queue.max_pending or d.max_delay_s > queue.max_delay_seconds)
        ]
        about = {"operations": long, "pending": depth.pending, "max_delay_s": depth.max_delay_s}
        self._accounts[account].queue(queue.slowdown if long else None, now, **about)
