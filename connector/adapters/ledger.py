"""[I/O] Outcomes already written, read back from the results and dead-letter topics. When
partitions are assigned, the records past their committed offsets that already have an outcome (a
crash or a lost partition cut the previous owner off before it could commit them) are found, so
they are not called again: a restart repeats only the calls that were in flight. Results records
carry their source in ``lsq.source.*`` headers, dead letters in ``__connect.errors.*`` ones
(:func:`connector.flow.codec.source_of`). Records are read one at a time and only their
headers are looked at: memory stays flat however many outcomes the lookback holds.

With status tracking on, the same read finds the accepted calls whose status is not known yet
(:meth:`Ledger.unfinished`): an accepted results record with a RequestID and no follow-up after it
(SPEC §13). At most ``max_unfinished`` of them are held while they are read (about 0.5 KB each):
the ones past that are not checked, and a warning says how many."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from confluent_kafka import KafkaError, KafkaException, TopicPartition

from connector.adapters.kafka import build_consumer, headers_of, reader_config
from connector.flow.codec import RESULT_TRACKING, source_of
from connector.records import SourceRecord, Unfinished

if TYPE_CHECKING:
    from collections.abc import Callable, Collection, Iterator, Mapping, Set

    from confluent_kafka import Consumer, Message

    from connector.flow.offsets import TopicPartitionKey

__all__ = ["MAX_UNFINISHED", "Ledger", "UnfinishedRead"]

#: Most unfinished source records :meth:`Ledger.unfinished` holds while it reads (SPEC §2, 10).
MAX_UNFINISHED = 50_000


class Ledger:
    """Reads outcome records written in the last ``lookback_s`` seconds (0 turns it off)."""

    def __init__(
        self,
        consumer_config: Mapping[str, Any],
        topics: tuple[str, str],
        lookback_s: float,
        warn: Callable[[str], None],
        timeout_s: float = 30.0,
        *,
        max_unfinished: int = MAX_UNFINISHED,
    ) -> None:
        self._config = reader_config(consumer_config, "ledger")
        self._topics, self._lookback_s, self._warn, self._timeout_s = (
            topics,
            lookback_s,
            warn,
            timeout_s,
        )
        self._max_unfinished = max_unfinished

    def done(self, committed: Mapping[TopicPartitionKey, int]) -> dict[TopicPartitionKey, set[int]]:
        """Offsets at or past ``committed`` (per partition) that already have an outcome."""
        if self._lookback_s <= 0 or not committed:
            return {}
        found: dict[TopicPartitionKey, set[int]] = {}
        consumer = build_consumer(self._config)
        try:
            for message in self._read(consumer):
                source = source_of(dict(headers_of(message)))
                if source is None:
                    continue
                tp, offset = (source[0], source[1]), source[2]
                if tp in committed and offset >= committed[tp]:
                    found.setdefault(tp, set()).add(offset)
        except KafkaException as exc:
            self._warn(f"cannot read back outcomes (calls may repeat after a restart): {exc}")
        finally:
            consumer.close()
        return found

    def unfinished(self, tps: Collection[TopicPartitionKey], since: float) -> list[Unfinished]:
        """Calls of records of ``tps`` accepted since ``since`` (wall-clock seconds) whose
        follow-up is not written yet."""
        read = UnfinishedRead(set(tps), since, self._max_unfinished)
        consumer = build_consumer(self._config)
        try:
            for message in self._read(consumer, since, self._topics[:1]):
                read.add(dict(headers_of(message)), message.key(), message.timestamp()[1] / 1000)
        except KafkaException as exc:
            self._warn(f"cannot read back unfinished status checks: {exc}")
        finally:
            consumer.close()
        if read.dropped:
            self._warn(
                f"more than {self._max_unfinished} unfinished status checks read back: "
                f"{read.dropped} accepted records past them (some may be finished) are not checked"
            )
        return list(read.found.values())

    def _read(
        self, consumer: Consumer, since: float | None = None, topics: tuple[str, ...] = ()
    ) -> Iterator[Message]:
        """Outcome records written since the lookback (or ``since``), one at a time, to the end
        of each partition as it is now (or until the timeout)."""
        start = time.time() - self._lookback_s if since is None else since
        since_ms = int(start * 1000)
        parts = []
        for topic in topics or self._topics:
            meta = consumer.list_topics(topic, timeout=10).topics.get(topic)
            if meta is not None and meta.error is None:
                parts += [TopicPartition(topic, p, since_ms) for p in meta.partitions]
        starts = [tp for tp in consumer.offsets_for_times(parts, timeout=10) if tp.offset >= 0]
        if not starts:
            return
        consumer.assign(starts)
        pending = {(tp.topic, tp.partition) for tp in starts}
        deadline = time.monotonic() + self._timeout_s
        while pending and time.monotonic() < deadline:
            for message in consumer.consume(500, 0.5):
                error = message.error()
                if error is None:
                    yield message
                elif error.code() == KafkaError._PARTITION_EOF:
                    pending.discard((message.topic() or "", message.partition() or 0))
        if pending:
            self._warn(f"outcomes read back only partly within {self._timeout_s} s")


@dataclass(slots=True)
class UnfinishedRead:
    """Accepted results records of ``wanted`` partitions written since ``since``, less those a
    follow-up came after: at most ``limit`` (more are counted in ``dropped``, not kept)."""

    wanted: Set[TopicPartitionKey]
    since: float
    limit: int
    found: dict[tuple[TopicPartitionKey, int], Unfinished] = field(default_factory=dict)
    dropped: int = 0

    def add(self, headers: Mapping[str, bytes | None], key: bytes | None, at: float) -> None:
        """One outcome record read, with its headers, key and timestamp (wall-clock seconds)."""
        source = source_of(headers)
        if source is None or (source[0], source[1]) not in self.wanted or at < self.since:
            return  # (a broker may start the read earlier than asked)
        status, request_id, attempts = (
            (headers.get(name) or b"").decode(errors="replace") for name in RESULT_TRACKING
        )
        position = ((source[0], source[1]), source[2])
        if status != "accepted":
            self.found.pop(position, None)  # a follow-up (or an outcome with nothing to check)
        elif not request_id:
            return
        elif len(self.found) >= self.limit and position not in self.found:
            self.dropped += 1
        else:
            record = SourceRecord(source[0], source[1], source[2], key, None)
            self.found[position] = Unfinished(record, request_id, _int(attempts), at)


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        return 0
