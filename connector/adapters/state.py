"""[I/O] The state topic (``output.state_topic``, compacted): the fingerprint of the payload
LeadSquared last accepted for each key, so an unchanged record is skipped even after a restart or
a rebalance (SPEC §12). A state record's key is the source topic, a zero byte and the source key;
its value the 8-byte fingerprint; it goes to the source record's partition number, so a replica
reads back only the partitions it is assigned. Writes are not waited for: a lost one only means
that a later unchanged record is sent."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from confluent_kafka import OFFSET_BEGINNING, KafkaError, KafkaException, TopicPartition

from connector.adapters.kafka import OwnTopic
from connector.flow.fingerprints import key_id

if TYPE_CHECKING:
    from collections.abc import Collection

    from confluent_kafka import Consumer

    from connector.flow.offsets import TopicPartitionKey

__all__ = ["StateTopic"]

_SIZE = 8  # bytes of a fingerprint


class StateTopic(OwnTopic):
    """Reads and writes the state topic."""

    ROLE = "state"

    def read(
        self, tps: Collection[TopicPartitionKey]
    ) -> dict[TopicPartitionKey, list[tuple[int, int]]]:
        """Key ids and fingerprints of the keys of ``tps``, oldest first."""
        return self._reading(lambda consumer: self._read(consumer, tps), {}) if tps else {}

    def write(self, tp: TopicPartitionKey, key: bytes, fingerprint: int) -> None:
        """Produce one state record (and serve the producer's delivery reports)."""
        value = fingerprint.to_bytes(_SIZE, "big")
        try:
            self._producer.produce(self._topic, value, key, partition=tp[1])
        except (BufferError, KafkaException) as exc:
            self._warn(f"cannot write to the state topic {self._topic!r}: {exc}")
        self._producer.poll(0)

    def _read(
        self, consumer: Consumer, tps: Collection[TopicPartitionKey]
    ) -> dict[TopicPartitionKey, list[tuple[int, int]]]:
        meta = consumer.list_topics(self._topic, timeout=10).topics.get(self._topic)
        have = set() if meta is None or meta.error is not None else set(meta.partitions)
        if missing := sorted({p for _, p in tps} - have):
            self._warn(
                f"the state topic {self._topic!r} has no partition {missing}: create it with as "
                "many partitions as the largest input topic; unchanged records of those "
                "partitions are sent"
            )
        prefixes = {(topic.encode() + b"\x00", p): (topic, p) for topic, p in tps if p in have}
        found: dict[TopicPartitionKey, list[tuple[int, int]]] = {tp: [] for tp in prefixes.values()}
        pending = {p for _, p in found}
        if not pending:
            return found
        consumer.assign([TopicPartition(self._topic, p, OFFSET_BEGINNING) for p in pending])
        deadline = time.monotonic() + self._timeout_s
        while pending and time.monotonic() < deadline:
            for message in consumer.consume(1000, 0.5):
                error, partition = message.error(), message.partition() or 0
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF:
                        pending.discard(partition)
                    continue
                key, value = message.key(), message.value()
                if (
                    not isinstance(key, bytes)
                    or not isinstance(value, bytes)
                    or len(value) != _SIZE
                ):
                    continue
                tp = prefixes.get((key[: key.find(b"\x00") + 1], partition))
                if tp is not None:
                    found[tp].append((key_id(key), int.from_bytes(value, "big")))
        if pending:
            self._warn(f"the state topic was read only partly within {self._timeout_s} s")
        return found
