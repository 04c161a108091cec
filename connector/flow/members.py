"""[pure] The loop's partition participants (:mod:`connector.flow.participant`) over the state
each feature keeps: records that already have an outcome (the results and dead-letter topics), the
calls spent of daily quotas (the quota topic) and the fingerprints of payloads LeadSquared holds
(the state topic). Completion tracking is one too (:class:`~connector.flow.tracking.Tracker`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from connector.flow.outcomes import names
from connector.flow.participant import Participant
from connector.logs import get_logger

if TYPE_CHECKING:
    from collections.abc import Callable, Collection

    from connector.flow.deadline import Deadline
    from connector.flow.fingerprints import FingerprintStore
    from connector.flow.lanes import Job
    from connector.flow.offsets import TopicPartitionKey
    from connector.flow.participant import Loop
    from connector.flow.ports import OutcomeReadBack
    from connector.flow.quotas import Quotas
    from connector.records import Accepted, DeadLetter, Skip, SourceRecord
    from connector.transform.route import Route

__all__ = ["FoundOutcomes", "KnownPayloads", "QuotaCounts"]

_log = get_logger(__name__)


class FoundOutcomes(Participant):
    """Records of newly assigned partitions that already have an outcome (written by an owner
    that stopped before committing them): not called again."""

    def __init__(self, recovery: OutcomeReadBack, loop: Loop) -> None:
        self._recovery, self._loop = recovery, loop

    def assigned(self, tps: list[TopicPartitionKey]) -> None:
        self._loop.outcomes.found(self._recovery.done(self._loop.committed(tps)))


class QuotaCounts(Participant):
    """The calls spent of the accounts' daily quotas, read back on assignment, written as they
    change and made durable before partitions go (:class:`~connector.flow.quotas.Quotas`)."""

    def __init__(self, quotas: Quotas, wall: Callable[[], float]) -> None:
        self.quotas, self._wall = quotas, wall

    def assigned(self, tps: list[TopicPartitionKey]) -> None:
        self.quotas.restore(tps, self._wall())

    def revoking(self, tps: Collection[TopicPartitionKey], deadline: Deadline) -> None:  # noqa: ARG002 - all counts
        self.quotas.settle(deadline)

    def closing(self, deadline: Deadline) -> None:
        self.quotas.settle(deadline)

    def forget(self, tps: Collection[TopicPartitionKey]) -> None:
        self.quotas.forget(tps)

    def after_calls(self, now: float) -> None:
        self.quotas.save(now)


class KnownPayloads(Participant):
    """No-op skips (SPEC §12): the fingerprint of what LeadSquared was last sent and accepted for
    each key, kept in the state topic (:class:`~connector.flow.fingerprints.FingerprintStore`)."""

    def __init__(self, memory: FingerprintStore) -> None:
        self.memory = memory

    def assigned(self, tps: list[TopicPartitionKey]) -> None:
        self.memory.restore(tps)
        _log.info("partitions.state_read", partitions=names(tps), keys=len(self.memory))

    def revoking(self, tps: Collection[TopicPartitionKey], deadline: Deadline) -> None:
        self.memory.settle(deadline, tps)

    def closing(self, deadline: Deadline) -> None:
        self.memory.settle(deadline)

    def forget(self, tps: Collection[TopicPartitionKey]) -> None:
        self.memory.forget(tps)

    def idle_floor(self) -> float:
        return self.memory.idle()  # no spinning while calls wait for the state log

    def unchanged(self, job: Job, route: Route) -> bool:
        return route.remember and self.memory.unchanged(job)

    def admission(self) -> Callable[[Job], bool] | None:
        return self.memory.admits if self.memory.closed else None  # the state log says so first

    def accepted(self, job: Job, route: Route, accepted: Accepted) -> None:  # noqa: ARG002 - a hook
        self.memory.accepted(job, remember=route.remember)

    def doubted(self, record: SourceRecord) -> None:
        self.memory.invalidate(record)

    def settled(self, record: SourceRecord, outcome: Skip | DeadLetter | None) -> None:
        self.memory.settled(record, outcome)  # a delete forgets its key's fingerprint
