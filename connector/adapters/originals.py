"""[I/O] Source records read back by offset (SPEC §13): a record LeadSquared failed in its queue is
dead-lettered as it was, key, value and headers, although its offset was committed long ago. Reads
run on a thread of their own with a consumer outside the group (nothing is committed), so the loop
never waits: :meth:`SourceReader.fetch` asks, :meth:`SourceReader.fetched` hands over what was read.
A record that retention (or compaction) has removed comes back as ``None``."""

from __future__ import annotations

import queue
import threading
import time
from typing import TYPE_CHECKING, Any

from confluent_kafka import KafkaError, TopicPartition

from connector.adapters.kafka import build_consumer, headers_of, reader_config
from connector.records import SourceRecord

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from confluent_kafka import Consumer

    from connector.flow.offsets import TopicPartitionKey

__all__ = ["SourceReader"]

_Position = tuple["TopicPartitionKey", int]


class SourceReader:
    """Reads single source records back on a daemon thread."""

    def __init__(
        self,
        consumer_config: Mapping[str, Any],
        warn: Callable[[str], None],
        timeout_s: float = 10.0,
    ) -> None:
        self._config = reader_config(consumer_config, "originals")
        self._warn, self._timeout_s = warn, timeout_s
        self._asked: queue.SimpleQueue[_Position | None] = queue.SimpleQueue()
        self._read: queue.SimpleQueue[tuple[TopicPartitionKey, int, SourceRecord | None]] = (
            queue.SimpleQueue()
        )
        self._thread: threading.Thread | None = None

    def fetch(self, tp: TopicPartitionKey, offset: int) -> None:
        """Ask for the record at ``offset`` of ``tp``; it comes back through :meth:`fetched`."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._work, name="lsq-originals", daemon=True)
            self._thread.start()
        self._asked.put((tp, offset))

    def fetched(self) -> list[tuple[TopicPartitionKey, int, SourceRecord | None]]:
        """The records read back since the last call (``None``: no longer readable)."""
        out = []
        while True:
            try:
                out.append(self._read.get_nowait())
            except queue.Empty:
                return out

    def close(self) -> None:
        """Stop the thread after the read in progress."""
        if self._thread is not None:
            self._asked.put(None)

    def _work(self) -> None:
        """Answer every request, ``None`` when it cannot be read (whatever goes wrong: a failed
        record's follow-up must not wait for ever)."""
        try:
            consumer: Consumer | None = build_consumer(self._config)
        except Exception as exc:  # noqa: BLE001 - reported, and every request answered
            self._warn(f"cannot read source records back: {exc}")
            consumer = None
        try:
            while (asked := self._asked.get()) is not None:
                tp, offset = asked
                record = None
                try:
                    record = None if consumer is None else self._read_one(consumer, tp, offset)
                except Exception as exc:  # noqa: BLE001 - as above
                    self._warn(f"cannot read back {tp[0]}[{tp[1]}]@{offset}: {exc}")
                self._read.put((tp, offset, record))
        finally:
            if consumer is not None:
                consumer.close()

    def _read_one(
        self, consumer: Consumer, tp: TopicPartitionKey, offset: int
    ) -> SourceRecord | None:
        """The record at ``offset``, or ``None`` when the partition has none there any more
        (retention or compaction: the first record read is a later one, or the end comes first),
        or nothing comes within the timeout. Watermarks are not asked: some brokers answer
        ListOffsets wrongly."""
        consumer.assign([TopicPartition(tp[0], tp[1], offset)])
        deadline = time.monotonic() + self._timeout_s
        try:
            while time.monotonic() < deadline:
                message = consumer.poll(0.5)
                if message is None:
                    continue
                error = message.error()
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF:
                        return None
                    continue
                if message.offset() == offset:
                    timestamp = message.timestamp()[1]
                    return SourceRecord(
                        tp[0],
                        tp[1],
                        offset,
                        message.key(),
                        message.value(),
                        tuple(headers_of(message)),
                        timestamp if timestamp >= 0 else None,
                    )
                if (message.offset() or 0) > offset:
                    return None  # compacted away
            self._warn(f"{tp[0]}[{tp[1]}]@{offset} not read back within {self._timeout_s:g} s")
            return None
        finally:
            consumer.unassign()
