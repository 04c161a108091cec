"""The Kafka input: subscribe, poll records, pause and resume partitions, commit explicit offsets.
Rebalance events go to a listener, called from inside :meth:`Source.poll` on the loop's thread.

A listener must not make a metadata request (:meth:`Source.topic_partitions`): confluent-kafka's
``list_topics`` ends its own call state, and the next callback of the poll or close around it
(a log line, say) then aborts the process. The Source refuses it there."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from confluent_kafka import KafkaError, KafkaException, TopicPartition

from connector.adapters.kafka import build_consumer, headers_of, settings_refused
from connector.errors import FatalError
from connector.records import SourceRecord

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from confluent_kafka import Consumer, Message

    from connector.flow.offsets import TopicPartitionKey

__all__ = ["RebalanceListener", "Source"]


class RebalanceListener(Protocol):
    """What the pipeline does when partitions come and go."""

    def assigned(self, tps: list[TopicPartitionKey]) -> None: ...
    def revoked(self, tps: list[TopicPartitionKey]) -> None: ...
    def lost(self, tps: list[TopicPartitionKey]) -> None: ...


def _keys(partitions: list[TopicPartition]) -> list[TopicPartitionKey]:
    return [(tp.topic, tp.partition) for tp in partitions]


def _record(message: Message) -> SourceRecord:
    headers = headers_of(message)
    kind, timestamp = message.timestamp()
    return SourceRecord(
        topic=message.topic() or "",
        partition=message.partition() or 0,
        offset=message.offset() or 0,
        key=message.key(),
        value=message.value(),
        headers=headers,
        timestamp_ms=timestamp if kind != 0 else None,  # 0 = TIMESTAMP_NOT_AVAILABLE
    )


class Source:
    """A subscribed consumer in the connector's group."""

    def __init__(
        self,
        config: Mapping[str, Any],
        topics: list[str],
        listener: RebalanceListener,
        on_error: Callable[[str], None],
    ) -> None:
        self._consumer = build_consumer({**config, "error_cb": self._client_error})
        self._listener, self._on_error = listener, on_error
        self._in_callback = False
        with settings_refused("consumer"):  # the group and the subscription are checked here
            self._consumer.subscribe(
                topics, on_assign=self._assigned, on_revoke=self._revoked, on_lost=self._lost
            )

    def poll(self, max_records: int, timeout: float) -> list[SourceRecord]:
        """Records fetched so far, waiting up to ``timeout`` for the first. (``consume(n, t)``
        alone would wait for all ``n`` or the whole ``t``: an idle connector would sit on a
        record that arrived.)"""
        first = self._consumer.poll(timeout)
        if first is None:
            return []
        out = []
        for message in [first, *self._consumer.consume(max_records - 1, 0)]:
            error = message.error()
            if error is None:
                out.append(_record(message))
            elif error.fatal():
                raise FatalError(f"Kafka consumer failed: {error.str()}")
            elif error.code() != KafkaError._PARTITION_EOF:
                self._on_error(f"{message.topic()}: {error.str()}")
        return out

    def assignment(self) -> list[TopicPartitionKey]:
        return _keys(self._consumer.assignment())

    def pause(self, tps: list[TopicPartitionKey]) -> None:
        self._consumer.pause([TopicPartition(t, p) for t, p in tps])

    def resume(self, tps: list[TopicPartitionKey]) -> None:
        self._consumer.resume([TopicPartition(t, p) for t, p in tps])

    def commit(self, positions: Mapping[TopicPartitionKey, int]) -> str | None:
        """Commit ``positions`` (next offset to read) synchronously; the error text if it failed
        (e.g. during a rebalance; the pipeline commits again later)."""
        offsets = [TopicPartition(t, p, offset) for (t, p), offset in positions.items()]
        try:
            self._consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException as exc:
            return str(exc.args[0].str() if exc.args else exc)
        return None

    def committed(self, tps: list[TopicPartitionKey]) -> dict[TopicPartitionKey, int]:
        """The group's committed offsets (negative when none) for ``tps``; none when the broker
        does not answer in time (reported: outcomes are then not read back, and calls that were
        done before a restart may be made again)."""
        try:
            offsets = self._consumer.committed([TopicPartition(t, p) for t, p in tps], timeout=10)
        except KafkaException as exc:
            self._on_error(f"committed offsets not known, outcomes not read back: {exc}")
            return {}
        return {(tp.topic, tp.partition): tp.offset for tp in offsets}

    def topic_partitions(self) -> dict[str, int]:
        """Partition count of every topic in the cluster (a metadata request; not from inside a
        rebalance callback, see the module docstring)."""
        if self._in_callback:
            raise RuntimeError("Source.topic_partitions() called from a rebalance callback")
        topics = self._consumer.list_topics(timeout=10).topics
        return {name: len(meta.partitions) for name, meta in topics.items() if meta.error is None}

    def lag(self) -> dict[TopicPartitionKey, int]:
        """Records not yet consumed in each assigned partition, from the high watermarks last
        seen by fetches (no broker round trip); partitions not fetched yet count as 0."""
        assigned = self._consumer.assignment()
        lags: dict[TopicPartitionKey, int] = {}
        for tp, position in zip(assigned, self._consumer.position(assigned), strict=True):
            _, high = self._consumer.get_watermark_offsets(tp, cached=True)
            lag = max(0, high - position.offset) if position.offset >= 0 and high >= 0 else 0
            lags[tp.topic, tp.partition] = lag
        return lags

    def close(self) -> None:
        """Leave the group. librdkafka calls the revoke callback from inside it: a graceful stop's
        listener finishes that by the stop's deadline (:class:`~connector.flow.deadline.Grace`)."""
        self._consumer.close()

    def _assigned(self, _: Consumer, partitions: list[TopicPartition]) -> None:
        self._in_listener(self._listener.assigned, partitions)

    def _revoked(self, _: Consumer, partitions: list[TopicPartition]) -> None:
        self._in_listener(self._listener.revoked, partitions)

    def _lost(self, _: Consumer, partitions: list[TopicPartition]) -> None:
        self._in_listener(self._listener.lost, partitions)

    def _in_listener(
        self, call: Callable[[list[TopicPartitionKey]], None], partitions: list[TopicPartition]
    ) -> None:
        self._in_callback = True
        try:
            call(_keys(partitions))
        finally:
            self._in_callback = False

    def _client_error(self, error: KafkaError) -> None:
        self._on_error(error.str())
