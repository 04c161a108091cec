"""[I/O] The state topic (``output.state_topic``, compacted): the fingerprint of the payload
LeadSquared was last sent and accepted for each key, and the open, reset and seal markers that
prove a partition's fingerprints complete (SPEC §12; the records are
:mod:`connector.flow.state_log`'s). Records go to the source record's partition number, so a
replica reads back only the partitions it is assigned. Writes are not waited for: each one's
receipt (written or lost) is handed to :class:`~connector.flow.fingerprints.FingerprintStore`,
which seals a partition only when all of them were acknowledged and trusts a partition it reads
back only when a seal proves it. So a lost write only means that a later unchanged record is
sent."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from confluent_kafka import OFFSET_BEGINNING, KafkaError, KafkaException, TopicPartition

from connector.adapters.kafka import OwnTopic
from connector.flow.state_log import Receipt, Replay, topic_of

if TYPE_CHECKING:
    from collections.abc import Callable, Collection, Mapping

    from confluent_kafka import Consumer, Message

    from connector.flow.offsets import TopicPartitionKey

__all__ = ["StateTopic"]

#: delivery errors that say the state topic has no such partition
_GONE = frozenset({KafkaError._UNKNOWN_PARTITION, KafkaError.UNKNOWN_TOPIC_OR_PART})


class StateTopic(OwnTopic):
    """Reads and writes the state topic."""

    ROLE = "state"

    def __init__(
        self,
        consumer_config: Mapping[str, Any],
        producer_config: Mapping[str, Any],
        topic: str,
        warn: Callable[[str], None],
        timeout_s: float = 120.0,
    ) -> None:
        super().__init__(consumer_config, producer_config, topic, warn, timeout_s)
        self._receipts: list[Receipt] = []  # delivery reports not handed over yet

    def read(self, tps: Collection[TopicPartitionKey]) -> dict[TopicPartitionKey, Replay]:
        """The records of ``tps`` read back; when Kafka fails, every one of them as a read that
        did not finish (trusted by nobody)."""
        if not tps:
            return {}
        return self._reading(
            lambda consumer: self._read(consumer, tps), {tp: Replay() for tp in tps}
        )

    def write(
        self, tp: TopicPartitionKey, key: bytes, value: bytes | None, marker: bytes | None = None
    ) -> None:
        """Produce one record of ``tp`` (``None``: a tombstone) and serve delivery reports; a
        record the producer refuses comes back at once as a receipt of a lost write."""

        def delivered(error: KafkaError | None, _: Message) -> None:
            if error is not None:
                self._warn(f"a record was not written to the state topic {self._topic!r}: {error}")
            gone = error is not None and error.code() in _GONE
            self._receipts.append(Receipt(tp, marker, error is None, gone))

        try:
            self._producer.produce(self._topic, value, key, partition=tp[1], on_delivery=delivered)
        except (BufferError, KafkaException) as exc:
            self._warn(f"cannot write to the state topic {self._topic!r}: {exc}")
            error = exc.args[0] if isinstance(exc, KafkaException) and exc.args else None
            gone = isinstance(error, KafkaError) and error.code() in _GONE
            self._receipts.append(Receipt(tp, marker, False, gone))
        self._producer.poll(0)

    def receipts(self) -> list[Receipt]:
        """What became of the writes since the last call (delivery reports are served first)."""
        self._producer.poll(0)
        out, self._receipts = self._receipts, []
        return out

    def _read(
        self, consumer: Consumer, tps: Collection[TopicPartitionKey]
    ) -> dict[TopicPartitionKey, Replay]:
        meta = consumer.list_topics(self._topic, timeout=10).topics.get(self._topic)
        have = set() if meta is None or meta.error is not None else set(meta.partitions)
        if missing := sorted({p for _, p in tps} - have):
            self._warn(
                f"the state topic {self._topic!r} has no partition {missing}: create it with as "
                "many partitions as the largest input topic; unchanged records of those "
                "partitions are sent"
            )
        found = {tp: Replay() for tp in tps if tp[1] in have}
        pending = {p for _, p in found}
        if pending:
            consumer.assign([TopicPartition(self._topic, p, OFFSET_BEGINNING) for p in pending])
        deadline = time.monotonic() + self._timeout_s
        while pending and time.monotonic() < deadline:
            for message in consumer.consume(1000, 0.5):
                self._take(message, found, pending)
        if pending:
            self._warn(f"the state topic was read only partly within {self._timeout_s} s")
        for tp, replay in found.items():
            replay.complete = tp[1] not in pending
        return found

    @staticmethod
    def _take(message: Message, found: dict[TopicPartitionKey, Replay], pending: set[int]) -> None:
        """One message of the read: a record of a wanted partition, or the end of one."""
        error, partition = message.error(), message.partition() or 0
        if error is not None:
            if error.code() == KafkaError._PARTITION_EOF:
                pending.discard(partition)
            return
        key, value, offset = message.key(), message.value(), message.offset()
        if not isinstance(key, bytes) or offset is None or (parsed := topic_of(key)) is None:
            return
        replay = found.get((parsed[0], partition))
        if replay is not None:
            replay.add(offset, key, parsed[1], value if isinstance(value, bytes) else None)
