"""[pure] The accounts' daily quotas (:mod:`connector.flow.quota`) kept in the quota topic, through
the :class:`~connector.flow.ports.Spending` port: read back, written, and failing closed when the
topic fails (SPEC §2.10)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from connector.flow.quota_count import Unread
from connector.logs import get_logger

if TYPE_CHECKING:
    from collections.abc import Collection, Mapping

    from connector.flow.deadline import Deadline
    from connector.flow.offsets import TopicPartitionKey
    from connector.flow.ports import QuotaTopicPort
    from connector.flow.quota import Quota

__all__ = ["RETRY_MAX_S", "RETRY_S", "SAVE_EVERY_S", "Quotas"]

_log = get_logger(__name__)

#: How often the counts that changed are written to the quota topic (seconds).
SAVE_EVERY_S = 0.5
#: An unusable quota topic is tried again after this long, then twice as long each time, up to
#: :data:`RETRY_MAX_S` (seconds).
RETRY_S, RETRY_MAX_S = 5.0, 60.0


class Quotas:
    """The accounts' quotas kept in the quota topic (the :class:`~connector.flow.ports.Spending`
    port): read back for newly assigned partitions, written as they change (every
    :data:`SAVE_EVERY_S`, so a crash forgets at most the calls of its last half second and those in
    flight), and waited for when partitions are revoked and at the end.

    A read-back that fails (or is cut short) makes every quota :attr:`~Quota.unknown` (the read
    is the same for all: their partitions' counts are not known); a count the broker did not take
    makes its account's quota unknown. Each is tried again on its own, after :data:`RETRY_S`, then
    less and less often (at most every :data:`RETRY_MAX_S`): the whole read from where the first
    failed one began, every count of the account written again. A quota is known again once its
    counts are read and written; never a fresh count. One error line when a quota becomes unknown
    (``quota.unknown``), one info line when it is known again (``quota.known``)."""

    def __init__(self, quotas: Mapping[str, Quota], spending: QuotaTopicPort) -> None:
        self._quotas, self._spending = quotas, spending
        self._due = 0.0
        self._unread: set[TopicPartitionKey] = set()  # partitions whose counts are not read
        self._since = math.inf  # ... written since then
        self._why_unread = ""
        self._why_unsaved: dict[str, str] = {}  # account → why a count of it was not written
        self._retry_at: float | None = None  # monotonic time; None: due a pause after now
        self._retries = 0

    @property
    def accounts(self) -> list[str]:
        """The accounts with a quota."""
        return sorted(self._quotas)

    def restore(self, tps: Collection[TopicPartitionKey], wall: float) -> None:
        """Read the counts of ``tps`` back (those that still count at ``wall``)."""
        if self._quotas and tps:
            self._read(set(tps), min(quota.since(wall) for quota in self._quotas.values()))

    def save(self, now: float) -> None:
        """Take the broker's word on the counts written, try an unusable quota topic again when
        due, and write the counts that changed, at most every :data:`SAVE_EVERY_S`."""
        if not self._quotas:
            return
        self._receive()
        self._retry(now)
        if now >= self._due:
            self._due = now + SAVE_EVERY_S
            self._write()

    def settle(self, deadline: Deadline) -> bool:
        """Write every changed count and wait for the broker's acknowledgement by ``deadline``."""
        self._receive()
        self._write()
        timeout = deadline.left()
        settled = self._spending.flush(deadline)
        self._receive()
        if not settled:
            _log.warning("quota.unsettled", accounts=self.accounts, timeout_s=round(timeout, 1))
        return settled

    def forget(self, tps: Collection[TopicPartitionKey]) -> None:
        for quota in self._quotas.values():
            quota.forget(tps)
        self._unread.difference_update(tps)
        self._judge()

    def _read(self, tps: set[TopicPartitionKey], since: float) -> None:
        """Read the counts of ``tps`` and of those unread so far, written since ``since``."""
        tps, since = tps | self._unread, min(since, self._since)
        found = self._spending.read(tps, since)
        if isinstance(found, Unread):
            self._unread, self._since, self._why_unread = tps, since, found.why
        else:
            self._unread, self._since = set(), math.inf
            for account, counts in found.items():
                if (quota := self._quotas.get(account)) is not None:
                    quota.load(counts)
        self._judge()

    def _write(self) -> None:
        for account, quota in self._quotas.items():
            if changed := quota.changed():
                self._spending.write(account, changed)

    def _receive(self) -> None:
        """The broker's word on the counts written since the last call."""
        for account, tp, number, error in self._spending.reports():
            if (quota := self._quotas.get(account)) is None:
                continue
            if error is None:
                quota.delivered(tp, number)
            else:
                quota.undelivered(tp)
                self._why_unsaved[account] = error
        self._judge()

    def _retry(self, now: float) -> None:
        """Read back and write again what failed, on a growing interval, while anything did."""
        if not (self._unread or any(quota.unsaved for quota in self._quotas.values())):
            self._retry_at, self._retries = None, 0
        elif self._retry_at is None:
            self._retry_at = now + RETRY_S
        elif now >= self._retry_at:
            self._retries += 1
            self._retry_at = now + min(RETRY_MAX_S, RETRY_S * 2.0**self._retries)
            if self._unread:
                self._read(set(), self._since)
            for quota in self._quotas.values():
                quota.rewrite()

    def _judge(self) -> None:
        """Each quota unknown while its counts are not read or not written, and why."""
        for account, quota in self._quotas.items():
            why = None
            if self._unread:
                why = f"the calls it spent could not be read back: {self._why_unread}"
            elif quota.unsaved:
                why = f"the calls it spent could not be written: {self._why_unsaved[account]}"
            if why is not None:
                why = f"daily quota unknown ({why}); nothing is sent for it until it is known"
            if why is None and quota.unknown is not None:
                _log.info("quota.known", account=account)
            elif why is not None and quota.unknown is None:
                _log.error("quota.unknown", account=account, reason=why)
            quota.unknown = why
