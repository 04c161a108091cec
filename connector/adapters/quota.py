"""[I/O] The quota topic (``output.quota_topic``): the calls each account spent of its daily quota,
per source partition and time slice (:mod:`connector.flow.quota`), so the count survives restarts
and rebalances and the fleet shares it. A record's key is ``account``, ``topic``, ``partition``
and ``slice`` joined by zero bytes; its value the slice's count so far (8 bytes, big-endian), so the
latest record of a key holds its count and the topic may be compacted or keep a day (or more) of
records. Reading starts at the records written a day ago, on every partition of the topic."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from confluent_kafka import KafkaError, KafkaException, TopicPartition

from connector.adapters.kafka import OwnTopic

if TYPE_CHECKING:
    from collections.abc import Collection

    from confluent_kafka import Consumer, Message

    from connector.flow.offsets import TopicPartitionKey
    from connector.flow.quota import Spent

__all__ = ["QuotaTopic"]

_SIZE = 8  # bytes of a count


def quota_key(account: str, tp: TopicPartitionKey, number: int) -> bytes:
    """The record key of ``account``'s count of partition ``tp`` in slice ``number``."""
    return "\x00".join((account, tp[0], str(tp[1]), str(number))).encode()


class QuotaTopic(OwnTopic):
    """Reads and writes the quota topic."""

    ROLE = "quota"

    def read(self, tps: Collection[TopicPartitionKey], since: float) -> dict[str, list[Spent]]:
        """The counts of ``tps`` written since ``since`` (wall-clock seconds), by account."""
        return self._reading(lambda consumer: self._read(consumer, set(tps), since), {})

    def write(self, account: str, counts: Collection[Spent]) -> None:
        """Produce one record per count (and serve the producer's delivery reports)."""
        for tp, number, calls in counts:
            value = calls.to_bytes(_SIZE, "big")
            try:
                self._producer.produce(
                    self._topic, value, quota_key(account, tp, number), on_delivery=self._delivered
                )
            except (BufferError, KafkaException) as exc:
                self._warn(f"cannot write to the quota topic {self._topic!r}: {exc}")
        self._producer.poll(0)

    def _delivered(self, error: KafkaError | None, _: Message) -> None:
        if error is not None:
            self._warn(f"a count was not written to the quota topic {self._topic!r}: {error}")

    def _read(
        self, consumer: Consumer, tps: set[TopicPartitionKey], since: float
    ) -> dict[str, list[Spent]]:
        meta = consumer.list_topics(self._topic, timeout=10).topics.get(self._topic)
        if meta is None or meta.error is not None:
            self._warn(f"the quota topic {self._topic!r} cannot be read: create it")
            return {}
        start = int(since * 1000)
        wanted = [TopicPartition(self._topic, p, start) for p in meta.partitions]
        positions = consumer.offsets_for_times(wanted, timeout=10)
        consumer.assign(positions)
        latest: dict[bytes, int] = {}
        pending, deadline = {p.partition for p in positions}, time.monotonic() + self._timeout_s
        while pending and time.monotonic() < deadline:
            for message in consumer.consume(1000, 0.5):
                error = message.error()
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF:
                        pending.discard(message.partition() or 0)
                    continue
                key, value = message.key(), message.value()
                if isinstance(key, bytes) and isinstance(value, bytes) and len(value) == _SIZE:
                    latest[key] = max(latest.get(key, 0), int.from_bytes(value, "big"))
        if pending:
            self._warn(f"the quota topic was read only partly within {self._timeout_s} s")
        found: dict[str, list[Spent]] = {}
        for key, calls in latest.items():
            if (parsed := _parse(key)) is not None and parsed[1] in tps:
                account, tp, number = parsed
                found.setdefault(account, []).append((tp, number, calls))
        return found


def _parse(key: bytes) -> tuple[str, TopicPartitionKey, int] | None:
    """The account, partition and slice a record key names (``None``: no key of ours)."""
    try:
        account, topic, partition, number = key.decode().split("\x00")
        return account, (topic, int(partition)), int(number)
    except ValueError:  # another shape, or not UTF-8 (UnicodeDecodeError is a ValueError)
        return None
