"""[pure] The loop's ports: protocols for the Kafka input, the outcome writer, the read-back of
outcomes and of unfinished status checks, the state topic, the quota topic, source records read
back by offset and the HTTP calls, so the loop runs against fakes in tests and the adapters in
:mod:`connector.adapters` in production."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from collections.abc import Callable, Collection, Mapping

    from connector.flow.deadline import Deadline
    from connector.flow.offsets import TopicPartitionKey
    from connector.flow.quota_count import Report, Spent, Unread
    from connector.flow.state_log import Receipt, Replay
    from connector.lsq.catalog import Request
    from connector.records import Accepted, Answer, DeadLetter, SourceRecord, Unfinished

__all__ = [
    "Calls",
    "Input",
    "OutcomeReadBack",
    "Output",
    "QuotaTopicPort",
    "SourceReadBack",
    "StateTopicPort",
    "UnfinishedChecks",
]


class Input(Protocol):
    """The Kafka source (see :class:`connector.adapters.consume.Source`)."""

    def poll(self, max_records: int, timeout: float) -> list[SourceRecord]: ...
    def assignment(self) -> list[TopicPartitionKey]: ...
    def pause(self, tps: list[TopicPartitionKey]) -> None: ...
    def resume(self, tps: list[TopicPartitionKey]) -> None: ...
    def commit(self, positions: Mapping[TopicPartitionKey, int]) -> str | None: ...
    def committed(self, tps: list[TopicPartitionKey]) -> dict[TopicPartitionKey, int]: ...
    def lag(self) -> dict[TopicPartitionKey, int]: ...
    def topic_partitions(self) -> dict[str, int]: ...
    def close(self) -> None: ...


class Output(Protocol):
    """The results and dead-letter writer (:class:`~connector.adapters.results.OutcomeWriter`)."""

    def result(
        self, record: SourceRecord, accepted: Accepted, durable: Callable[[], None]
    ) -> None: ...
    def dead_letter(
        self, record: SourceRecord, why: DeadLetter, durable: Callable[[], None]
    ) -> None: ...

    delayed: bool  # outcomes have waited long without any acknowledgement

    def poll(self) -> None: ...
    def flush(self, deadline: Deadline) -> bool: ...


class OutcomeReadBack(Protocol):
    """Finds records that already have an outcome (:class:`~connector.adapters.ledger.Ledger`)."""

    def done(
        self, committed: Mapping[TopicPartitionKey, int]
    ) -> dict[TopicPartitionKey, set[int]]: ...


class UnfinishedChecks(Protocol):
    """Accepted calls whose status is not known yet, read back from the results topic
    (:meth:`~connector.adapters.ledger.Ledger.unfinished`)."""

    def unfinished(self, tps: Collection[TopicPartitionKey], since: float) -> list[Unfinished]: ...


class SourceReadBack(Protocol):
    """Source records read back by offset (:class:`~connector.adapters.originals.SourceReader`)."""

    def fetch(self, tp: TopicPartitionKey, offset: int) -> None:
        """Ask for one record; it comes back through :meth:`fetched`."""
        ...

    def fetched(self) -> list[tuple[TopicPartitionKey, int, SourceRecord | None]]:
        """Records read back since the last call (``None``: no longer readable)."""
        ...


class StateTopicPort(Protocol):
    """The state topic (:class:`~connector.adapters.state.StateTopic`): the fingerprint of the
    payload LeadSquared was last sent and accepted for each key, and the markers that prove a
    partition's fingerprints complete (:mod:`connector.flow.state_log`), in the source record's
    partition number."""

    def read(self, tps: Collection[TopicPartitionKey]) -> dict[TopicPartitionKey, Replay]:
        """These partitions' records read back (only partitions the state topic has; a read
        that did not reach a partition's end says so)."""
        ...

    def write(
        self, tp: TopicPartitionKey, key: bytes, value: bytes | None, marker: bytes | None = None
    ) -> None:
        """Write one record of ``tp`` (``value`` ``None``: a tombstone; ``marker``: which marker
        it is, if one); not waited for: its :class:`~connector.flow.state_log.Receipt` comes
        later."""
        ...

    def receipts(self) -> list[Receipt]:
        """What became of the writes since the last call."""
        ...

    def flush(self, deadline: Deadline) -> bool:
        """Wait until every write is acknowledged or failed (by ``deadline``); whether all were
        acknowledged."""
        ...


class QuotaTopicPort(Protocol):
    """The quota topic (:class:`~connector.adapters.quota.QuotaTopic`): the calls each account
    spent of its daily quota, per source partition and time slice."""

    def read(
        self, tps: Collection[TopicPartitionKey], since: float
    ) -> dict[str, list[Spent]] | Unread:
        """The counts of these partitions written since ``since`` (wall-clock seconds), by
        account; :class:`~connector.flow.quotas.Unread` when they cannot all be read."""
        ...

    def write(self, account: str, counts: Collection[Spent]) -> None:
        """Record ``account``'s counts (the latest per partition and slice wins)."""
        ...

    def reports(self) -> list[Report]:
        """The broker's word on each count written since the last call (taken or refused)."""
        ...

    def flush(self, deadline: Deadline) -> bool:
        """Wait until every count written is acknowledged (by ``deadline``); whether all were."""
        ...


class Calls(Protocol):
    """The HTTP side (see :class:`connector.adapters.submit.Submitter`)."""

    def submit(self, ticket: int, account: str, request: Request) -> None: ...
    def collect(self, timeout: float) -> list[tuple[int, Answer]]: ...
